"""Opening the SQLite stores under RAT_HOME: WAL, a busy timeout, errors named, schema migrated forward.

catalog.db, registry.db and runs.db are each opened through `open_sqlite`:

* every sqlite3 error raised by a statement or a fetch becomes a `StoreError` naming the file
  and `rat doctor` (errormap.store_error), so a damaged, garbage or locked store is one line;
* the schema is a numbered list of migrations: step N runs once, when the file's
  `PRAGMA user_version` is below N, inside one `BEGIN IMMEDIATE` (two processes opening an old
  file migrate it once). A version newer than the package knows is refused (StoreVersionError):
  an older `rat` never writes a schema it does not understand. One module owns each file
  (docs/architecture.md), so one list of steps describes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ratatouille_nb.errormap import store_error
from ratatouille_nb.errors import StoreError, StoreVersionError

Migration = str | Callable[[sqlite3.Connection], None]
"""One schema step: SQL (several statements allowed) or a function of the connection."""

BUSY_TIMEOUT_SECONDS = 60.0

# Constraint violations and API misuse are the stores' own business (a duplicate version, a bug):
# they pass through unmapped; what is left is the file's state (damaged, locked, unwritable).
_PASS_THROUGH = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


class StoreCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise `StoreError` (naming the file) instead of sqlite3 errors."""

    connection: StoreConnection

    def _mapped(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except _PASS_THROUGH:
            raise
        except sqlite3.Error as exc:
            raise self.connection.error(exc) from exc

    def execute(self, sql: str, parameters: Any = (), /) -> StoreCursor:
        return self._mapped(lambda: super(StoreCursor, self).execute(sql, parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> StoreCursor:
        return self._mapped(lambda: super(StoreCursor, self).executemany(sql, seq_of_parameters))

    def fetchone(self) -> Any:
        return self._mapped(super().fetchone)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        return self._mapped(lambda: super(StoreCursor, self).fetchmany(size or self.arraysize))

    def fetchall(self) -> list[Any]:
        return self._mapped(super().fetchall)

    def __next__(self) -> Any:
        return self._mapped(super().__next__)


class StoreConnection(sqlite3.Connection):
    """A connection that knows its file, so every error it raises can name it."""

    path: Path

    def error(self, exc: sqlite3.Error) -> StoreError:
        return store_error(exc, self.path, timeout=BUSY_TIMEOUT_SECONDS)

    def cursor(self, factory: Any = StoreCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Any:
        try:
            return super().executescript(sql_script)
        except _PASS_THROUGH:
            raise
        except sqlite3.Error as exc:
            raise self.error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[StoreCursor]:
        """One IMMEDIATE transaction: the write lock is taken up front; rolled back on any error."""
        cur = self.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            if self.in_transaction:
                cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")


def open_sqlite(path: Path, migrations: Sequence[Migration]) -> StoreConnection:
    """Open (creating it if needed) a store file in WAL mode and bring its schema to `len(migrations)`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {path.parent}: {exc.strerror}", path=path, hint="check RAT_HOME") from exc
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False, factory=StoreConnection
        )
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    conn.path = path
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        migrate(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def open_read_only(path: Path) -> StoreConnection:
    """Open an existing store without creating, migrating or writing anything (doctor, gc's pin scan)."""
    path = Path(path)
    try:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False, factory=StoreConnection
        )
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    conn.path = path
    return conn


def schema_version(conn: StoreConnection) -> int:
    """The number of migrations applied to this file."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: StoreConnection, migrations: Sequence[Migration]) -> int:
    """Apply the steps the file lacks, in one write transaction; returns the version reached."""
    latest = len(migrations)
    if schema_version(conn) == latest:
        return latest  # the common case: no write lock taken
    with conn.write() as cur:
        current = schema_version(conn)  # another process may have migrated meanwhile
        if current > latest:
            raise StoreVersionError(
                f"{conn.path} has schema version {current}; this Ratatouille knows up to {latest}",
                path=conn.path,
                hint="upgrade ratatouille_nb (`pip install -U ratatouille_nb`): a newer version wrote this file",
            )
        for step in migrations[current:]:
            if callable(step):
                step(conn)
            else:
                for statement in step.split(";"):
                    if statement.strip():
                        cur.execute(statement)
        cur.execute(f"PRAGMA user_version = {latest}")
    return latest


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA quick_check` finds wrong with a store file (empty when it is sound); never writes."""
    try:
        conn = open_read_only(path)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except StoreError as exc:
        return [str(exc.__cause__ or exc.args[0])]  # the bare SQLite reason: the caller names the file
    messages = [str(r[0]) for r in rows]
    return [] if messages == ["ok"] else messages

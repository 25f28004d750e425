"""Where `layer.table` names are bound: one catalog per reader, so parallel readers never race.

Tables of a ref appear as DuckDB views `layer.table` over `iceberg_scan(<metadata>)`, created on
demand for the tables a statement names. A `ViewBinder` keeps the views of one catalog. The
session's own statements use the connection's default catalog; each pipeline model gets a `Scope`:
a cursor of the session's connection (cursors have their own client context) that attaches a
private in-memory catalog, `USE`s it and binds its views there — so two models binding
`bronze.x` at different snapshots, or one dropping a view another reads, cannot meet.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from typing import TYPE_CHECKING

from ratatouille_nb.engine.sqltypes import duck_type_of, quote_ident
from ratatouille_nb.engine.statements import check_body
from ratatouille_nb.errormap import map_error

if TYPE_CHECKING:
    import duckdb

    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.storage import Warehouse

PAIR_RE = re.compile(r'"?([A-Za-z_][\w]*)"?\s*\.\s*"?([A-Za-z_][\w]*)"?')
_KEYS_RE = re.compile(r"^\s*(?:[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*\s*)*$")
MAX_VIEW_DEPTH = 20


class ViewBinder:
    """The `layer.table` views of one DuckDB catalog, rebound only when a table's metadata changes."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.bound: dict[str, str] = {}

    def reset(self) -> None:
        """Forget the views (their connection was closed)."""
        self.bound.clear()

    def view_sql(self, key: str, entry: TableEntry) -> str:
        layer, name = key.split(".", 1)
        target = f"{quote_ident(layer)}.{quote_ident(name)}"
        if entry.view_sql is not None:
            return f"CREATE OR REPLACE VIEW {target} AS {check_body(entry.view_sql, what=f'view {key}')}"
        if entry.snapshot_id is None:
            from ratatouille_nb.catalog.tables import read_metadata

            schema = read_metadata(self.warehouse.file_io(), entry.metadata_location).schema()
            cols = ", ".join(f"CAST(NULL AS {duck_type_of(f.field_type)}) AS {quote_ident(f.name)}" for f in schema.fields)
            return f"CREATE OR REPLACE VIEW {target} AS SELECT {cols} WHERE false"
        location = entry.metadata_location.replace("'", "''")
        return f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM iceberg_scan('{location}')"

    def bind(self, con: duckdb.DuckDBPyConnection, sql: str, contents: dict[str, TableEntry], _depth: int = 0) -> list[str]:
        """Make the tables `sql` names visible as `layer.table` views at the given contents."""
        for key in [k for k in self.bound if k not in contents]:
            layer, name = key.split(".", 1)
            con.execute(f"DROP VIEW IF EXISTS {quote_ident(layer)}.{quote_ident(name)}")
            del self.bound[key]
        wanted = {f"{a}.{b}".lower() for a, b in PAIR_RE.findall(sql)} & set(contents)
        for key in sorted(wanted):
            entry = contents[key]
            bound_as = entry.view_sql if entry.view_sql is not None else entry.metadata_location
            if entry.view_sql is not None and _depth < MAX_VIEW_DEPTH:
                self.bind(con, entry.view_sql, contents, _depth + 1)
            if self.bound.get(key) == bound_as:
                continue
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(key.split('.')[0])}")
            self._create_view(con, key, entry)
            self.bound[key] = bound_as
        return sorted(wanted)


    def _create_view(self, con: duckdb.DuckDBPyConnection, key: str, entry: TableEntry) -> None:
        import duckdb

        from ratatouille_nb.engine.duckerrors import duck_error

        sql = self.view_sql(key, entry)
        try:
            con.execute(sql)
        except duckdb.PermissionException as exc:  # the sandbox refused a file: not a broken table
            raise duck_error(exc, sql) from None
        except duckdb.Error as exc:
            mapped = map_error(exc, path=entry.metadata_location or None, subject=key)  # a broken table is named as such
            if mapped is None:
                raise
            raise mapped from exc


def referenced(sql: str, contents: dict[str, TableEntry], _depth: int = 0) -> dict[str, TableEntry]:
    """The entries of `contents` that `sql` names, through the bodies of the views it names."""
    out = {}
    for key in {f"{a}.{b}".lower() for a, b in PAIR_RE.findall(sql)} & set(contents):
        out[key] = contents[key]
        body = contents[key].view_sql
        if body is not None and _depth < MAX_VIEW_DEPTH:
            out.update(referenced(body, contents, _depth + 1))
    return out


def check_bindable(sql: str) -> None:
    """What callers may bind: table keys (`silver.t bronze.x`) or exactly one SELECT."""
    if not _KEYS_RE.match(sql):
        check_body(sql, what="this SQL")


class Scope:
    """One reader's private catalog on a cursor of the session's connection (see the module docstring)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> None:
        self.name = f"rat_scope_{uuid.uuid4().hex[:12]}"
        self.cursor = con.cursor()
        self.binder = ViewBinder(warehouse)
        try:
            self._home = str(self.cursor.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
            self.cursor.execute(f"ATTACH ':memory:' AS {self.name}")
            self.cursor.execute(f"USE {self.name}")
        except BaseException:
            self.cursor.close()
            raise

    def bind(self, sql: str, contents: dict[str, TableEntry]) -> list[str]:
        """Bind the tables `sql` reads in this scope; `sql` is table keys or exactly one SELECT."""
        check_bindable(sql)
        return self.binder.bind(self.cursor, sql, contents)

    def close(self) -> None:
        try:
            self.cursor.execute(f"USE {quote_ident(self._home)}")
            self.cursor.execute(f"DETACH {self.name}")
        finally:
            self.cursor.close()


CURRENT_SCOPE: contextvars.ContextVar[tuple[int, Scope]] = contextvars.ContextVar("rat_scope")


def current_scope(owner: object) -> Scope | None:
    """The scope the running model opened on `owner` (a session), if any."""
    found = CURRENT_SCOPE.get(None)
    return found[1] if found is not None and found[0] == id(owner) else None

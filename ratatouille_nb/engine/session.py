"""One engine session: a workspace, its branch and profile, a sandboxed DuckDB connection, the version store.

Tables of the ref being read appear as DuckDB views `layer.table` over `iceberg_scan(<metadata>)`,
bound on demand for the tables a statement names (so a branch with 100 tables costs nothing until
one is used; engine/scope.py). Every statement passes the allow-list (engine/statements.py) and runs
on a connection locked to the workspace's files and the product pins it may read
(engine/sandbox.py). When the product registry changes, the connection is reopened before the next
statement if a product it could read was revoked, or a statement needs a pin it does not allow yet
(a reopened connection starts empty: temp tables of the session are gone). Writes go through
`TableWriter` inside a `TableTransaction`: one commit each.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.refs import parse_ref
from ratatouille_nb.engine.errors import SandboxError
from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
from ratatouille_nb.engine.result import StatementResult
from ratatouille_nb.engine.sandbox import RegistryWatch, SandboxPolicy, build_policy, exports_dir
from ratatouille_nb.engine.scope import CURRENT_SCOPE, PAIR_RE, Scope, ViewBinder, check_bindable, current_scope, referenced
from ratatouille_nb.engine.statements import Statement, check_statement, split_statements
from ratatouille_nb.errors import RatError, ReferenceNotFoundError, SqlError, TableNotFoundError
from ratatouille_nb.resources import InvalidResourcesError, ResourceConfig, load_profile
from ratatouille_nb.settings import Settings
from ratatouille_nb.storage import Warehouse
from ratatouille_nb.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    import duckdb

    from ratatouille_nb.catalog.authorized import AuthorizedStore
    from ratatouille_nb.catalog.transaction import TableTransaction
    from ratatouille_nb.engine.writer import TableWriter, WriteOutcome
    from ratatouille_nb.products.service import ProductService


def resolve_resources(settings: Settings, workspace: Workspace) -> ResourceConfig:
    """--profile / RAT_PROFILE wins; otherwise the workspace's profile with its overrides.

    A bad override is reported at its line of workspace.yaml.
    """
    if settings.profile:
        return load_profile(settings.profile)
    res = workspace.config.resources
    try:
        return load_profile(res.profile, res.overrides)
    except InvalidResourcesError as exc:
        from ratatouille_nb.errors import ConfigError
        from ratatouille_nb.yamlfile import line_for, load_yaml_with_lines

        path = workspace.root / "workspace.yaml"
        _data, lines = load_yaml_with_lines(path)
        loc = tuple(exc.loc)
        candidates = [("resources", "overrides", *loc), ("resources", "overrides", *loc[1:]), ("resources", "profile")]
        line = next((lines[c] for c in candidates if c in lines), line_for(("resources",), lines))
        raise ConfigError(f"{path}:{line}: {exc}") from None


def warehouse_for(settings: Settings) -> Warehouse:
    """RAT_WAREHOUSE: a local folder (default RAT_HOME/warehouse) or `s3://bucket/path` with S3_* settings."""
    return Warehouse.from_settings(settings)


class Session:
    """The shared engine behind the CLI, the magics and the Python API."""

    def __init__(
        self, settings: Settings | None = None, workspace: Workspace | None = None, *, server_user: str | None = None
    ) -> None:
        from ratatouille_nb.access import resolve_principal
        from ratatouille_nb.catalog.authorized import AuthorizedStore
        from ratatouille_nb.workspace.registration import open_access

        self.settings = settings or Settings.from_env()
        self.workspace = workspace or find_workspace(self.settings)
        self.resources = resolve_resources(self.settings, self.workspace)
        self.principal = resolve_principal(self.settings, server_user=server_user)
        # Every ref operation of this session goes through the access policy (catalog/authorized.py).
        self.access, inner = open_access(self.settings, self.workspace, self.principal)
        self.store: AuthorizedStore = AuthorizedStore(inner, self.access)
        self.warehouse = warehouse_for(self.settings)
        self.branch = self.settings.branch or self.workspace.branch
        self._con: duckdb.DuckDBPyConnection | None = None
        self._binder = ViewBinder(self.warehouse)
        self._policy: SandboxPolicy | None = None
        self._watch = RegistryWatch(self.settings.home / "registry.db", self.settings.home / "access.db")
        # Entries whose files the sandbox allows beyond the default product pins: other pins of a
        # product, tables outside the storage root on a ref this session read (a merge into main).
        self._extra: dict[str, list[TableEntry]] = {}
        self._scopes = 0
        self._scope_lock = threading.Lock()
        self._products: ProductService | None = None  # one registry connection per session, opened on first use
        self._ensure_branch()

    def _ensure_branch(self) -> None:
        from ratatouille_nb.workspace.registration import ensure_branch

        if self.branch == self.workspace.branch:
            ensure_branch(self.store.inner, self.branch)  # the workspace's own branch, owned since registration

    # -- DuckDB -------------------------------------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The sandboxed connection (opened on first use; see engine/sandbox.py)."""
        if self._con is None:
            self._open()
        assert self._con is not None
        return self._con

    @property
    def sandbox(self) -> SandboxPolicy:
        """What the connection's SQL may reach."""
        if self._policy is None:
            self._open()
        assert self._policy is not None
        return self._policy

    def _open(self) -> None:
        from ratatouille_nb.engine.connection import connect, temp_directory

        self._watch.changed()  # what the registry holds now is what the policy is built from
        pins = self._readable_pins()
        readable = set(pins)
        self._extra = {k: v for k, v in self._extra.items() if not k.startswith("products.") or k in readable}
        for key, entries in self._extra.items():
            pins[key] = [*pins.get(key, []), *entries]
        temp = temp_directory(self.resources, self.spill_dir)
        policy = build_policy(self.settings, self.workspace, self.warehouse, temp, pins, self.access.registry.all())
        self._con = connect(self.resources, self.spill_dir, warehouse=self.warehouse, policy=policy)
        self._policy = policy
        self._binder.reset()

    def _readable_pins(self) -> dict[str, list[TableEntry]]:
        """`products.<name>` -> the pin this workspace reads it at, for every product it may read."""
        out: dict[str, list[TableEntry]] = {}
        for name in self._readable_names():
            try:
                out[f"products.{name}"] = [self.products.resolve(name).entry]
            except RatError:
                continue  # no release satisfies the subscription: nothing of it is readable
        return out

    def _readable_names(self) -> list[str]:
        """Products this workspace may read; none while the product registry is missing or damaged."""
        from ratatouille_nb.errors import StoreError

        if not (self.settings.home / "registry.db").is_file():
            return []
        try:
            return self.products.readable()
        except StoreError:
            return []  # reading a product says what is wrong with the registry; tables stay readable

    def _reopen(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        self._open()

    def sync_sandbox(self, needed: dict[str, TableEntry] | None = None, *, eager: bool = False) -> None:
        """Apply registry changes before the next statement; `needed` are the entries it reads.

        A revoked product (or any registry change, for tables of other workspaces' prefixes) is
        dropped from the sandbox at once by reopening the connection; files the sandbox lacks are
        added when a statement needs them, or at once with `eager` (a run's start). Never while a
        scope is open: running models keep the connection they started on.
        """
        if self._scopes:
            return
        if self._con is None:  # the connection opens with them (products: with their default pins)
            for key, entry in (needed or {}).items():
                if self._reads_foreign_files(entry) and not key.startswith("products."):
                    self._add_extra(key, entry)
            return
        policy = self.sandbox
        reopen = False
        if self._watch.changed():
            readable = {f"products.{n}" for n in self._readable_names()}
            if not {f"products.{n}" for n in policy.products} <= readable or any(not k.startswith("products.") for k in self._extra):
                self._extra = {k: v for k, v in self._extra.items() if k in readable}
                reopen = True
            elif eager:
                reopen = any(not policy.allows_pin(e) for entries in self._readable_pins().values() for e in entries)
        for key, entry in (needed or {}).items():
            if not self._reads_foreign_files(entry):
                continue
            if policy.allows_pin(entry) and not (reopen and not key.startswith("products.")):
                continue
            self._add_extra(key, entry)
            reopen = True
        if reopen:
            self._reopen()

    def _reads_foreign_files(self, entry: TableEntry) -> bool:
        """Whether DuckDB opens files of `entry` outside the workspace's storage root (a view or an empty table: none)."""
        if entry.view_sql is not None or entry.snapshot_id is None:
            return False
        return not self.warehouse.within(self.workspace.prefix, entry.metadata_location)

    def _add_extra(self, key: str, entry: TableEntry) -> None:
        entries = self._extra.setdefault(key, [])
        if entry not in entries:
            entries.append(entry)

    def allow_pins(self, entries: dict[str, TableEntry]) -> None:
        """Let the connection read these entries (`products.<name>` or `layer.table` -> entry) the session resolved."""
        self.sync_sandbox(entries)

    def ensure_iceberg(self) -> None:
        """Kept for callers: every extension loads when the connection opens."""
        _ = self.con

    @contextmanager
    def scope(self) -> Iterator[Scope]:
        """A private catalog on a cursor of the connection, for one reader running beside others.

        The pipeline executor runs each model in one: its `layer.table` views are its own, and
        `rat.sql` inside a Python model binds there too.
        """
        with self._scope_lock:
            if self._scopes == 0:
                self.sync_sandbox(eager=True)
            con = self.con
            self._scopes += 1
        try:
            scope = Scope(con, self.warehouse)
        except BaseException:
            with self._scope_lock:
                self._scopes -= 1
            raise
        token = CURRENT_SCOPE.set((id(self), scope))
        try:
            yield scope
        finally:
            CURRENT_SCOPE.reset(token)
            try:
                scope.close()
            finally:
                with self._scope_lock:
                    self._scopes -= 1

    def bind(self, sql: str, contents: dict[str, TableEntry]) -> list[str]:
        """Make the tables `sql` names visible as `layer.table` views in the connection's default catalog.

        `sql` is table keys (`silver.t bronze.x`) or exactly one SELECT: what callers bind is read.
        Readers running beside others bind in their own `scope()` instead.
        """
        check_bindable(sql)
        self.sync_sandbox(referenced(sql, contents))
        return self._binder.bind(self.con, sql, contents)

    def _target(self, needed: dict[str, TableEntry] | None = None) -> tuple[duckdb.DuckDBPyConnection, ViewBinder]:
        """The cursor and binder a statement runs on: the model's scope, else the session's connection."""
        scope = current_scope(self)
        if scope is not None:
            return scope.cursor, scope.binder
        self.sync_sandbox(needed)
        return self.con, self._binder

    def bind_all(self, ref: str | None = None) -> list[str]:
        """Bind every table of a ref as a view (for tools that query the connection directly, like JupySQL)."""
        contents = self.contents(ref)
        return self.bind(" ".join(contents), contents)

    # -- refs ---------------------------------------------------------------------------------

    def use_branch(self, name: str) -> None:
        """Switch the branch this session reads and writes (it must exist)."""
        ref = self.store.get_reference(name)
        if ref.kind != "branch":
            raise ReferenceNotFoundError(f"'{name}' is a tag; check out a branch to write")
        self.branch = name

    def contents(self, ref: str | None = None) -> dict[str, TableEntry]:
        return self.store.contents(ref or self.branch)

    @property
    def products(self) -> ProductService:
        """The data-product verbs for this session's workspace."""
        if self._products is None:
            from ratatouille_nb.products.service import ProductService

            self._products = ProductService(self)
        return self._products

    def with_products(self, sql: str, contents: dict[str, TableEntry]) -> dict[str, TableEntry]:
        """Add the pinned entries of the `products.<name>` tables a statement reads (access checked)."""
        names = {b.lower() for a, b in PAIR_RE.findall(sql) if a.lower() == "products"}
        if not names:
            return contents
        return {**contents, **self.products.entries(names)}

    def _is_branch_head(self, ref: str) -> bool:
        spec = parse_ref(ref)
        if spec.hash or spec.at or spec.back or spec.name is None:
            return False
        try:
            return self.store.get_reference(spec.name).kind == "branch"
        except ReferenceNotFoundError:
            return False

    def transaction(self, message: str, branch: str | None = None) -> TableTransaction:
        """A multi-table transaction on a branch (the pipeline executor's unit of commit)."""
        from ratatouille_nb.catalog.transaction import TableTransaction

        return TableTransaction(
            self.store, self.warehouse, self.workspace.prefix, branch or self.branch, message=message
        )

    # -- statements ---------------------------------------------------------------------------

    def sql(self, script: str, *, ref: str | None = None) -> StatementResult:
        """Run one or more statements; each write is its own atomic commit. Returns the last result.

        Every statement passes the allow-list before the first one runs: a refused one anywhere in
        the script runs nothing.
        """
        statements = split_statements(script)
        if not statements:
            raise SqlError("no SQL statement given")
        for text in statements:
            check_statement(text)
        result: StatementResult | None = None
        for text in statements:
            result = self.execute(text, ref=ref)
        assert result is not None
        return result

    def execute(self, text: str, *, ref: str | None = None) -> StatementResult:
        """Run one statement (allow-list first): a read, a scratch object, a COPY into exports/, or one commit."""
        ref = ref or self.branch
        reset_peak()
        started = time.perf_counter()
        stmt = check_statement(text)
        result = StatementResult(statement=text, ref=ref)
        if stmt.kind in ("query", "local", "copy"):
            if stmt.kind == "copy":
                self._check_copy_target(stmt)
            contents = self.with_products(text, self.contents(ref))
            con, binder = self._target(referenced(text, contents))
            try:
                binder.bind(con, text, contents)
            except SandboxError as exc:
                raise self.sandbox.refusal(exc, text) from None
            self._run(con, text, contents, ref, result, query=stmt.kind == "query")
        else:
            if not self._is_branch_head(ref):
                self.store.resolve(ref)  # an unknown ref is reported as unknown, not as read-only
                raise SqlError(
                    f"'{ref}' is not a branch head: writes go to a branch (tags, hashes and time travel are read-only)",
                    statement=text,
                )
            self._write(stmt, ref, result)
        result.elapsed = time.perf_counter() - started
        result.peak_rss_mb = peak_rss_mb()
        return result

    def _run(
        self, con: duckdb.DuckDBPyConnection, text: str, contents: dict[str, TableEntry], ref: str, result: StatementResult, *, query: bool
    ) -> None:
        import duckdb

        from ratatouille_nb.engine.duckerrors import duck_error

        try:
            if query:
                result.query = con.sql(text)
            else:
                con.execute(text)
        except duckdb.PermissionException as exc:
            raise self.sandbox.refusal(exc, text) from None
        except duckdb.CatalogException as exc:
            self._raise_missing_table(text, contents, ref)
            raise duck_error(exc, text) from None
        except duckdb.Error as exc:
            raise duck_error(exc, text) from None

    def _check_copy_target(self, stmt: Statement) -> None:
        """`COPY … TO` writes only into the workspace's exports/ folder, never onto table files."""
        from ratatouille_nb.engine.errors import ForbiddenStatementError

        assert stmt.copy_target is not None
        exports = exports_dir(self.workspace)
        target = stmt.copy_target
        real = Path(os.path.realpath(Path(target).expanduser()))
        inside = real != exports.resolve() and real.is_relative_to(exports.resolve())
        if "://" in target or not inside or (self.warehouse.is_local and real.is_relative_to(Path(self.warehouse.root).resolve())):
            raise ForbiddenStatementError(
                f"COPY … TO '{target}' is refused: COPY writes only into the workspace's exports folder {exports}/",
                statement=stmt.sql,
                hint=f"COPY (SELECT …) TO '{exports}/<file>' (a relative path is relative to the current folder)",
            )
        exports.mkdir(parents=True, exist_ok=True)

    def _raise_missing_table(self, sql: str, contents: dict[str, TableEntry], ref: str) -> None:
        layers = set(self.workspace.config.layers) | {k.split(".")[0] for k in contents}
        for a, b in PAIR_RE.findall(sql):
            key = f"{a}.{b}".lower()
            if a.lower() in layers and key not in contents:
                raise TableNotFoundError(
                    f"table '{key}' does not exist on '{ref}'", hint=f"list tables with `rat tables --branch {ref}`"
                )

    def _write(self, stmt: Statement, branch: str, result: StatementResult) -> None:
        from ratatouille_nb.engine.writer import TableWriter

        message = " ".join(stmt.sql.split())
        with self.transaction(message[:500], branch=branch) as txn:
            contents = self.with_products(stmt.sql, txn.tables.base)
            con, binder = self._target(referenced(stmt.sql, contents))
            writer = TableWriter(con, txn, self.resources)
            try:
                if stmt.kind != "drop":  # a drop reads nothing: a table with unreadable metadata stays droppable
                    binder.bind(con, stmt.sql, contents)
                result.writes.append(self._write_one(writer, stmt))
            except SandboxError as exc:
                raise self.sandbox.refusal(exc, stmt.sql) from None
        result.commit = txn.result

    def _write_one(self, writer: TableWriter, stmt: Statement) -> WriteOutcome:
        assert stmt.target is not None
        if stmt.kind == "create":
            return writer.create(
                stmt.target,
                stmt.select_sql,
                column_defs=stmt.column_defs,
                replace=stmt.replace,
                if_not_exists=stmt.if_not_exists,
                partition_by=self.workspace.config.partition_by(stmt.target.split(".")[0]),
                statement=stmt.sql,
            )
        if stmt.kind == "insert":
            assert stmt.select_sql is not None
            return writer.insert(stmt.target, stmt.select_sql, stmt.columns, statement=stmt.sql)
        if stmt.kind == "delete":
            return writer.delete(stmt.target, stmt.where_sql, statement=stmt.sql)
        if stmt.kind == "update":
            return writer.update(stmt.target, stmt.assignments, stmt.where_sql, statement=stmt.sql)
        return writer.drop(stmt.target, if_exists=stmt.if_exists)

    # -- introspection ------------------------------------------------------------------------

    def table_stats(self, key: str, ref: str | None = None) -> dict[str, Any]:
        """Schema, live rows, data and delete files, snapshots of one table, from Iceberg metadata only."""
        from ratatouille_nb.catalog.tables import read_metadata
        from ratatouille_nb.catalog.typenames import duck_type_of

        entry = self.contents(ref).get(key)
        if entry is None:
            raise TableNotFoundError(f"table '{key}' does not exist on '{ref or self.branch}'")
        if entry.view_sql is not None:
            self.bind(key, self.contents(ref))
            cols = self.con.execute(f"DESCRIBE {key}").fetchall()
            return {
                "table": key, "kind": "view", "rows": 0, "data_rows": 0, "deleted_rows": 0, "deleted_fraction": 0.0, "files": 0,
                "delete_files": 0, "size_bytes": 0, "snapshot_id": None, "snapshots": 0,
                "schema": [(c[0], c[1], True) for c in cols], "partition_by": [], "metadata_location": "", "location": "",
                "view_sql": entry.view_sql,
            }
        meta = read_metadata(self.warehouse.file_io(), entry.metadata_location, key)
        snap = meta.current_snapshot()
        summary = snap.summary.additional_properties if snap and snap.summary else {}
        data_rows = int(summary.get("total-records", 0))
        # Position deletes never repeat a position and go with their data file (engine/rowlevel.py),
        # so live rows are exactly the data files' rows minus the positions deleted.
        deleted = int(summary.get("total-position-deletes", 0))
        return {
            "table": key,
            "kind": "table",
            "rows": data_rows - deleted,
            "data_rows": data_rows,
            "deleted_rows": deleted,
            "deleted_fraction": round(deleted / data_rows, 4) if data_rows else 0.0,
            "files": int(summary.get("total-data-files", 0)),
            "delete_files": int(summary.get("total-delete-files", 0)),
            "size_bytes": int(summary.get("total-files-size", 0)),
            "snapshot_id": snap.snapshot_id if snap else None,
            "snapshots": len(meta.snapshots),
            # DuckDB's type names (catalog/typenames.py), as for views and in every result
            "schema": [(f.name, duck_type_of(f.field_type), not f.required) for f in meta.schema().fields],
            "partition_by": [f.name for f in meta.spec().fields],
            "metadata_location": entry.metadata_location,
            "location": meta.location,
        }

    @property
    def spill_dir(self) -> Path:
        """This workspace's own spill folder (RAT_HOME/tmp/<workspace>): another workspace's SQL cannot reach it."""
        return self.settings.workspace_spill_dir(self.workspace.name)

    @property
    def closed(self) -> bool:
        return getattr(self, "_closed", False)

    def close(self) -> None:
        self._closed = True
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._products is not None:
            self._products.registry.close()
            self._products = None
        self._watch.close()
        self.store.close()
        self.access.registry.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(**overrides: str | None) -> Session:
    """A session from flags/env (`home`, `workspace`, `profile`, `branch`, `catalog`)."""
    return Session(Settings.from_env(**overrides))


__all__ = ["Path", "Session", "open_session"]

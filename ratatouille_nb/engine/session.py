"""One engine session: a workspace, its branch and profile, a DuckDB connection, the version store.

Tables of the ref being read appear as DuckDB views `layer.table` over `iceberg_scan(<metadata>)`,
bound on demand for the tables a statement names (so a branch with 100 tables costs nothing until
one is used). Writes go through `TableWriter` inside a `TableTransaction`: one commit each.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.refs import parse_ref
from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
from ratatouille_nb.engine.result import StatementResult
from ratatouille_nb.engine.sqltypes import duck_type_of, quote_ident
from ratatouille_nb.engine.statements import Statement, classify, split_statements
from ratatouille_nb.errormap import mapped_errors
from ratatouille_nb.errors import ReferenceNotFoundError, SqlError, TableNotFoundError
from ratatouille_nb.resources import ResourceConfig, load_profile
from ratatouille_nb.settings import Settings
from ratatouille_nb.storage import Warehouse
from ratatouille_nb.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    import duckdb

    from ratatouille_nb.catalog.authorized import AuthorizedStore
    from ratatouille_nb.catalog.transaction import TableTransaction
    from ratatouille_nb.products.service import ProductService

_PAIR_RE = re.compile(r'"?([A-Za-z_][\w]*)"?\s*\.\s*"?([A-Za-z_][\w]*)"?')


def resolve_resources(settings: Settings, workspace: Workspace) -> ResourceConfig:
    """--profile / RAT_PROFILE wins; otherwise the workspace's profile with its overrides."""
    if settings.profile:
        return load_profile(settings.profile)
    res = workspace.config.resources
    return load_profile(res.profile, res.overrides)


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
        self._iceberg_loaded = False
        self._bound: dict[str, str] = {}
        self._products: ProductService | None = None  # one registry connection per session, opened on first use
        self._ensure_branch()

    def _ensure_branch(self) -> None:
        from ratatouille_nb.workspace.registration import ensure_branch

        if self.branch == self.workspace.branch:
            ensure_branch(self.store.inner, self.branch)  # the workspace's own branch, owned since registration

    # -- DuckDB -------------------------------------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            from ratatouille_nb.engine.connection import connect

            self._con = connect(self.resources, self.settings.spill_dir, extensions=(), warehouse=self.warehouse)
        return self._con

    def ensure_iceberg(self) -> None:
        if not self._iceberg_loaded:
            from ratatouille_nb.engine.extensions import load_extensions

            # httpfs (for an S3 warehouse) is loaded when the connection opens, with its secret.
            load_extensions(self.con, ("avro", "iceberg"))
            self._iceberg_loaded = True

    def _view_sql(self, key: str, entry: TableEntry) -> str:
        layer, name = key.split(".", 1)
        target = f"{quote_ident(layer)}.{quote_ident(name)}"
        if entry.view_sql is not None:
            return f"CREATE OR REPLACE VIEW {target} AS {entry.view_sql}"
        if entry.snapshot_id is None:
            from ratatouille_nb.catalog.tables import read_metadata

            schema = read_metadata(self.warehouse.file_io(), entry.metadata_location).schema()
            cols = ", ".join(f"CAST(NULL AS {duck_type_of(f.field_type)}) AS {quote_ident(f.name)}" for f in schema.fields)
            return f"CREATE OR REPLACE VIEW {target} AS SELECT {cols} WHERE false"
        self.ensure_iceberg()
        location = entry.metadata_location.replace("'", "''")
        return f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM iceberg_scan('{location}')"

    def bind(self, sql: str, contents: dict[str, TableEntry], _depth: int = 0) -> list[str]:
        """Make the tables `sql` names visible as `layer.table` views at the given contents."""
        for key in [k for k in self._bound if k not in contents]:
            layer, name = key.split(".", 1)
            self.con.execute(f"DROP VIEW IF EXISTS {quote_ident(layer)}.{quote_ident(name)}")
            del self._bound[key]
        wanted = {f"{a}.{b}".lower() for a, b in _PAIR_RE.findall(sql)} & set(contents)
        for key in sorted(wanted):
            entry = contents[key]
            bound_as = entry.view_sql if entry.view_sql is not None else entry.metadata_location
            if entry.view_sql is not None and _depth < 20:
                self.bind(entry.view_sql, contents, _depth + 1)
            if self._bound.get(key) == bound_as:
                continue
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(key.split('.')[0])}")
            with mapped_errors(path=entry.metadata_location or None, subject=key):  # a broken table is named as such
                self.con.execute(self._view_sql(key, entry))
            self._bound[key] = bound_as
        return sorted(wanted)

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
        names = {b.lower() for a, b in _PAIR_RE.findall(sql) if a.lower() == "products"}
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
        """Run one or more statements; each write is its own atomic commit. Returns the last result."""
        statements = split_statements(script)
        if not statements:
            raise SqlError("no SQL statement given")
        result: StatementResult | None = None
        for text in statements:
            result = self.execute(text, ref=ref)
        assert result is not None
        return result

    def execute(self, text: str, *, ref: str | None = None) -> StatementResult:
        import duckdb

        from ratatouille_nb.engine.duckerrors import duck_error

        ref = ref or self.branch
        reset_peak()
        started = time.perf_counter()
        stmt = classify(text)
        result = StatementResult(statement=text, ref=ref)
        if stmt.kind in ("query", "local"):
            contents = self.with_products(text, self.contents(ref))
            self.bind(text, contents)
            try:
                if stmt.kind == "query":
                    result.query = self.con.sql(text)
                else:
                    self.con.execute(text)
            except duckdb.CatalogException as exc:
                self._raise_missing_table(text, contents, ref)
                raise duck_error(exc, text) from None
            except duckdb.Error as exc:
                raise duck_error(exc, text) from None
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

    def _raise_missing_table(self, sql: str, contents: dict[str, TableEntry], ref: str) -> None:
        layers = set(self.workspace.config.layers) | {k.split(".")[0] for k in contents}
        for a, b in _PAIR_RE.findall(sql):
            key = f"{a}.{b}".lower()
            if a.lower() in layers and key not in contents:
                raise TableNotFoundError(
                    f"table '{key}' does not exist on '{ref}'", hint=f"list tables with `rat tables --branch {ref}`"
                )

    def _write(self, stmt: Statement, branch: str, result: StatementResult) -> None:
        from ratatouille_nb.engine.writer import TableWriter

        message = " ".join(stmt.sql.split())
        with self.transaction(message[:500], branch=branch) as txn:
            if stmt.kind != "drop":  # a drop reads nothing: a table with unreadable metadata stays droppable
                self.bind(stmt.sql, self.with_products(stmt.sql, txn.tables.base))
            writer = TableWriter(self.con, txn, self.resources)
            assert stmt.target is not None
            if stmt.kind == "create":
                layer = stmt.target.split(".")[0]
                outcome = writer.create(
                    stmt.target,
                    stmt.select_sql,
                    column_defs=stmt.column_defs,
                    replace=stmt.replace,
                    if_not_exists=stmt.if_not_exists,
                    partition_by=self.workspace.config.partition_by(layer),
                    statement=stmt.sql,
                )
            elif stmt.kind == "insert":
                assert stmt.select_sql is not None
                outcome = writer.insert(stmt.target, stmt.select_sql, stmt.columns, statement=stmt.sql)
            elif stmt.kind == "delete":
                outcome = writer.delete(stmt.target, stmt.where_sql, statement=stmt.sql)
            elif stmt.kind == "update":
                outcome = writer.update(stmt.target, stmt.assignments, stmt.where_sql, statement=stmt.sql)
            else:
                outcome = writer.drop(stmt.target, if_exists=stmt.if_exists)
            result.writes.append(outcome)
        result.commit = txn.result

    # -- introspection ------------------------------------------------------------------------

    def table_stats(self, key: str, ref: str | None = None) -> dict[str, Any]:
        """Schema, rows, files and snapshots of one table, from Iceberg metadata only."""
        from ratatouille_nb.catalog.tables import read_metadata

        entry = self.contents(ref).get(key)
        if entry is None:
            raise TableNotFoundError(f"table '{key}' does not exist on '{ref or self.branch}'")
        if entry.view_sql is not None:
            self.bind(key, self.contents(ref))
            cols = self.con.execute(f"DESCRIBE {key}").fetchall()
            return {
                "table": key, "kind": "view", "rows": 0, "files": 0, "size_bytes": 0, "snapshot_id": None, "snapshots": 0,
                "schema": [(c[0], c[1], True) for c in cols], "partition_by": [], "metadata_location": "", "location": "",
                "view_sql": entry.view_sql,
            }
        meta = read_metadata(self.warehouse.file_io(), entry.metadata_location, key)
        snap = meta.current_snapshot()
        summary = snap.summary.additional_properties if snap and snap.summary else {}
        return {
            "table": key,
            "kind": "table",
            "rows": int(summary.get("total-records", 0)),
            "files": int(summary.get("total-data-files", 0)),
            "size_bytes": int(summary.get("total-files-size", 0)),
            "snapshot_id": snap.snapshot_id if snap else None,
            "snapshots": len(meta.snapshots),
            "schema": [(f.name, str(f.field_type), not f.required) for f in meta.schema().fields],
            "partition_by": [f.name for f in meta.spec().fields],
            "metadata_location": entry.metadata_location,
            "location": meta.location,
        }

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

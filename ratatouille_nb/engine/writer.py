"""Streaming writes: DuckDB `COPY` to Parquet in the table's folder, then pyiceberg registers the files.

Rows never pass through Python: DuckDB streams the SELECT into files sized from the profile,
and pyiceberg only reads their footers. DELETE and UPDATE are merge-on-read by default: the
positions of the rows they change go into Iceberg v2 position-delete files (engine/rowlevel.py,
catalog/deletes.py) and updated rows into new data files, so the cost follows the rows changed.
Copy-on-write (the table property `write.delete.mode` / `write.update.mode` = copy-on-write)
rewrites just the files holding matching rows. Every change is staged in a `TableTransaction`,
so nothing is visible until the branch commit, and a failure deletes the files the statement wrote.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ratatouille_nb.catalog.deletes import LiveFile, RowDelta, commit_row_delta, delete_files_of, live_files
from ratatouille_nb.catalog.liverows import FILE_COL, POS_COL, aligned_select, live_source_sql, read_files_sql
from ratatouille_nb.engine.duckerrors import duck_error
from ratatouille_nb.engine.extensions import load_extensions
from ratatouille_nb.engine.rowlevel import COPY_ON_WRITE, PlannedDelta, PositionDeletes, subtract_deleted, write_mode
from ratatouille_nb.engine.rows import one_row
from ratatouille_nb.engine.sqltypes import quote_ident, storable_projection
from ratatouille_nb.errors import SqlError, TableExistsError, TableNotFoundError

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Operation

    from ratatouille_nb.catalog.transaction import TableTransaction
    from ratatouille_nb.resources import ResourceConfig


@dataclass
class WriteOutcome:
    """What one write did. A merge-on-read change replayed on a newer head at commit time
    (catalog/transaction.py) adds the rows it also deleted there to `rows` / `updated`."""

    table: str
    operation: str
    rows: int
    updated: int = 0


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_list(paths: list[str]) -> str:
    return "[" + ", ".join(_sql_str(p) for p in paths) + "]"


def partition_spec_for(schema: Schema, columns: list[str]) -> PartitionSpec:
    """Identity partitioning on the given columns (the workspace layer's `partition_by`)."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    fields = []
    for i, name in enumerate(columns):
        source = schema.find_field(name)
        fields.append(PartitionField(source_id=source.field_id, field_id=1000 + i, transform=IdentityTransform(), name=name))
    return PartitionSpec(*fields)


def field_ids_option(schema: Schema) -> str:
    """DuckDB's `FIELD_IDS` COPY option carrying the Iceberg schema's field ids (nested ones too).

    Parquet files with field ids are what the Iceberg spec expects: every reader maps columns by
    id (Spark, Trino, Daft, polars, pyiceberg), not only those that apply the table's name mapping.
    """
    from pyiceberg.types import ListType, MapType, StructType

    def node(field_type: object, field_id: int) -> str:
        if isinstance(field_type, StructType):
            children = [f"{_sql_str(f.name)}: {node(f.field_type, f.field_id)}" for f in field_type.fields]
        elif isinstance(field_type, ListType):
            children = [f"'element': {node(field_type.element_type, field_type.element_id)}"]
        elif isinstance(field_type, MapType):
            children = [
                f"'key': {node(field_type.key_type, field_type.key_id)}",
                f"'value': {node(field_type.value_type, field_type.value_id)}",
            ]
        else:
            return str(field_id)
        return "{" + ", ".join([f"'__duckdb_field_id': {field_id}", *children]) + "}"

    return "FIELD_IDS {" + ", ".join(f"{_sql_str(f.name)}: {node(f.field_type, f.field_id)}" for f in schema.fields) + "}"


def identity_partition_columns(table: Table) -> list[str]:
    schema = table.schema()
    return [schema.find_column_name(f.source_id) for f in table.spec().fields]  # type: ignore[misc]


class TableWriter:
    """Runs write statements for one transaction on one DuckDB connection."""

    spill_dir: Path | None = None

    def __init__(self, con: duckdb.DuckDBPyConnection, txn: TableTransaction, resources: ResourceConfig) -> None:
        self.con = con
        self.txn = txn
        self.resources = resources

    # -- building blocks ----------------------------------------------------------------------

    def _describe(self, select_sql: str, statement: str) -> list[tuple[str, str]]:
        try:
            return [(r[0], r[1]) for r in self.con.execute(f"DESCRIBE {select_sql}").fetchall()]
        except duckdb.Error as exc:
            raise duck_error(exc, statement) from None

    def copy_into(
        self, table_location: str, select_sql: str, partition_cols: list[str], statement: str, *, schema: Schema | None = None
    ) -> tuple[int, list[str]]:
        """Stream a SELECT into new Parquet files under the table; returns (rows, file paths).

        With the table's `schema` (whose column names the SELECT yields), the files carry its field ids.
        """
        warehouse = self.txn.warehouse
        folder = warehouse.new_data_dir(table_location)
        # A workspace writes only under its own storage prefix (refused before any file exists).
        warehouse.check_within(self.txn.prefix, folder, "data files")
        warehouse.makedirs(folder)
        self.txn.wrote_dir(folder)
        options = [
            "FORMAT parquet",
            "COMPRESSION zstd",
            "FILENAME_PATTERN 'part-{uuid}'",
            "RETURN_FILES true",
        ]
        if not partition_cols:
            # DuckDB cannot split partitioned output by size; partitions bound file size there.
            options.append(f"FILE_SIZE_BYTES '{self.resources.target_file_size_mb}MB'")
        else:
            cols = ", ".join(quote_ident(c) for c in partition_cols)
            options.append(f"PARTITION_BY ({cols})")
            options.append("WRITE_PARTITION_COLUMNS true")
        if schema is not None:
            options.append(field_ids_option(schema))
        try:
            rows, files = one_row(self.con, f"COPY ({select_sql}) TO {_sql_str(folder)} ({', '.join(options)})")
        except duckdb.Error as exc:
            raise duck_error(exc, statement) from None
        return int(rows), list(files)

    def _add_files(self, table: Table, files: list[str]) -> None:
        if files:
            with self.txn.lock, table.transaction() as tx:
                tx.add_files(files, check_duplicate_files=False)

    def live(self, table: Table) -> dict[str, LiveFile]:
        """The table's live data files with their delete files (manifests only)."""
        return live_files(table.metadata, table.io)

    def _present(self, paths: list[str], statement: str) -> set[str]:
        """Columns the given data files hold (older files lack columns added since)."""
        return {n for n, _ in self._describe(f"SELECT * FROM {read_files_sql(paths)}", statement)}

    def _iceberg_reads(self, table: Table) -> bool:
        """Whether DuckDB's iceberg_scan can give this table's live rows with their file (its extension is
        loaded, and no column shadows its `filename` virtual column or the names used here)."""
        names = {f.name for f in table.schema().fields}
        if {"filename", FILE_COL, POS_COL} & names or table.current_snapshot() is None:
            return False
        # duckdb_functions(), not duckdb_extensions(): the latter lists the extension folder, which a sandboxed connection may not.
        loaded = self.con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'iceberg_scan'").fetchone()
        if not (loaded and loaded[0]):
            try:
                load_extensions(self.con, ("avro", "iceberg"))
            except duckdb.Error:  # a locked-down connection that did not load it: read the files directly
                return False
        return True

    def live_from(self, table: Table, files: list[LiveFile], statement: str) -> tuple[str, set[str], str | None]:
        """`FROM …  AS d` over the live rows of `files` (every column of the table, absent ones NULL),
        the columns it has, and the condition that keeps only `files` (None: it holds only them).

        DuckDB's `iceberg_scan` applies position deletes far faster than an anti-join; the files are
        read directly (catalog/liverows.py) when it cannot be used.
        """
        if self._iceberg_reads(table):
            every = {f.name for f in table.schema().fields}
            # Its `filename` virtual column, renamed outside: the extension's own `filename=` option
            # fails on partitioned tables (duckdb-iceberg 1.5.5, an internal error that invalidates the database).
            source = f"(SELECT *, filename AS {FILE_COL} FROM iceberg_scan({_sql_str(table.metadata_location)})) AS d"
            whole = {f.path for f in files} == set(self.live(table))
            return source, every, None if whole else f"d.{FILE_COL} IN ({', '.join(_sql_str(f.path) for f in files)})"
        present = self._present([f.path for f in files], statement)
        return live_source_sql(files), present, None

    def live_select(self, table: Table, files: list[LiveFile], statement: str, where: str | None = None, select: str | None = None) -> str:
        """The live rows of `files` with the table's current columns (absent ones NULL), or `select` over them."""
        source, present, only = self.live_from(table, files, statement)
        columns: list[tuple[str, str | None]] = list(self._schema_columns("", table))
        conditions = [c for c in (only, f"({where})" if where else None) if c]
        return f"SELECT {select or aligned_select(columns, present)} FROM {source}" + (f" WHERE {' AND '.join(conditions)}" if conditions else "")

    def data_files(self, table: Table, paths: list[str]) -> list[DataFile]:
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        return [parquet_file_to_data_file(table.io, table.metadata, p) for p in paths]

    def _commit(self, table: Table, delta: RowDelta) -> None:
        with self.txn.lock:
            commit_row_delta(table, delta)

    def commit_planned(self, table: Table, plan: PlannedDelta, operation: str, outcome: WriteOutcome) -> WriteOutcome:
        """Commit a merge-on-read change and record it with a replay for a rebase (catalog/transaction.py)."""
        self._commit(table, plan.delta)
        counted = {"rows": 0}

        def replay(current: Table) -> None:
            with self._replay_con() as con:
                delta, more = plan.rebased(con, self.txn, current, self.txn.branch)
                self._commit(current, delta)
            # A later rebase replays on the original plan again: count its extra rows once.
            change = more - counted["rows"]
            counted["rows"] = more
            if outcome.operation == "merge":
                outcome.updated += change
            else:
                outcome.rows += change

        self.txn.record(plan.key, operation, replay=replay)
        return outcome

    @contextmanager
    def _replay_con(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This writer's connection, or a fresh one when it was a model's cursor, closed by now."""
        try:
            self.con.execute("SELECT 1")
            usable = True
        except duckdb.ConnectionException:
            usable = False
        if usable:
            yield self.con
            return
        from ratatouille_nb.engine.connection import connect

        con = connect(self.resources, self.spill_dir or Path(tempfile.gettempdir()), warehouse=self.txn.warehouse)
        try:
            yield con
        finally:
            con.close()

    def _schema_columns(self, key: str, table: Table) -> list[tuple[str, str]]:
        from ratatouille_nb.engine.sqltypes import duck_type_of

        return [(f.name, duck_type_of(f.field_type)) for f in table.schema().fields]

    def _new_table(self, key: str, columns: list[tuple[str, str]], partition_cols: list[str], location: str) -> Table:
        from pyiceberg.catalog import Catalog
        from pyiceberg.schema import assign_fresh_schema_ids

        probe = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in columns)
        arrow_schema = self.con.execute(f"SELECT {probe} LIMIT 0").arrow().schema
        schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(arrow_schema))
        names = {f.name for f in schema.fields}
        partitions = [c for c in partition_cols if c in names]
        with self.txn.lock:
            return self.txn.tables.create_table(
                key, schema=schema, location=location, partition_spec=partition_spec_for(schema, partitions)
            )

    # -- statements ---------------------------------------------------------------------------

    def create(
        self,
        key: str,
        select_sql: str | None,
        *,
        column_defs: list[tuple[str, str]] | None = None,
        replace: bool = False,
        if_not_exists: bool = False,
        partition_by: list[str] | None = None,
        statement: str = "",
    ) -> WriteOutcome:
        """CREATE [OR REPLACE] TABLE key AS SELECT … (or with a column list and no rows)."""
        existed = self.txn.exists(key)
        if existed and not replace:
            if if_not_exists:
                return WriteOutcome(key, "noop", 0)
            raise TableExistsError(
                f"table '{key}' already exists on branch '{self.txn.branch}'",
                hint="use CREATE OR REPLACE TABLE, or INSERT INTO it",
            )
        if select_sql is not None:
            described = self._describe(select_sql, statement)
            projection = storable_projection(described)
            select = f"SELECT {projection} FROM ({select_sql}) AS _src"
            columns = self._describe(select, statement)
        elif column_defs:
            columns = [(n, t) for n, t in column_defs]
            select = None
        else:
            raise SqlError("CREATE TABLE needs AS SELECT … or a column list", statement=statement)
        location = self.txn.warehouse.table_location(self.txn.prefix, key)
        if existed:
            old = self.txn.load(key)
            same_schema = [(n, t) for n, t in self._schema_columns(key, old)] == columns
            if same_schema:
                return self._overwrite_all(key, old, select, statement)
            with self.txn.lock:
                self.txn.tables.drop_table(key)
        table = self._new_table(key, columns, partition_by or [], location)
        rows = 0
        if select is not None:
            rows, files = self.copy_into(location, select, identity_partition_columns(table), statement, schema=table.schema())
            self._add_files(table, files)
        self.txn.record(key, "replace" if existed else "create")
        return WriteOutcome(key, "replace" if existed else "create", rows)

    def _overwrite_all(self, key: str, table: Table, select: str | None, statement: str) -> WriteOutcome:
        rows, files = 0, list[str]()
        if select is not None:
            rows, files = self.copy_into(table.location(), select, identity_partition_columns(table), statement, schema=table.schema())
        self._rewrite(table, list(self.live(table).values()), files)
        self.txn.record(key, "replace")
        return WriteOutcome(key, "replace", rows)

    def insert(self, key: str, select_sql: str, columns: list[str] | None = None, statement: str = "") -> WriteOutcome:
        """INSERT INTO key [(cols)] SELECT/VALUES …: cast to the table's schema, append files."""
        table = self.txn.load(key)
        target = self._schema_columns(key, table)
        source = self._describe(select_sql, statement)
        names = columns or [n for n, _ in target]
        unknown = [c for c in names if c not in {n for n, _ in target}]
        if unknown:
            raise SqlError(f"table '{key}' has no column(s) {', '.join(unknown)}", statement=statement)
        if len(source) != len(names):
            raise SqlError(
                f"INSERT into '{key}' gives {len(source)} value(s) for {len(names)} column(s)", statement=statement
            )
        aliases = ", ".join(quote_ident(f"c{i}") for i in range(len(source)))
        by_name = {n: f"c{i}" for i, n in enumerate(names)}
        projection = ", ".join(
            f"CAST({quote_ident(by_name[n])} AS {t}) AS {quote_ident(n)}" if n in by_name else f"CAST(NULL AS {t}) AS {quote_ident(n)}"
            for n, t in target
        )
        select = f"SELECT {projection} FROM ({select_sql}) AS _src({aliases})"
        rows, files = self.copy_into(table.location(), select, identity_partition_columns(table), statement, schema=table.schema())

        def replay(current: Table) -> None:
            self._add_files(current, files)

        replay(table)
        self.txn.record(key, "append", replay=replay)
        return WriteOutcome(key, "append", rows)

    def _rewrite(self, table: Table, replaced: list[LiveFile], added_paths: list[str], operation: Operation | None = None) -> None:
        """One snapshot: drop the `replaced` data files (and their delete files), add the new ones."""
        from pyiceberg.table.snapshots import Operation

        op = operation or (Operation.OVERWRITE if replaced else Operation.APPEND)
        self._commit(
            table,
            RowDelta(
                op,
                added_data=self.data_files(table, added_paths),
                removed_data=[f.data_file for f in replaced],
                removed_deletes=delete_files_of(replaced),
            ),
        )

    def _matching_files(self, table: Table, where_sql: str | None, statement: str) -> tuple[list[LiveFile], int]:
        """Live data files holding live rows that match WHERE, and how many such rows (reads no other column)."""
        live = self.live(table)
        if not live:
            return [], 0
        if where_sql is None:
            hits = {p: f.live_rows for p, f in live.items() if f.live_rows > 0}
        else:
            sql = self.live_select(table, list(live.values()), statement, where=where_sql, select=f"d.{FILE_COL}, count(*)") + " GROUP BY ALL"
            try:
                hits = {str(p): int(n) for p, n in self.con.execute(sql).fetchall()}
            except duckdb.Error as exc:
                raise duck_error(exc, statement) from None
        return [live[p] for p in hits], sum(hits.values())

    def _assigned(self, table: Table, present: set[str], assignments: list[tuple[str, str]], cond: str, key: str, statement: str) -> str:
        """The SELECT list of UPDATE: assigned columns computed where `cond` holds, the others as read."""
        columns = self._schema_columns(key, table)
        sets = dict(assignments)
        unknown = [c for c in sets if c not in {n for n, _ in columns}]
        if unknown:
            raise SqlError(f"table '{key}' has no column(s) {', '.join(unknown)}", statement=statement)
        parts = []
        for name, duck_type in columns:
            col = f"d.{quote_ident(name)}" if name in present else f"CAST(NULL AS {duck_type})"
            if name in sets:
                col = f"CASE WHEN {cond} THEN CAST(({sets[name]}) AS {duck_type}) ELSE {col} END"
            parts.append(f"{col} AS {quote_ident(name)}")
        return ", ".join(parts)

    def _rewrite_files(self, key: str, table: Table, where_sql: str | None, assignments: list[tuple[str, str]] | None, statement: str) -> WriteOutcome:
        """Copy-on-write DELETE/UPDATE: rewrite the files holding matching rows."""
        from pyiceberg.table.snapshots import Operation

        op = "update" if assignments is not None else "delete"
        files, affected = self._matching_files(table, where_sql, statement)
        if not files:
            return WriteOutcome(key, op, 0)
        cond = f"COALESCE(({where_sql}), false)" if where_sql else "true"
        if assignments is not None:
            present = self.live_from(table, files, statement)[1]
            select = self.live_select(table, files, statement, select=self._assigned(table, present, assignments, cond, key, statement))
        else:
            select = self.live_select(table, files, statement, where=f"NOT {cond}")
        _rows, new_files = self.copy_into(table.location(), select, identity_partition_columns(table), statement, schema=table.schema())
        self._rewrite(table, files, new_files, Operation.OVERWRITE if assignments is not None else Operation.DELETE)
        self.txn.record(key, "overwrite" if assignments is not None else "delete")
        return WriteOutcome(key, op, affected)

    def _change_rows(self, key: str, table: Table, where_sql: str | None, assignments: list[tuple[str, str]] | None, statement: str) -> WriteOutcome:
        """Merge-on-read DELETE/UPDATE: position deletes for the matching rows, updated rows as new files.

        One scan of the table evaluates WHERE (and, for UPDATE, the new values) into a temp table,
        so a non-deterministic condition still deletes exactly the rows it rewrites.
        """
        from pyiceberg.table.snapshots import Operation

        op = "update" if assignments is not None else "delete"
        live = self.live(table)
        if not live:
            return WriteOutcome(key, op, 0)
        files = list(live.values())
        cond = f"COALESCE(({where_sql}), false)" if where_sql else "true"
        if assignments is None:
            with PositionDeletes(self.con, self.txn, table, live) as positions:
                rows = positions.collect(_rows_where(cond)(files), statement)  # deleted rows are taken out there
                if rows == 0:
                    return WriteOutcome(key, op, 0)
                deleted = positions.write(statement)
            delta = RowDelta(Operation.DELETE, added_deletes=deleted.added_deletes, removed_data=deleted.removed_data,
                             removed_deletes=deleted.removed_deletes)
            return self.commit_planned(table, PlannedDelta(key, delta, live, hits=_rows_where(cond)), "delete", WriteOutcome(key, op, rows))
        present = self._present([f.path for f in files], statement)
        staged = f"_rat_upd_{uuid.uuid4().hex[:12]}"
        try:
            try:
                values = self._assigned(table, present, assignments, "true", key, statement)
                source = read_files_sql([f.path for f in files], positions=True)
                self.con.execute(f"CREATE TEMP TABLE {staged} AS SELECT d.{FILE_COL}, d.{POS_COL}, {values} FROM {source} AS d WHERE {cond}")
                subtract_deleted(self.con, staged, live)
            except duckdb.Error as exc:
                raise duck_error(exc, statement) from None
            with PositionDeletes(self.con, self.txn, table, live) as positions:
                rows = positions.collect(f"SELECT {FILE_COL}, {POS_COL} FROM {staged}", statement)
                if rows == 0:
                    return WriteOutcome(key, op, 0)
                names = ", ".join(quote_ident(n) for n, _ in self._schema_columns(key, table))
                _n, new_files = self.copy_into(
                    table.location(), f"SELECT {names} FROM {staged}", identity_partition_columns(table), statement, schema=table.schema()
                )
                deleted = positions.write(statement)
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {staged}")
        self._commit(table, RowDelta(Operation.OVERWRITE, added_data=self.data_files(table, new_files), added_deletes=deleted.added_deletes,
                                     removed_data=deleted.removed_data, removed_deletes=deleted.removed_deletes))
        self.txn.record(key, "overwrite")
        return WriteOutcome(key, op, rows)

    def delete(self, key: str, where_sql: str | None, statement: str = "") -> WriteOutcome:
        """DELETE FROM key WHERE …: position deletes (merge-on-read) or a rewrite of the files holding matches."""
        table = self.txn.load(key)
        if write_mode(table, "delete") == COPY_ON_WRITE:
            return self._rewrite_files(key, table, where_sql, None, statement)
        return self._change_rows(key, table, where_sql, None, statement)

    def update(self, key: str, assignments: list[tuple[str, str]], where_sql: str | None, statement: str = "") -> WriteOutcome:
        """UPDATE key SET … WHERE …: like DELETE, plus the updated rows as new data files."""
        table = self.txn.load(key)
        if write_mode(table, "update") == COPY_ON_WRITE:
            return self._rewrite_files(key, table, where_sql, assignments, statement)
        return self._change_rows(key, table, where_sql, assignments, statement)

    def drop(self, key: str, if_exists: bool = False) -> WriteOutcome:
        if not self.txn.exists(key):
            if if_exists:
                return WriteOutcome(key, "noop", 0)
            raise TableNotFoundError(f"table '{key}' does not exist on branch '{self.txn.branch}'")
        with self.txn.lock:
            self.txn.tables.drop_table(key)
        self.txn.record(key, "drop")
        return WriteOutcome(key, "drop", 0)


def _rows_where(cond: str) -> Callable[[list[LiveFile]], str]:
    """(file, position) of the rows of some files that satisfy `cond` (deleted rows included)."""

    def hits(files: list[LiveFile]) -> str:
        return f"SELECT d.{FILE_COL}, d.{POS_COL} FROM {read_files_sql([f.path for f in files], positions=True)} AS d WHERE {cond}"

    return hits


__all__ = ["TableWriter", "WriteOutcome"]

"""Streaming writes: DuckDB `COPY` to Parquet in the table's folder, then pyiceberg registers the files.

Rows never pass through Python: DuckDB streams the SELECT into files sized from the profile,
and pyiceberg only reads their footers. Deletes and updates are copy-on-write of just the files
holding matching rows. Every change is staged in a `TableTransaction`, so nothing is visible
until the branch commit, and a failure deletes the files the statement wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from ratatouille_nb.engine.duckerrors import duck_error
from ratatouille_nb.engine.rows import one_row
from ratatouille_nb.engine.sqltypes import quote_ident, storable_projection
from ratatouille_nb.errors import SqlError, TableExistsError, TableNotFoundError

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from ratatouille_nb.catalog.transaction import TableTransaction
    from ratatouille_nb.resources import ResourceConfig


@dataclass(frozen=True)
class WriteOutcome:
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
        old_files = [task.file for task in table.scan().plan_files()]
        self._rewrite(table, old_files, files)
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

    def _rewrite(self, table: Table, deleted: list, added_paths: list[str]) -> None:
        """One overwrite snapshot: drop `deleted` data files, add the new ones."""
        from pyiceberg.expressions import AlwaysTrue
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        with self.txn.lock, table.transaction() as tx, tx.update_snapshot().overwrite() as overwrite:
            overwrite.delete_by_predicate(AlwaysTrue())
            for data_file in deleted:
                overwrite.delete_data_file(data_file)
            for path in added_paths:
                overwrite.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, path))

    def _matching_files(self, table: Table, where_sql: str | None, statement: str) -> tuple[list, dict[str, int]]:
        """Data files holding rows that match WHERE, with their match counts (reads no other column)."""
        data_files = {task.file.file_path: task.file for task in table.scan().plan_files()}
        if not data_files:
            return [], {}
        if where_sql is None:
            counts = {p: int(f.record_count) for p, f in data_files.items()}
        else:
            try:
                hits = self.con.execute(
                    f"SELECT filename, count(*) FROM read_parquet({_file_list(list(data_files))}, filename=true, "
                    f"hive_partitioning=false, union_by_name=true) WHERE ({where_sql}) GROUP BY filename"
                ).fetchall()
            except duckdb.Error as exc:
                raise duck_error(exc, statement) from None
            counts = {str(p): int(n) for p, n in hits}
        return [data_files[p] for p in counts], counts

    def _rewrite_files(self, key: str, table: Table, where_sql: str | None, assignments: list[tuple[str, str]] | None, statement: str) -> WriteOutcome:
        op = "update" if assignments is not None else "delete"
        files, counts = self._matching_files(table, where_sql, statement)
        affected = sum(counts.values())
        if not files:
            return WriteOutcome(key, op, 0)
        columns = self._schema_columns(key, table)
        present = {r[0] for r in self._describe(
            f"SELECT * FROM read_parquet({_file_list([f.file_path for f in files])}, hive_partitioning=false, union_by_name=true)", statement
        )}
        cond = f"COALESCE(({where_sql}), false)" if where_sql else "true"
        sets = dict(assignments or [])
        unknown = [c for c in sets if c not in {n for n, _ in columns}]
        if unknown:
            raise SqlError(f"table '{key}' has no column(s) {', '.join(unknown)}", statement=statement)
        parts = []
        for name, duck_type in columns:
            col = quote_ident(name) if name in present else f"CAST(NULL AS {duck_type})"
            if name in sets:
                col = f"CASE WHEN {cond} THEN CAST(({sets[name]}) AS {duck_type}) ELSE {col} END"
            parts.append(f"{col} AS {quote_ident(name)}")
        source = f"read_parquet({_file_list([f.file_path for f in files])}, hive_partitioning=false, union_by_name=true)"
        keep = "" if assignments is not None else f" WHERE NOT {cond}"
        select = f"SELECT {', '.join(parts)} FROM {source}{keep}"
        _rows, new_files = self.copy_into(table.location(), select, identity_partition_columns(table), statement, schema=table.schema())
        self._rewrite(table, files, new_files)
        self.txn.record(key, "overwrite" if assignments is not None else "delete")
        return WriteOutcome(key, op, affected)

    def delete(self, key: str, where_sql: str | None, statement: str = "") -> WriteOutcome:
        """DELETE FROM key WHERE …: copy-on-write of the files holding matching rows."""
        return self._rewrite_files(key, self.txn.load(key), where_sql, None, statement)

    def update(self, key: str, assignments: list[tuple[str, str]], where_sql: str | None, statement: str = "") -> WriteOutcome:
        """UPDATE key SET … WHERE …: copy-on-write like DELETE."""
        return self._rewrite_files(key, self.txn.load(key), where_sql, assignments, statement)

    def drop(self, key: str, if_exists: bool = False) -> WriteOutcome:
        if not self.txn.exists(key):
            if if_exists:
                return WriteOutcome(key, "noop", 0)
            raise TableNotFoundError(f"table '{key}' does not exist on branch '{self.txn.branch}'")
        with self.txn.lock:
            self.txn.tables.drop_table(key)
        self.txn.record(key, "drop")
        return WriteOutcome(key, "drop", 0)


__all__ = ["TableWriter", "WriteOutcome"]

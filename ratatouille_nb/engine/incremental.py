"""Incremental writes: append by column name, merge on a unique key, overwrite partitions, evolve schema.

The merge is merge-on-read by default: the batch is written once as new data files of the table,
a semi-join reading just the key columns finds the positions of the live rows it replaces, and
those go into one position-delete file per data file (engine/rowlevel.py). The cost follows the
batch, not the table; `rat optimize` (maintenance/optimize.py) folds the deletes in later.

Copy-on-write (`write_mode: copy-on-write` on the model, or the table property
`write.merge.mode`) spills the batch to Parquet, and one `COPY` streams `old live rows ANTI JOIN
batch UNION ALL batch` into new files replacing just the files that hold batch keys. Either way
memory stays at DuckDB's cap whatever the table size, and one snapshot is committed.
"""

from __future__ import annotations

import functools
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ratatouille_nb.catalog.deletes import LiveFile, RowDelta
from ratatouille_nb.catalog.liverows import FILE_COL, POS_COL, read_files_sql, sql_str
from ratatouille_nb.engine.duckerrors import duck_error
from ratatouille_nb.engine.rowlevel import COPY_ON_WRITE, PlannedDelta, PositionDeletes
from ratatouille_nb.engine.rowlevel import write_mode as _write_mode
from ratatouille_nb.engine.rows import one_row, scalar
from ratatouille_nb.engine.sqltypes import duck_type_of, quote_ident, storable_projection
from ratatouille_nb.engine.writer import TableWriter, WriteOutcome, identity_partition_columns
from ratatouille_nb.errors import SqlError

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.types import IcebergType

_WIDENINGS = {("int", "long"), ("float", "double")}


class SchemaChangeError(SqlError):
    """An incremental run would drop or narrow a column: only --full-refresh may do that."""


def _cols(names: list[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)


class IncrementalWriter(TableWriter):
    """TableWriter plus the strategies incremental models need."""

    def __init__(self, *args: object, spill_dir: Path, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spill_dir = spill_dir

    # -- schema -------------------------------------------------------------------------------

    def _iceberg_types(self, columns: list[tuple[str, str]]) -> dict[str, IcebergType]:
        from pyiceberg.catalog import Catalog

        probe = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in columns)
        schema = Catalog._convert_schema_if_needed(self.con.execute(f"SELECT {probe} LIMIT 0").arrow().schema)
        return {f.name: f.field_type for f in schema.fields}

    def evolve(self, key: str, table: Table, source: list[tuple[str, str]], statement: str) -> Table:
        """Add new columns and widen types as Iceberg allows; refuse drops and narrowing."""
        from pyiceberg.types import DecimalType

        current = {f.name: f.field_type for f in table.schema().fields}
        incoming = self._iceberg_types(source)
        missing = [c for c in current if c not in incoming]
        if missing:
            raise SchemaChangeError(
                f"{key}: the new rows lack column(s) {', '.join(missing)}; dropping columns of an incremental table needs --full-refresh",
                statement=statement,
            )
        added = [c for c in incoming if c not in current]
        widened, narrowed = [], []
        for name, new_type in incoming.items():
            old = current.get(name)
            if old is None or old == new_type or (not old.is_primitive and duck_type_of(old) == duck_type_of(new_type)):
                continue  # nested types compare by shape: the incoming side has no field ids yet
            pair = (str(old), str(new_type))
            if pair in _WIDENINGS or (
                isinstance(old, DecimalType) and isinstance(new_type, DecimalType) and new_type.scale == old.scale and new_type.precision > old.precision
            ):
                widened.append(name)
            elif pair in {("long", "int"), ("double", "float")} or (
                isinstance(old, DecimalType) and isinstance(new_type, DecimalType) and new_type.scale == old.scale
            ):
                continue  # narrower values fit the wider column: cast on write
            else:
                narrowed.append(f"{name} {old} -> {new_type}")
        if narrowed:
            raise SchemaChangeError(
                f"{key}: column type change(s) Iceberg cannot apply in place: {', '.join(narrowed)}; run with --full-refresh",
                statement=statement,
            )
        if added or widened:
            with self.txn.lock, table.update_schema() as update:
                for name in added:
                    update.add_column(name, incoming[name])
                for name in widened:
                    update.update_column(name, incoming[name])
            self.txn.record(key, "schema")
            table = self.txn.load(key)
        return table

    # -- building blocks ----------------------------------------------------------------------

    def _aligned_select(self, table: Table, select_sql: str) -> str:
        """Rows of `select_sql` cast to the table's columns by name (absent columns are NULL)."""
        target = self._schema_columns("", table)
        names = {n for n, _ in self._describe(select_sql, select_sql)}
        parts = [
            f"CAST({quote_ident(n)} AS {t}) AS {quote_ident(n)}" if n in names else f"CAST(NULL AS {t}) AS {quote_ident(n)}"
            for n, t in target
        ]
        return f"SELECT {', '.join(parts)} FROM ({select_sql}) AS _src"

    def _prepare(self, key: str, select_sql: str, statement: str) -> tuple[Table, str]:
        table = self.txn.load(key)
        described = self._describe(select_sql, statement)
        storable = f"SELECT {storable_projection(described)} FROM ({select_sql}) AS _src"
        table = self.evolve(key, table, self._describe(storable, statement), statement)
        return table, self._aligned_select(table, storable)

    def _spill(self, select_sql: str, statement: str) -> tuple[Path, list[str], int]:
        """Evaluate a SELECT once into Parquet in the spill folder (the batch of a merge)."""
        assert self.spill_dir is not None
        folder = self.spill_dir / f"batch-{uuid.uuid4().hex[:12]}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            rows, files = one_row(
                self.con,
                f"COPY ({select_sql}) TO '{folder}' (FORMAT parquet, FILENAME_PATTERN 'b-{{uuid}}', "
                f"FILE_SIZE_BYTES '{self.resources.target_file_size_mb}MB', RETURN_FILES true)",
            )
        except duckdb.Error as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise duck_error(exc, statement) from None
        return folder, list(files), int(rows)

    # -- strategies ---------------------------------------------------------------------------

    def append(self, key: str, select_sql: str, statement: str = "") -> WriteOutcome:
        """Append rows matched to the table's columns by name, evolving the schema first."""
        table, aligned = self._prepare(key, select_sql, statement)
        rows, files = self.copy_into(table.location(), aligned, identity_partition_columns(table), statement, schema=table.schema())

        def replay(current: Table) -> None:
            self._add_files(current, files)

        replay(table)
        self.txn.record(key, "append", replay=replay)
        return WriteOutcome(key, "append", rows)

    def merge(
        self, key: str, select_sql: str, unique_key: list[str], statement: str = "", *, write_mode: str | None = None
    ) -> WriteOutcome:
        """Upsert on `unique_key`: merge-on-read (position deletes) unless copy-on-write is asked for.

        `write_mode` is the model's (`-- @write_mode:` / YAML `write_mode:`); None means the
        table property `write.merge.mode`, else merge-on-read.
        """
        table, aligned = self._prepare(key, select_sql, statement)
        columns = [n for n, _ in self._schema_columns(key, table)]
        unknown = [k for k in unique_key if k not in columns]
        if unknown:
            raise SqlError(f"{key}: unique_key column(s) {', '.join(unknown)} not in the table", statement=statement)
        table = self._remember_key(key, table, unique_key)
        if _write_mode(table, "merge", write_mode) == COPY_ON_WRITE:
            return self._merge_copy_on_write(key, table, aligned, columns, unique_key, statement)
        return self._merge_on_read(key, table, aligned, unique_key, statement)

    def _remember_key(self, key: str, table: Table, unique_key: list[str]) -> Table:
        """Record the merge key as a table property, so row-level diffs (catalog/diff.py) can match rows by it."""
        from ratatouille_nb.catalog.diff import UNIQUE_KEY_PROPERTY

        wanted = ",".join(unique_key)
        if table.properties.get(UNIQUE_KEY_PROPERTY) == wanted:
            return table

        def replay(current: Table) -> None:
            with self.txn.lock, current.transaction() as tx:
                tx.set_properties({UNIQUE_KEY_PROPERTY: wanted})

        replay(table)
        self.txn.record(key, "properties", replay=replay)
        return self.txn.load(key)

    def _check_unique(self, key: str, batch: str, unique_key: list[str], statement: str) -> None:
        keys = _cols(unique_key)
        dupes = scalar(self.con, f"SELECT count(*) FROM (SELECT {keys} FROM {batch} GROUP BY ALL HAVING count(*) > 1)")
        if dupes:
            raise SqlError(
                f"{key}: {dupes} unique_key value(s) appear more than once in the new rows; a merge needs one row per key",
                statement=statement,
                hint="deduplicate in the model (e.g. QUALIFY row_number() OVER (PARTITION BY key ORDER BY ts DESC) = 1)",
            )

    def _merge_on_read(self, key: str, table: Table, aligned: str, unique_key: list[str], statement: str) -> WriteOutcome:
        """The batch becomes new data files; the rows it replaces get position deletes."""
        from pyiceberg.table.snapshots import Operation

        live = self.live(table)
        batch_rows, batch_files = self.copy_into(table.location(), aligned, identity_partition_columns(table), statement, schema=table.schema())
        if batch_rows == 0:
            return WriteOutcome(key, "merge", 0)
        batch = read_files_sql(batch_files)
        self._check_unique(key, batch, unique_key, statement)
        bounds = self._key_range(table, batch, unique_key[0])
        deleted_rows = 0
        delta = RowDelta(Operation.OVERWRITE)
        if live:
            with PositionDeletes(self.con, self.txn, table, live) as positions:
                deleted_rows = positions.collect(self._key_hits(list(live.values()), batch, unique_key, bounds), statement)
                deleted = positions.write(statement)
            delta = RowDelta(Operation.OVERWRITE, added_deletes=deleted.added_deletes, removed_data=deleted.removed_data,
                             removed_deletes=deleted.removed_deletes)
        if not deleted_rows:
            delta.operation = Operation.APPEND
        delta.added_data = self.data_files(table, batch_files)
        hits = functools.partial(self._key_hits, batch=batch, unique_key=unique_key, bounds=bounds)
        outcome = WriteOutcome(key, "merge", batch_rows, updated=deleted_rows)
        return self.commit_planned(table, PlannedDelta(key, delta, live, hits=hits), "overwrite" if deleted_rows else "append", outcome)

    def _key_range(self, table: Table, batch: str, column: str) -> str:
        """`col BETWEEN <batch min> AND <batch max>` with literals, so DuckDB skips row groups outside it.

        (Constant bounds prune by Parquet statistics; a semi-join alone reads every key.)
        """
        lo, hi = one_row(self.con, f"SELECT min({quote_ident(column)})::VARCHAR, max({quote_ident(column)})::VARCHAR FROM {batch}")
        if lo is None:
            return "false"  # every batch key is NULL: NULL keys never match
        duck_type = dict(self._schema_columns("", table))[column]
        return f"{quote_ident(column)} BETWEEN CAST({sql_str(lo)} AS {duck_type}) AND CAST({sql_str(hi)} AS {duck_type})"

    def _key_hits(self, files: list[LiveFile], batch: str, unique_key: list[str], bounds: str = "true") -> str:
        """(file, position) of every row of `files` whose key is in the batch (deleted rows included)."""
        keys = _cols(unique_key)
        where = f"({keys}) IN (SELECT ({keys}) FROM {batch})" if len(unique_key) > 1 else f"{keys} IN (SELECT {keys} FROM {batch})"
        where = f"{bounds} AND {where}"
        return f"SELECT d.{FILE_COL}, d.{POS_COL} FROM {read_files_sql([f.path for f in files], positions=True)} AS d WHERE {where}"

    def _merge_copy_on_write(
        self, key: str, table: Table, aligned: str, columns: list[str], unique_key: list[str], statement: str
    ) -> WriteOutcome:
        """Rewrite only the files that hold live rows with batch keys."""
        from pyiceberg.table.snapshots import Operation

        folder, batch_files, batch_rows = self._spill(aligned, statement)
        try:
            if batch_rows == 0:
                return WriteOutcome(key, "merge", 0)
            batch = read_files_sql(batch_files)
            self._check_unique(key, batch, unique_key, statement)
            keys = _cols(unique_key)
            live = self.live(table)
            hits: dict[str, int] = {}
            if live:
                where = f"({keys}) IN (SELECT ({keys}) FROM {batch})" if len(unique_key) > 1 else f"{keys} IN (SELECT {keys} FROM {batch})"
                try:
                    rows = self.con.execute(
                        self.live_select(table, list(live.values()), statement, where=where, select=f"d.{FILE_COL}, count(*)") + " GROUP BY ALL"
                    ).fetchall()
                except duckdb.Error as exc:
                    raise duck_error(exc, statement) from None
                hits = {str(p): int(n) for p, n in rows}
            col_list = _cols(columns)
            if hits:
                old = self.live_select(table, [live[p] for p in hits], statement)
                t_cols = ", ".join(f"t.{quote_ident(c)}" for c in columns)
                rewrite = (
                    f"SELECT {t_cols} FROM ({old}) AS t ANTI JOIN (SELECT {keys} FROM {batch}) AS b USING ({keys}) "
                    f"UNION ALL SELECT {col_list} FROM {batch}"
                )
            else:
                rewrite = f"SELECT {col_list} FROM {batch}"
            _rows, new_files = self.copy_into(table.location(), rewrite, identity_partition_columns(table), statement, schema=table.schema())
            self._rewrite(table, [live[p] for p in hits], new_files, Operation.OVERWRITE if hits else Operation.APPEND)
            self.txn.record(key, "overwrite" if hits else "append")
            return WriteOutcome(key, "merge", batch_rows, updated=sum(hits.values()))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def overwrite_partitions(self, key: str, select_sql: str, statement: str = "") -> WriteOutcome:
        """Replace every partition the new rows touch (dbt's insert_overwrite)."""
        from pyiceberg.table.snapshots import Operation

        table, aligned = self._prepare(key, select_sql, statement)
        pcols = identity_partition_columns(table)
        if not pcols:
            raise SqlError(f"{key}: insert_overwrite needs a partitioned table (partition_by)", statement=statement)
        folder, batch_files, batch_rows = self._spill(aligned, statement)
        try:
            batch = read_files_sql(batch_files) if batch_files else None
            live = self.live(table)
            doomed: list[str] = []
            if live and batch:
                cols = _cols(pcols)
                where = f"({cols}) IN (SELECT DISTINCT ({cols}) FROM {batch})" if len(pcols) > 1 else f"{cols} IN (SELECT DISTINCT {cols} FROM {batch})"
                try:
                    doomed = [
                        str(r[0])
                        for r in self.con.execute(
                            f"SELECT DISTINCT d.{FILE_COL} FROM {read_files_sql(list(live), positions=True)} AS d WHERE {where}"
                        ).fetchall()
                    ]
                except duckdb.Error as exc:
                    raise duck_error(exc, statement) from None
            new_files: list[str] = []
            if batch:
                _rows, new_files = self.copy_into(table.location(), f"SELECT * FROM {batch}", pcols, statement, schema=table.schema())
            self._rewrite(table, [live[p] for p in doomed], new_files, Operation.OVERWRITE if doomed else Operation.APPEND)
            self.txn.record(key, "overwrite")
            return WriteOutcome(key, "insert_overwrite", batch_rows)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

"""Merge-on-read in DuckDB: the positions of changed rows, written as one position-delete file per data file.

A row-level change (a merge's updated keys, a DELETE, an UPDATE) first collects `(file, pos)` of
the live rows it replaces into a DuckDB temp table (streamed and spilled by DuckDB, never held in
Python). `PositionDeletes.files` then writes, per data file, the sorted positions with `COPY …
(FIELD_IDS …)` into the table's folder and describes them for pyiceberg
(`catalog/deletes.py`). A data file whose every row is now deleted is dropped from the table
instead, together with its older delete files, so deletes never outlive their data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import duckdb
from pyiceberg.table.snapshots import Operation

from ratatouille_nb.catalog.deletes import (
    PATH_FIELD_ID,
    POS_FIELD_ID,
    LiveFile,
    RowDelta,
    delete_files_of,
    live_files,
    position_delete_file,
    referenced_data_file,
)
from ratatouille_nb.catalog.liverows import FILE_COL, POS_COL, deleted_positions_sql, sql_str
from ratatouille_nb.engine.duckerrors import duck_error
from ratatouille_nb.errors import CommitConflictError, SqlError

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

    from ratatouille_nb.catalog.transaction import TableTransaction

WriteMode = Literal["merge-on-read", "copy-on-write"]
MERGE_ON_READ: WriteMode = "merge-on-read"
COPY_ON_WRITE: WriteMode = "copy-on-write"
WRITE_MODES: tuple[WriteMode, ...] = (MERGE_ON_READ, COPY_ON_WRITE)
ChangeKind = Literal["merge", "delete", "update"]


def write_mode(table: Table, kind: ChangeKind, override: str | None = None) -> WriteMode:
    """The model's `write_mode` if given, else the table's `write.<kind>.mode` property, else merge-on-read.

    Iceberg v1 tables cannot hold delete files, so they are always copy-on-write.
    """
    prop = f"write.{kind}.mode"
    chosen = override if override is not None else table.properties.get(prop)
    if chosen is not None and chosen not in WRITE_MODES:
        where = "write_mode" if override is not None else f"table property {prop}"
        raise SqlError(f"{'.'.join(table.name())}: {where} is '{chosen}'; use one of {', '.join(WRITE_MODES)}")
    if table.format_version < 2:
        return COPY_ON_WRITE
    return COPY_ON_WRITE if chosen == COPY_ON_WRITE else MERGE_ON_READ


@dataclass
class DeleteOutcome:
    """What writing the collected positions produced, for one row delta."""

    added_deletes: list[DataFile] = field(default_factory=list)
    removed_data: list[DataFile] = field(default_factory=list)
    removed_deletes: list[DataFile] = field(default_factory=list)
    rows: int = 0


def subtract_deleted(con: duckdb.DuckDBPyConnection, temp_table: str, live: dict[str, LiveFile]) -> None:
    """Remove from `temp_table` (with FILE_COL, POS_COL) the rows the files' delete files already delete.

    The delete files are streamed through a semi-join built on the (small) temp table, so the
    cost follows the change, not the number of rows deleted so far.
    """
    hit = {str(r[0]) for r in con.execute(f"SELECT DISTINCT {FILE_COL} FROM {temp_table}").fetchall()}
    deletes = delete_files_of(live[p] for p in hit if p in live)
    if not deletes:
        return
    done = (
        f"SELECT x.{FILE_COL}, x.{POS_COL} FROM ({deleted_positions_sql([d.file_path for d in deletes])}) AS x "
        f"SEMI JOIN {temp_table} AS n ON x.{FILE_COL} = n.{FILE_COL} AND x.{POS_COL} = n.{POS_COL}"
    )
    con.execute(
        f"DELETE FROM {temp_table} USING ({done}) AS dd "
        f"WHERE {temp_table}.{FILE_COL} = dd.{FILE_COL} AND {temp_table}.{POS_COL} = dd.{POS_COL}"
    )


class PositionDeletes:
    """Positions of rows to delete, staged in a temp table of one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, txn: TableTransaction, table: Table, live: dict[str, LiveFile]) -> None:
        self.con = con
        self.txn = txn
        self.table = table
        self.live = live
        self.name = f"_rat_pos_{uuid.uuid4().hex[:12]}"
        self._created = False

    def collect(self, positions_sql: str, statement: str) -> int:
        """Stage the live (FILE_COL, POS_COL) rows `positions_sql` yields; returns how many.

        `positions_sql` may include rows an earlier change already deleted: they are taken out
        here, so re-updating a row deletes it once.
        """
        try:
            self.con.execute(f"CREATE TEMP TABLE {self.name} AS SELECT DISTINCT {FILE_COL}, {POS_COL} FROM ({positions_sql}) ORDER BY ALL")
            self._created = True
            subtract_deleted(self.con, self.name, self.live)
            return int(self.con.execute(f"SELECT count(*) FROM {self.name}").fetchone()[0])  # type: ignore[index]
        except duckdb.Error as exc:
            raise duck_error(exc, statement) from None

    def write(self, statement: str) -> DeleteOutcome:
        """One sorted delete file per data file that has positions; fully deleted files are dropped."""
        out = DeleteOutcome()
        if not self._created:
            return out
        try:
            counts = self.con.execute(
                f"SELECT {FILE_COL}, count(*), min({POS_COL}), max({POS_COL}) FROM {self.name} GROUP BY ALL ORDER BY ALL"
            ).fetchall()
        except duckdb.Error as exc:
            raise duck_error(exc, statement) from None
        if not counts:
            return out
        warehouse = self.txn.warehouse
        folder = warehouse.new_data_dir(self.table.location())
        warehouse.check_within(self.txn.prefix, folder, "delete files")
        for path, n, lo, hi in counts:
            live = self.live.get(str(path))
            if live is None:
                raise SqlError(f"internal: positions name a file the table does not hold: {path}", statement=statement)
            out.rows += int(n)
            if int(n) >= live.live_rows:
                out.removed_data.append(live.data_file)
                out.removed_deletes.extend(live.deletes)
                continue
            if not out.added_deletes:
                warehouse.makedirs(folder)
                self.txn.wrote_dir(folder)
            target = f"{folder}/del-{uuid.uuid4()}.parquet"
            try:
                stats = self.con.execute(
                    f"COPY (SELECT {FILE_COL} AS file_path, {POS_COL} AS pos FROM {self.name} WHERE {FILE_COL} = {sql_str(str(path))} "
                    f"ORDER BY pos) TO {sql_str(target)} (FORMAT parquet, COMPRESSION zstd, RETURN_STATS true, "
                    f"FIELD_IDS {{file_path: {PATH_FIELD_ID}, pos: {POS_FIELD_ID}}})"
                ).fetchall()
            except duckdb.Error as exc:
                raise duck_error(exc, statement) from None
            written = {str(r[0]): (int(r[1]), int(r[2])) for r in stats}
            rows, size = written[target]
            out.added_deletes.append(
                position_delete_file(target, live.data_file, record_count=rows, file_size_in_bytes=size, min_pos=int(lo), max_pos=int(hi))
            )
        return out

    def drop(self) -> None:
        if self._created:
            self.con.execute(f"DROP TABLE IF EXISTS {self.name}")
            self._created = False

    def __enter__(self) -> PositionDeletes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


@dataclass
class PlannedDelta:
    """A merge-on-read change as planned on one version of a table, re-playable on a newer one.

    The transaction (catalog/transaction.py) replays it when the branch moved before the commit
    and a concurrent commit changed the same table. The replay refuses, with a conflict naming
    the table, when a data file the change deletes rows from was rewritten or removed, or got
    new position deletes meanwhile (two changes of the same rows); data files added meanwhile
    are searched with `hits` (the same key or condition) and get position deletes too.
    """

    key: str
    delta: RowDelta
    base: dict[str, LiveFile]
    hits: Callable[[list[LiveFile]], str] | None = None

    def referenced(self) -> set[str]:
        """Data files this change deletes rows from (or drops)."""
        out = {f.file_path for f in self.delta.removed_data}
        out.update(p for d in self.delta.added_deletes if (p := referenced_data_file(d)) is not None)
        return out

    def rebased(self, con: duckdb.DuckDBPyConnection, txn: TableTransaction, current: Table, branch: str) -> tuple[RowDelta, int]:
        """The delta to commit on `current` instead, and how many more rows it deletes there.

        Raises CommitConflictError when replaying would lose a concurrent change.
        """
        now = live_files(current.metadata, current.io)
        changed = sorted(p for p in self.referenced() if p not in now or _delete_paths(now[p]) != _delete_paths(self.base[p]))
        if changed:
            raise CommitConflictError(
                f"conflict on branch '{branch}': {self.key} changed in a concurrent commit that rewrote, deleted or "
                f"deleted rows of {len(changed)} data file(s) this statement deletes rows from; nothing was written",
                tables=[self.key],
                hint="re-run the statement on the new state of the branch",
            )
        fresh = {p: f for p, f in now.items() if p not in self.base}
        delta = RowDelta(
            self.delta.operation,
            added_data=list(self.delta.added_data),
            added_deletes=list(self.delta.added_deletes),
            removed_data=list(self.delta.removed_data),
            removed_deletes=list(self.delta.removed_deletes),
        )
        more = 0
        if fresh and self.hits is not None:
            with PositionDeletes(con, txn, current, fresh) as positions:
                more = positions.collect(self.hits(list(fresh.values())), f"(replay of the change to {self.key})")
                if more:
                    extra = positions.write(f"(replay of the change to {self.key})")
                    delta.added_deletes += extra.added_deletes
                    delta.removed_data += extra.removed_data
                    delta.removed_deletes += extra.removed_deletes
        if more and delta.operation == Operation.APPEND:
            delta.operation = Operation.OVERWRITE
        return delta, more


def _delete_paths(live: LiveFile) -> set[str]:
    return {d.file_path for d in live.deletes}

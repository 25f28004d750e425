"""Snapshot expiry by layer retention (`rat expire`), and the opt-in row retention of time-partitioned layers.

A table version (the Iceberg metadata a commit names for a table) stays while time travel inside
its layer's `retention_days` (workspace.yaml; `null` keeps everything) can reach it: walking each
branch and tag back along first parents, every version of a commit at or after the cutoff, plus
the version current at the cutoff. Versions a branch head, a tag or a product pin points at are
never expired, whatever their age. Expired versions are recorded in the expiry log
(catalog/expiry.py); `rat gc` then deletes the files only they used. Reading such a version
afterwards (`name@<old time>`, an old hash) fails; commits themselves stay in the log.

Only the workspace's own tables are considered: versions whose metadata lies under its storage
prefix.

Row retention (`rows=True`, `rat expire --rows`) is opt-in: on the session's branch, every table
of a layer with `retention_days` that is partitioned by a DATE or TIMESTAMP column loses the
partitions older than the cutoff — whole data files leave the table in one `delete` commit,
without reading any row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ratatouille_nb.catalog.deletes import RowDelta, delete_files_of, live_files
from ratatouille_nb.catalog.expiry import ExpiryLog
from ratatouille_nb.engine.writer import TableWriter

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import Commit, TableEntry
    from ratatouille_nb.engine.session import Session

DAY = 86400.0


@dataclass(frozen=True)
class ExpiredVersion:
    table: str
    metadata_location: str
    snapshot_id: int | None
    committed_at: float


@dataclass(frozen=True)
class DroppedPartitions:
    """Row retention on one table: the partitions older than the cutoff that left it."""

    table: str
    cutoff: str
    files: int
    rows: int


@dataclass(frozen=True)
class ExpireReport:
    dry_run: bool
    workspace: str
    expired: tuple[ExpiredVersion, ...] = ()
    kept: int = 0
    """Table versions of the workspace still within retention or pointed at by a head, tag or pin."""
    partitions: tuple[DroppedPartitions, ...] = field(default_factory=tuple)
    commit_hash: str | None = None

    @property
    def tables(self) -> list[str]:
        return sorted({v.table for v in self.expired})


def _first_parents(session: Session, head: str) -> Iterator[Commit]:
    commit = session.store.get_commit(head)
    while True:
        yield commit
        if not commit.parents:
            return
        commit = session.store.get_commit(commit.parents[0])


def retention_cutoffs(session: Session, now: float) -> dict[str, float | None]:
    """layer -> the oldest commit time time travel must still reach (None: keep forever)."""
    return {
        name: (now - layer.retention_days * DAY if layer.retention_days is not None else None)
        for name, layer in session.workspace.config.layers.items()
    }


def _mine(session: Session, entry: TableEntry) -> bool:
    return not entry.is_view and bool(entry.metadata_location) and session.warehouse.within(session.workspace.prefix, entry.metadata_location)


def _product_pins(session: Session) -> list[Any]:
    """Every product release and refresh pin of the RAT_HOME (products/registry.py)."""
    from ratatouille_nb.products.registry import SqliteProductRegistry

    registry = SqliteProductRegistry(session.settings.home)
    try:
        return list(registry.all_pins())
    finally:
        registry.close()


def plan_expiry(session: Session, now: float) -> tuple[list[ExpiredVersion], int]:
    """The workspace's table versions past retention that nothing points at, and how many stay."""
    cutoffs = retention_cutoffs(session, now)
    timed = [c for c in cutoffs.values() if c is not None]
    refs = session.store.list_references()
    keep = {p.metadata_location for p in _product_pins(session)}
    for ref in refs:
        keep.update(e.metadata_location for e in session.store.get_commit(ref.hash).contents.values())
    for ref in refs:
        passed: set[str] = set()  # keys whose version at the cutoff this walk already kept
        for commit in _first_parents(session, ref.hash):
            limited = [k for k in commit.contents if cutoffs.get(k.split(".", 1)[0]) is not None]
            if timed and commit.created_at < min(timed) and all(k in passed for k in limited):
                break  # everything older is past every cutoff, and each table's version at it is kept
            for key in limited:
                cutoff = cutoffs[key.split(".", 1)[0]]
                assert cutoff is not None
                if commit.created_at >= cutoff:
                    keep.add(commit.contents[key].metadata_location)
                elif key not in passed:
                    passed.add(key)
                    keep.add(commit.contents[key].metadata_location)
    seen: dict[str, ExpiredVersion] = {}
    kept: set[str] = set()
    stack, visited = [r.hash for r in refs], set()
    while stack:
        hash_ = stack.pop()
        if hash_ in visited:
            continue
        visited.add(hash_)
        commit = session.store.get_commit(hash_)
        stack.extend(commit.parents)
        for key, entry in commit.contents.items():
            if not _mine(session, entry):
                continue
            if entry.metadata_location in keep or cutoffs.get(key.split(".", 1)[0]) is None:
                kept.add(entry.metadata_location)
            elif entry.metadata_location not in seen:
                seen[entry.metadata_location] = ExpiredVersion(key, entry.metadata_location, entry.snapshot_id, commit.created_at)
    return sorted(seen.values(), key=lambda v: (v.table, v.committed_at)), len(kept)


def _old_partitions(session: Session, writer: TableWriter, key: str, cutoff_day: date) -> tuple[RowDelta, int] | None:
    """Data files of a DATE/TIMESTAMP identity partition older than `cutoff_day`, as a delete delta."""
    from pyiceberg.table.snapshots import Operation
    from pyiceberg.types import DateType, TimestampType, TimestamptzType

    table = writer.txn.load(key)
    spec, schema = table.spec(), table.schema()
    position = None
    for i, pf in enumerate(spec.fields):
        source = schema.find_field(pf.source_id).field_type
        if str(pf.transform) == "identity" and isinstance(source, (DateType, TimestampType, TimestamptzType)):
            position, is_date = i, isinstance(source, DateType)
            break
    if position is None:
        return None
    epoch = date(1970, 1, 1)
    days = (cutoff_day - epoch).days
    limit = days if is_date else days * 86_400_000_000  # timestamps are microseconds since the epoch
    old = [
        f for f in live_files(table.metadata, table.io).values()
        if f.data_file.partition[position] is not None and f.data_file.partition[position] < limit
    ]
    if not old:
        return None
    delta = RowDelta(Operation.DELETE, removed_data=[f.data_file for f in old], removed_deletes=delete_files_of(old))
    return delta, sum(f.live_rows for f in old)


def _drop_old_partitions(session: Session, now: float, dry_run: bool) -> tuple[list[DroppedPartitions], str | None]:
    cutoffs = retention_cutoffs(session, now)
    dropped: list[DroppedPartitions] = []
    with session.transaction("rat expire --rows (row retention)") as txn:
        writer = TableWriter(session.con, txn, session.resources)
        for key, entry in sorted(txn.contents().items()):
            cutoff = cutoffs.get(key.split(".", 1)[0])
            if cutoff is None or entry.is_view or entry.snapshot_id is None:
                continue
            cutoff_day = datetime.fromtimestamp(cutoff, UTC).date()
            found = _old_partitions(session, writer, key, cutoff_day)
            if found is None:
                continue
            delta, rows = found
            dropped.append(DroppedPartitions(key, cutoff_day.isoformat(), len(delta.removed_data), rows))
            if not dry_run:
                writer._commit(txn.load(key), delta)
                txn.record(key, "delete")
    return dropped, (txn.result.hash if txn.result else None)


def expire(session: Session, *, dry_run: bool = False, rows: bool = False, now: float | None = None) -> ExpireReport:
    """Retire the workspace's table versions past their layer's retention; with `rows`, drop old partitions too."""
    now = time.time() if now is None else now
    partitions: list[DroppedPartitions] = []
    commit_hash = None
    if rows:
        partitions, commit_hash = _drop_old_partitions(session, now, dry_run)
    expired, kept = plan_expiry(session, now)
    if not dry_run:
        # The log records the real time: a commit made after this run that names a version again keeps it.
        ExpiryLog(session.settings.home).record((v.table, v.metadata_location) for v in expired)
    return ExpireReport(dry_run, session.workspace.name, tuple(expired), kept, tuple(partitions), commit_hash)


__all__ = ["DroppedPartitions", "ExpireReport", "ExpiredVersion", "expire", "plan_expiry", "retention_cutoffs"]

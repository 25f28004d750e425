"""Compaction (`rat optimize`): fold position deletes into data files and bin-pack small files, one commit.

Merge-on-read keeps merges cheap by leaving old rows in place behind position-delete files; every
read then pays for them. Compaction rewrites, per table, the data files that carry deletes plus
the small files of the same partitions into files of the profile's target size (DuckDB streams
`live rows` → `COPY`), and commits them as one `replace` snapshot per table — all tables in one
version-store commit. It changes no row: the rows written must equal the live rows read, or
nothing is committed.

After a pipeline run, the run and build verbs (verbs/pipelines.py) call `optimize_after_run`: it
compacts the tables the run wrote whose deleted-row fraction or delete-file count passed the
profile's `compaction` thresholds (resources/profiles.py). A compaction raced by another writer is replayed on the new head when
it can be (the files it replaces are unchanged there), else it gives up: the next run retries.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ratatouille_nb.catalog.deletes import LiveFile, RowDelta, delete_files_of
from ratatouille_nb.engine.rowlevel import PlannedDelta
from ratatouille_nb.engine.writer import TableWriter, WriteOutcome, identity_partition_columns
from ratatouille_nb.errors import CatalogError, CommitConflictError, RatError, TableNotFoundError

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.resources import ResourceConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableCompaction:
    """What compaction did (or found nothing to do) for one table."""

    table: str
    reason: str
    data_files_before: int
    delete_files_before: int
    data_files_after: int
    delete_files_after: int
    files_rewritten: int = 0
    rows_rewritten: int = 0
    deleted_rows_purged: int = 0

    @property
    def changed(self) -> bool:
        return self.files_rewritten > 0


@dataclass(frozen=True)
class OptimizeReport:
    branch: str
    tables: tuple[TableCompaction, ...]
    commit_hash: str | None = None


def _needs(live: dict[str, LiveFile], resources: ResourceConfig) -> str | None:
    """Why the profile's thresholds call for compacting a table now, if they do."""
    cfg = resources.compaction
    rows = sum(int(f.data_file.record_count) for f in live.values())
    deleted = sum(f.deleted_rows for f in live.values())
    delete_files = len(delete_files_of(live.values()))
    if rows and deleted / rows >= cfg.max_deleted_fraction:
        return f"{deleted / rows:.0%} of rows deleted (threshold {cfg.max_deleted_fraction:.0%})"
    if delete_files >= cfg.max_delete_files:
        return f"{delete_files} delete files (threshold {cfg.max_delete_files})"
    return None


def plan(live: dict[str, LiveFile], resources: ResourceConfig) -> list[LiveFile]:
    """The data files to rewrite: those with deletes, and small files sharing a partition with others to pack."""
    small_bytes = resources.compaction.small_file_fraction * resources.target_file_size_mb * 2**20
    groups: dict[tuple[int, str], list[LiveFile]] = defaultdict(list)
    for f in live.values():
        if f.deletes or f.data_file.file_size_in_bytes < small_bytes:
            groups[(f.data_file.spec_id, repr(f.data_file.partition))].append(f)
    chosen: list[LiveFile] = []
    for files in groups.values():
        if len(files) > 1 or any(f.deletes for f in files):
            chosen.extend(files)
    return sorted(chosen, key=lambda f: f.path)


def _compact(writer: TableWriter, key: str, table: Table, live: dict[str, LiveFile], reason: str) -> TableCompaction:
    from pyiceberg.table.snapshots import Operation

    deletes_before = len(delete_files_of(live.values()))
    chosen = plan(live, writer.resources)
    if not chosen:
        return TableCompaction(key, "nothing to compact", len(live), deletes_before, len(live), deletes_before)
    statement = f"(compaction of {key})"
    expected = sum(f.live_rows for f in chosen)
    new_files: list[str] = []
    if expected:
        rows, new_files = writer.copy_into(
            table.location(), writer.live_select(table, chosen, statement), identity_partition_columns(table), statement, schema=table.schema()
        )
        if rows != expected:
            raise CatalogError(f"compaction of {key} read {rows:,} live rows where the metadata counts {expected:,}; nothing was committed")
    removed_deletes = delete_files_of(chosen)
    delta = RowDelta(Operation.REPLACE, added_data=writer.data_files(table, new_files), removed_data=[f.data_file for f in chosen],
                     removed_deletes=removed_deletes)
    writer.commit_planned(table, PlannedDelta(key, delta, live), "optimize", WriteOutcome(key, "optimize", expected))
    kept_deletes = deletes_before - len(removed_deletes)
    return TableCompaction(
        key, reason, len(live), deletes_before, len(live) - len(chosen) + len(new_files), kept_deletes,
        files_rewritten=len(chosen), rows_rewritten=expected, deleted_rows_purged=sum(f.deleted_rows for f in chosen),
    )


def optimize(session: Session, tables: list[str] | None = None, *, branch: str | None = None, only_needed: bool = False) -> OptimizeReport:
    """Compact the given tables (default: every table of the branch) in one commit on `branch`.

    With `only_needed`, a table is compacted only when the profile's thresholds say so.
    """
    branch = branch or session.branch
    with session.transaction(f"rat optimize {' '.join(tables or []) or '(all)'}".strip(), branch=branch) as txn:
        contents = txn.contents()
        keys = sorted(tables) if tables else sorted(k for k, e in contents.items() if not e.is_view)
        missing = [k for k in keys if k not in contents]
        if missing:
            raise TableNotFoundError(f"no table {', '.join(missing)} on branch '{branch}'", hint=f"list tables with `rat tables --branch {branch}`")
        writer = TableWriter(session.con, txn, session.resources)
        done = []
        for key in keys:
            if contents[key].is_view:
                done.append(TableCompaction(key, "a view: nothing stored", 0, 0, 0, 0))
                continue
            table = txn.load(key)
            live = writer.live(table)
            reason = _needs(live, session.resources) if only_needed else "requested"
            if reason is None:
                deletes = len(delete_files_of(live.values()))
                done.append(TableCompaction(key, "below the compaction thresholds", len(live), deletes, len(live), deletes))
                continue
            done.append(_compact(writer, key, table, live, reason))
    return OptimizeReport(branch, tuple(done), txn.result.hash if txn.result else None)


def optimize_after_run(session: Session, tables: list[str], branch: str) -> OptimizeReport | None:
    """Compact the tables a run just wrote if they passed the profile's thresholds (never fails the run)."""
    if not session.resources.compaction.auto or not tables:
        return None
    try:
        return optimize(session, tables, branch=branch, only_needed=True)
    except CommitConflictError as exc:
        log.info("automatic compaction skipped: %s", exc)
    except RatError as exc:  # the run has committed; a compaction that cannot run now is retried by the next one
        log.warning("automatic compaction of %s failed: %s", ", ".join(tables), exc)
    return None

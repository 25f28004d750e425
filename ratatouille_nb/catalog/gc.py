"""Garbage collection: delete warehouse files no branch, tag or product pin can reach any more.

The live set is computed from the version store, not from Iceberg's own history: every commit
reachable from a branch or tag head (all parents, so merged history counts) names, per table, one
metadata file. That file, the manifest list and manifests of its *current* snapshot, and the data
files those manifests hold as live entries are what any read (a branch, a tag, `name@time`,
`name~N`, a reachable hash) can ever open. Everything else under the warehouse root is garbage:
metadata of versions no commit points at, snapshots older than the current one inside a
referenced metadata file (time travel goes through commits, never through Iceberg snapshots),
data files only such snapshots used, the tables of deleted branches, and the orphans of writers
killed before their commit. Garbage is only deleted once older than `older_than_seconds`, so the
files of a statement still being written (not yet committed) are never touched.

Two guards keep gc to what it owns:

* product releases and refreshes pin metadata files that consumers read outside any branch; the
  caller passes those pins (`pinned`), and they are roots like branch heads;
* only files the table machinery writes are candidates: Iceberg metadata/manifest files in a
  `metadata/` folder (pyiceberg's names) and data files in a writer's `data/w-<16 hex>/` folder.
  Anything else under the warehouse root, such as landing files that pipelines ingest
  (`source('landing/...')`), is never deleted; it is counted as `files_ignored`.

Commit rows are kept; only files go.
"""

from __future__ import annotations

import os
import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.tables import read_metadata
from ratatouille_nb.errors import CatalogError

if TYPE_CHECKING:
    from ratatouille_nb.catalog.base import VersionStore
    from ratatouille_nb.storage.warehouse import Warehouse

# pyiceberg's file names: table metadata, manifest lists, manifests.
_METADATA_FILE_RE = re.compile(
    r"^(?:\d+-[0-9a-f-]{36}(?:\.gz)?\.metadata\.json|snap-\d+-\d+-[0-9a-f-]{36}\.avro|[0-9a-f-]{36}-m\d+\.avro)$"
)
# The folder one write's data files go to (`Warehouse.new_data_dir`).
_WRITE_DIR_RE = re.compile(r"^w-[0-9a-f]{16}$")


@dataclass(frozen=True)
class GcReport:
    """What one gc run did (or, with `dry_run`, would do)."""

    dry_run: bool
    files_deleted: int
    bytes_freed: int
    files_kept: int
    snapshots_expired: int
    live_files: int
    files_ignored: int = 0
    """Files under the warehouse root that are not table files (e.g. landing files): never deleted."""
    deleted: tuple[str, ...] = field(default_factory=tuple)
    """Garbage files deleted (or that would be deleted on a dry run)."""
    kept: tuple[str, ...] = field(default_factory=tuple)
    """Every table file left in place: the live ones and the garbage too recent to delete."""
    too_recent: tuple[str, ...] = field(default_factory=tuple)
    """Unreferenced files spared because they are younger than the threshold (maybe in flight)."""


def _norm(path: str) -> str:
    """One spelling per file, so paths from metadata compare equal to paths from the listing."""
    if path.startswith("file://"):
        path = path[len("file://") :]
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            path = "s3://" + path[len(scheme) :]
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.normpath(path)


def is_table_file(path: str) -> bool:
    """Whether `path` has the shape of a file the table machinery writes (so gc may own it)."""
    parts = _norm(path).split("/")
    if len(parts) >= 2 and parts[-2] == "metadata" and _METADATA_FILE_RE.match(parts[-1]):
        return True
    return any(parts[i] == "data" and _WRITE_DIR_RE.match(parts[i + 1]) for i in range(len(parts) - 2))


def reachable_commits(store: VersionStore) -> list[str]:
    """Hashes of every commit reachable from any branch or tag head, through all parents."""
    seen: set[str] = set()
    order: list[str] = []
    stack = [ref.hash for ref in store.list_references()]
    while stack:
        hash_ = stack.pop()
        if hash_ in seen:
            continue
        seen.add(hash_)
        order.append(hash_)
        stack.extend(p for p in store.get_commit(hash_).parents if p not in seen)
    return order


class _LiveSet:
    """Accumulates the files live table entries need, reading each metadata file and manifest once."""

    def __init__(self, io: Any) -> None:
        self.io = io
        self.files: set[str] = set()
        self.manifest_lists: set[str] = set()
        self.older_manifest_lists: set[str] = set()
        self._metadata_done: set[str] = set()
        self._manifests_done: set[str] = set()

    def add_entry(self, key: str, entry: TableEntry) -> None:
        location = entry.metadata_location
        if getattr(entry, "view_sql", None) is not None or not location:
            return  # a view model: stored as SQL in the commit, no files
        if location in self._metadata_done:
            return
        self._metadata_done.add(location)
        try:
            meta = read_metadata(self.io, location, key)
        except Exception as exc:
            raise CatalogError(
                f"gc stopped before deleting anything: cannot read the metadata of table {key} at {location}: {exc}",
                hint="a commit points at a missing or damaged file; fix or drop that table first",
            ) from exc
        self.files.add(_norm(location))
        current_ids = {meta.current_snapshot_id, entry.snapshot_id} - {None}
        for snapshot in meta.snapshots:
            if snapshot.snapshot_id in current_ids:
                self._add_snapshot(key, snapshot)
            elif snapshot.manifest_list:
                self.older_manifest_lists.add(_norm(snapshot.manifest_list))
        # Statistics files of the current snapshot are read alongside it (pyiceberg writes none today).
        for stats in [*(meta.statistics or []), *(getattr(meta, "partition_statistics", None) or [])]:
            if getattr(stats, "snapshot_id", None) in current_ids:
                self.files.add(_norm(stats.statistics_path))

    def _add_snapshot(self, key: str, snapshot: Any) -> None:
        if snapshot.manifest_list:
            self.files.add(_norm(snapshot.manifest_list))
            self.manifest_lists.add(_norm(snapshot.manifest_list))
        try:
            manifests = snapshot.manifests(self.io)
            for manifest in manifests:
                path = _norm(manifest.manifest_path)
                self.files.add(path)
                if path in self._manifests_done:
                    continue
                self._manifests_done.add(path)
                for item in manifest.fetch_manifest_entry(self.io, discard_deleted=True):
                    self.files.add(_norm(item.data_file.file_path))
        except Exception as exc:
            raise CatalogError(
                f"gc stopped before deleting anything: cannot read the manifests of table {key} "
                f"(snapshot {snapshot.snapshot_id}): {exc}",
                hint="a commit points at a missing or damaged file; fix or drop that table first",
            ) from exc


CLOCK_SKEW_SECONDS = 600.0
"""How much older than the catalog a table file may look (an S3 server's clock against ours)."""


def refuse_foreign_warehouse(store: VersionStore, table_files: list[tuple[str, float]]) -> None:
    """Refuse gc when the catalog cannot be the one that wrote these table files (`(path, mtime)`).

    gc deletes whatever the catalog does not reference, so it must never run against a catalog
    that lost track of the warehouse: an empty one (catalog.db deleted and recreated), or one
    created after the oldest table file (recreated, then written to). Nothing is deleted then.
    """
    if not table_files:
        return
    where = getattr(store, "path", "the catalog")
    hint = "nothing was deleted; restore catalog.db from a backup (the table files are intact), see `rat doctor`"
    is_empty = getattr(store, "is_empty", None)
    if callable(is_empty) and is_empty():
        raise CatalogError(
            f"gc refused: the catalog {where} holds no commits, yet the warehouse holds {len(table_files)} table "
            "file(s); it references none of them, so gc would delete them all",
            hint=hint,
        )
    born = float(getattr(store, "created_at", 0.0) or 0.0)
    oldest_path, oldest = min(table_files, key=lambda item: item[1])
    if born and oldest < born - CLOCK_SKEW_SECONDS:
        older = sum(1 for _path, mtime in table_files if mtime < born - CLOCK_SKEW_SECONDS)
        raise CatalogError(
            f"gc refused: the catalog {where} was created at {_when(born)}, after {older} table file(s) of the "
            f"warehouse were written (the oldest, {oldest_path}, at {_when(oldest)}): it cannot know which are live",
            hint=hint,
        )


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def collect_garbage(
    store: VersionStore,
    warehouse: Warehouse,
    *,
    older_than_seconds: float = 3600,
    dry_run: bool = False,
    pinned: Iterable[TableEntry],
) -> GcReport:
    """Delete every table file no branch, tag or product pin reaches, if older than `older_than_seconds`.

    `pinned` are extra roots: every product release and refresh pin (products/registry.py
    `all_pins`), which consumers read outside any branch. The listing is taken before the live set is computed, so a commit
    landing meanwhile only makes more files live; files written after the listing are never
    considered. A live file that cannot be read stops gc with a `CatalogError` before anything
    is deleted.
    """
    if older_than_seconds < 0:
        raise CatalogError(f"older_than_seconds must be >= 0, got {older_than_seconds}")
    from ratatouille_nb.catalog.authorized import AuthorizedStore

    if isinstance(store, AuthorizedStore):  # gc sees every workspace's files: an administrator's verb
        store.policy.require_admin("`rat gc`")
        store = store.inner
    root = warehouse.location()
    started = time.time()
    listing = [(path, _norm(path), mtime) for path, mtime in warehouse.list_files(root)]
    refuse_foreign_warehouse(store, [(path, mtime) for path, norm, mtime in listing if is_table_file(norm)])

    io = warehouse.file_io()
    live = _LiveSet(io)
    for hash_ in reachable_commits(store):
        for key, entry in sorted(store.get_commit(hash_).contents.items()):
            live.add_entry(key, entry)
    for entry in pinned:
        live.add_entry("(product pin)", entry)

    cutoff = started - older_than_seconds
    deleted: list[str] = []
    kept: list[str] = []
    too_recent: list[str] = []
    deleted_norm: set[str] = set()
    bytes_freed = 0
    ignored = 0
    for path, norm, mtime in sorted(listing):
        if norm in live.files:
            kept.append(path)
            continue
        if not is_table_file(norm):
            ignored += 1
            continue
        if mtime > cutoff:
            kept.append(path)
            too_recent.append(path)
            continue
        bytes_freed += _size(io, path)
        if not dry_run:
            warehouse.delete(path)
        deleted.append(path)
        deleted_norm.add(norm)

    if not dry_run and warehouse.is_local:
        _prune_empty_dirs(root, deleted)

    expired = (live.older_manifest_lists - live.manifest_lists) & deleted_norm
    return GcReport(
        dry_run=dry_run,
        files_deleted=len(deleted),
        bytes_freed=bytes_freed,
        files_kept=len(kept),
        snapshots_expired=len(expired),
        live_files=sum(1 for _p, norm, _m in listing if norm in live.files),
        files_ignored=ignored,
        deleted=tuple(deleted),
        kept=tuple(kept),
        too_recent=tuple(too_recent),
    )


def _size(io: Any, path: str) -> int:
    try:
        return len(io.new_input(path))
    except (OSError, FileNotFoundError):
        return 0


def _prune_empty_dirs(root: str, deleted: list[str]) -> None:
    """Remove folders emptied by this run (a killed write's `w-…` folder, a dropped table's tree).

    `os.rmdir` refuses non-empty folders, so a folder a writer is filling right now survives, and
    writers create their folders with `mkdir(parents=True)`, which recreates a pruned parent.
    """
    root = os.path.normpath(root)
    candidates = {os.path.dirname(os.path.normpath(p)) for p in deleted}
    for folder in sorted(candidates, key=lambda d: d.count(os.sep), reverse=True):
        current = folder
        while current != root and current.startswith(root + os.sep):
            try:
                os.rmdir(current)
            except OSError:
                break
            current = os.path.dirname(current)

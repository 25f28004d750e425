"""Per-table differences between two refs, from Iceberg metadata alone (no data is scanned).

Rows added/removed count the records of data files present on one side only, so an append of
10 rows shows +10 exactly; a copy-on-write delete shows the rewritten files' rows on both sides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.catalog.merge import changed_keys
from ratatouille_nb.catalog.models import ColumnChange, TableDiff, TableEntry
from ratatouille_nb.catalog.tables import read_metadata

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table.metadata import TableMetadata

    from ratatouille_nb.catalog.base import VersionStore
    from ratatouille_nb.storage.warehouse import Warehouse


def _files(io: FileIO, meta: TableMetadata | None) -> dict[str, int]:
    if meta is None or meta.current_snapshot() is None:
        return {}
    out: dict[str, int] = {}
    for manifest in meta.current_snapshot().manifests(io):  # type: ignore[union-attr]
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
            out[entry.data_file.file_path] = int(entry.data_file.record_count)
    return out


def _columns(meta: TableMetadata | None) -> dict[str, str]:
    return {f.name: str(f.field_type) for f in meta.schema().fields} if meta is not None else {}


def table_diff(io: FileIO, key: str, old: TableEntry | None, new: TableEntry | None) -> TableDiff:
    """Compare two versions of one table."""
    status = "added" if old is None else "removed" if new is None else "changed"
    if (old is not None and old.is_view) or (new is not None and new.is_view):
        return TableDiff(table=key, status=status)
    old_meta = read_metadata(io, old.metadata_location) if old else None
    new_meta = read_metadata(io, new.metadata_location) if new else None
    old_files, new_files = _files(io, old_meta), _files(io, new_meta)
    added = sum(n for p, n in new_files.items() if p not in old_files)
    removed = sum(n for p, n in old_files.items() if p not in new_files)
    changes: list[ColumnChange] = []
    if old_meta is not None and new_meta is not None:
        before, after = _columns(old_meta), _columns(new_meta)
        changes += [ColumnChange(name=c, change="added", new_type=after[c]) for c in after if c not in before]
        changes += [ColumnChange(name=c, change="removed", old_type=before[c]) for c in before if c not in after]
        changes += [
            ColumnChange(name=c, change="retyped", old_type=before[c], new_type=after[c])
            for c in before
            if c in after and before[c] != after[c]
        ]
    return TableDiff(table=key, status=status, rows_added=added, rows_removed=removed, schema_changes=changes)


def diff_refs(store: VersionStore, warehouse: Warehouse, from_ref: str, to_ref: str) -> list[TableDiff]:
    """Every table that differs between two refs, sorted by name."""
    before = store.resolve(from_ref).contents
    after = store.resolve(to_ref).contents
    io = warehouse.file_io()
    return [table_diff(io, key, before.get(key), after.get(key)) for key in sorted(changed_keys(before, after))]

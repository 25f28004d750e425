"""Which files one snapshot of a table is made of: what a reader of exactly that snapshot opens.

A product pin is readable as a list of files, not a folder (the folder holds unpublished
snapshots too): the metadata JSON, the manifest list, its manifests, and the data and delete
files those manifests hold live. The SQL sandbox (engine/) and the S3 policies (policies.py) grant these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.catalog.tables import read_metadata
from ratatouille_nb.errors import CatalogError

if TYPE_CHECKING:
    from pyiceberg.io import FileIO


def snapshot_files(io: FileIO, metadata_location: str, snapshot_id: int | None) -> list[str]:
    """Every file a reader of `snapshot_id` (default: the current one) in that metadata opens."""
    try:
        meta = read_metadata(io, metadata_location)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read table metadata {metadata_location}: {exc}", hint="run `rat doctor`") from None
    files = [metadata_location]
    snap = meta.snapshot_by_id(snapshot_id) if snapshot_id is not None else meta.current_snapshot()
    if snap is None:
        return files
    files.append(snap.manifest_list)
    for manifest in snap.manifests(io):
        files.append(manifest.manifest_path)
        files.extend(entry.data_file.file_path for entry in manifest.fetch_manifest_entry(io, discard_deleted=True))
    return files

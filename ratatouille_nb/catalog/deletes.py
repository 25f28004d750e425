"""Iceberg v2 row-level commits on pyiceberg 0.12's own classes: position-delete files and row deltas.

pyiceberg 0.12 reads position deletes but cannot write them (its manifest writer hard-codes data
content). This module is the one place that extends its classes to do so, pinned to 0.12.x:

* `position_delete_file` describes one Parquet delete file (written by DuckDB) as a `DataFile`
  with content POSITION_DELETES, the referenced data file's partition, `referenced_data_file`
  and equal lower/upper bounds on `file_path` (field id 2147483546), so every reader (pyiceberg,
  DuckDB, Iceberg Java) attaches it to exactly that one data file;
* `_DeleteManifestWriter` is a v2 manifest writer whose content is DELETES and whose file schema
  also carries `referenced_data_file` (field 143, optional in v2);
* `commit_row_delta` commits one snapshot that adds and removes data and delete files together
  (a merge-on-read merge, a copy-on-write rewrite, a compaction), with the operation that says
  what happened to the rows (append, delete, overwrite, replace).

Swap this module out when pyiceberg ships delete-file writes.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyiceberg
from pyiceberg.avro.file import AvroOutputFile
from pyiceberg.manifest import (
    DATA_FILE_TYPE,
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    ManifestWriterV2,
    data_file_with_partition,
    manifest_entry_schema_with_data_file,
)
from pyiceberg.table.snapshots import Operation, Summary
from pyiceberg.table.update.snapshot import _SnapshotProducer
from pyiceberg.types import StructType

from ratatouille_nb.errors import CatalogError

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.table import Table, Transaction
    from pyiceberg.table.metadata import TableMetadata

SUPPORTED_PYICEBERG = "0.12."
PATH_FIELD_ID = 2147483546  # the `file_path` column of a position-delete file (Iceberg spec)
POS_FIELD_ID = 2147483545  # its `pos` column
REFERENCED_DATA_FILE_ID = 143
_V3_ONLY = {142, 144, 145}  # first_row_id, content_offset, content_size_in_bytes: not in a v2 manifest


class PyIcebergVersionError(CatalogError):
    """The installed pyiceberg is not the version this module's subclasses were written against."""


def require_supported_pyiceberg(version: str | None = None) -> None:
    """Refuse to write delete files with a pyiceberg other than 0.12.x (its internals may differ)."""
    found = version or pyiceberg.__version__
    if not found.startswith(SUPPORTED_PYICEBERG):
        raise PyIcebergVersionError(
            f"merge-on-read needs pyiceberg {SUPPORTED_PYICEBERG}x, found {found}: ratatouille_nb/catalog/deletes.py "
            "extends its internal manifest and snapshot classes",
            hint="install pyiceberg==0.12.0 (the version pyproject.toml pins), or set `write_mode: copy-on-write`",
        )


# -- delete files -------------------------------------------------------------------------------


def _long(value: int) -> bytes:
    """Iceberg's single-value serialization of a long (little-endian 8 bytes)."""
    return struct.pack("<q", value)


def position_delete_file(
    path: str, data_file: DataFile, *, record_count: int, file_size_in_bytes: int, min_pos: int, max_pos: int
) -> DataFile:
    """The manifest description of one Parquet position-delete file that deletes rows of `data_file` only."""
    require_supported_pyiceberg()
    target = data_file.file_path.encode()
    delete = DataFile.from_args(
        _table_format_version=3,  # the v3 layout has `referenced_data_file`; the manifest is still v2
        content=DataFileContent.POSITION_DELETES,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=data_file.partition,
        record_count=record_count,
        file_size_in_bytes=file_size_in_bytes,
        value_counts={PATH_FIELD_ID: record_count, POS_FIELD_ID: record_count},
        null_value_counts={PATH_FIELD_ID: 0, POS_FIELD_ID: 0},
        lower_bounds={PATH_FIELD_ID: target, POS_FIELD_ID: _long(min_pos)},
        upper_bounds={PATH_FIELD_ID: target, POS_FIELD_ID: _long(max_pos)},
        referenced_data_file=data_file.file_path,
    )
    delete.spec_id = data_file.spec_id
    return delete


def referenced_data_file(delete_file: DataFile) -> str | None:
    """The one data file a position-delete file applies to (from its `file_path` bounds), if it names one."""
    lower = (delete_file.lower_bounds or {}).get(PATH_FIELD_ID)
    upper = (delete_file.upper_bounds or {}).get(PATH_FIELD_ID)
    if lower is not None and lower == upper:
        return bytes(lower).decode("utf-8")
    return None


def _with_referenced_data_file(delete_file: DataFile) -> DataFile:
    """The v3-layout copy of a delete file read back from a v2 manifest (which drops field 143)."""
    if len(delete_file._data) == len(DATA_FILE_TYPE[3].fields):
        return delete_file
    values: dict[str, Any] = {f.name: getattr(delete_file, f.name) for f in DATA_FILE_TYPE[2].fields}
    values["referenced_data_file"] = referenced_data_file(delete_file)
    copy = DataFile.from_args(_table_format_version=3, **values)
    copy.spec_id = delete_file.spec_id
    return copy


class _DeleteManifestWriter(ManifestWriterV2):
    """A v2 manifest of delete files: content DELETES, and `referenced_data_file` kept in the file schema."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}

    def new_writer(self) -> AvroOutputFile[ManifestEntry]:
        partition_type = self._spec.partition_type(self._schema)
        v3 = data_file_with_partition(partition_type, format_version=3)
        v2_plus = StructType(*[f for f in v3.fields if f.field_id not in _V3_ONLY])
        return AvroOutputFile[ManifestEntry](
            output_file=self._output_file,
            file_schema=manifest_entry_schema_with_data_file(2, v2_plus),
            record_schema=manifest_entry_schema_with_data_file(3, v3),
            schema_name="manifest_entry",
            metadata=self._meta,
        )

    def prepare_entry(self, entry: ManifestEntry) -> ManifestEntry:
        entry = super().prepare_entry(entry)
        if entry.data_file.content == DataFileContent.DATA:
            raise CatalogError(f"a data file cannot go into a delete manifest: {entry.data_file.file_path}")
        entry.data_file = _with_referenced_data_file(entry.data_file)
        return entry


# -- one snapshot adding and removing data and delete files --------------------------------------


@dataclass
class RowDelta:
    """The files one row-level change adds and removes, and what it did to the rows."""

    operation: Operation
    added_data: list[DataFile] = field(default_factory=list)
    added_deletes: list[DataFile] = field(default_factory=list)
    removed_data: list[DataFile] = field(default_factory=list)
    removed_deletes: list[DataFile] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added_data or self.added_deletes or self.removed_data or self.removed_deletes)


class _RowDeltaProducer(_SnapshotProducer["_RowDeltaProducer"]):
    """pyiceberg's snapshot producer, writing data manifests and delete manifests in one snapshot.

    Manifests of the parent snapshot that hold a removed file are rewritten (the removed entries
    marked DELETED, the others EXISTING); all other manifests are carried over as they are.
    """

    def __init__(self, transaction: Transaction, delta: RowDelta, branch: str | None) -> None:
        super().__init__(delta.operation, transaction, transaction._table.io, branch=branch)
        self._delta = delta
        self._added_data_files = [*delta.added_data, *delta.added_deletes]
        self._deleted_data_files = {*delta.removed_data, *delta.removed_deletes}

    # pyiceberg's own validation compares Iceberg refs; commits here are checked by the version
    # store's compare-and-swap and the transaction's rebase (catalog/transaction.py) instead.
    def _validate_concurrency(self) -> None:
        return None

    def _deleted_entries(self) -> list[ManifestEntry]:
        return []

    def _existing_manifests(self) -> list[ManifestFile]:
        return []

    def _writer_for(self, content: ManifestContent, spec: PartitionSpec) -> ManifestWriter:
        if content == ManifestContent.DATA:
            return self.new_manifest_writer(spec)
        return _DeleteManifestWriter(spec, self.schema(), self.new_manifest_output(), self._snapshot_id, self._compression)

    def _added_manifests(self, files: list[DataFile], content: ManifestContent) -> list[ManifestFile]:
        by_spec: dict[int, list[DataFile]] = defaultdict(list)
        default_spec = self._transaction.table_metadata.default_spec_id
        for data_file in files:
            by_spec[getattr(data_file, "_spec_id", default_spec)].append(data_file)
        out = []
        for spec_id, group in sorted(by_spec.items()):
            with self._writer_for(content, self.spec(spec_id)) as writer:
                for data_file in group:
                    writer.add(
                        ManifestEntry.from_args(
                            status=ManifestEntryStatus.ADDED, snapshot_id=self._snapshot_id, sequence_number=None,
                            file_sequence_number=None, data_file=data_file,
                        )
                    )
            out.append(writer.to_manifest_file())
        return out

    def _carried_manifests(self) -> list[ManifestFile]:
        removed = {f.file_path for f in self._deleted_data_files}
        parent = self._transaction.table_metadata.snapshot_by_id(self._parent_snapshot_id) if self._parent_snapshot_id else None
        if parent is None:
            if removed:
                raise CatalogError("a row delta removes files from a table that has no snapshot")
            return []
        out: list[ManifestFile] = []
        found: set[str] = set()
        for manifest in parent.manifests(io=self._io):
            if not (manifest.has_added_files() or manifest.has_existing_files()):
                continue  # only DELETED entries: nothing live, as a fast append drops it too
            entries = manifest.fetch_manifest_entry(io=self._io, discard_deleted=True)
            hits = [e for e in entries if e.data_file.file_path in removed]
            if not hits:
                out.append(manifest)
                continue
            found.update(e.data_file.file_path for e in hits)
            with self._writer_for(manifest.content, self.spec(manifest.partition_spec_id)) as writer:
                for entry in entries:
                    if entry.data_file.file_path in removed:
                        writer.delete(entry)
                    else:
                        writer.existing(entry)
            out.append(writer.to_manifest_file())
        missing = removed - found
        if missing:
            raise CatalogError(f"a row delta removes file(s) the table does not hold: {', '.join(sorted(missing)[:3])}")
        return out

    def _manifests(self) -> list[ManifestFile]:
        delta = self._delta
        return (
            self._added_manifests(delta.added_data, ManifestContent.DATA)
            + self._added_manifests(delta.added_deletes, ManifestContent.DELETES)
            + self._carried_manifests()
        )

    def _summary(self, snapshot_properties: dict[str, str] | None = None) -> Summary:
        # pyiceberg's summary update knows append/overwrite/delete; a replace keeps the same totals logic.
        wanted = self._operation
        if wanted == Operation.REPLACE:
            self._operation = Operation.OVERWRITE
        try:
            summary = super()._summary(snapshot_properties or {})
        finally:
            self._operation = wanted
        return Summary(operation=wanted, **summary.additional_properties)


def commit_row_delta(table: Table, delta: RowDelta, *, snapshot_properties: dict[str, str] | None = None) -> None:
    """Commit `delta` to `table` (through its catalog) as one snapshot; nothing when it is empty."""
    require_supported_pyiceberg()
    if delta.empty:
        return
    if table.format_version < 2 and (delta.added_deletes or delta.removed_deletes):
        raise CatalogError(f"table {'.'.join(table.name())} is Iceberg format v1: it cannot hold delete files")
    for delete in delta.added_deletes:
        if delete.content != DataFileContent.POSITION_DELETES or referenced_data_file(delete) is None:
            raise CatalogError(f"{delete.file_path}: only position deletes naming one data file are written")
    with table.transaction() as tx:
        producer = _RowDeltaProducer(tx, delta, branch="main")
        producer.snapshot_properties = dict(snapshot_properties or {})
        producer.commit()


# -- reading what a snapshot holds ---------------------------------------------------------------


@dataclass
class LiveFile:
    """A live data file and the position-delete files that apply to it."""

    data_file: DataFile
    deletes: list[DataFile] = field(default_factory=list)

    @property
    def path(self) -> str:
        return str(self.data_file.file_path)

    @property
    def deleted_rows(self) -> int:
        return sum(int(d.record_count) for d in self.deletes)

    @property
    def live_rows(self) -> int:
        return int(self.data_file.record_count) - self.deleted_rows


def live_files(metadata: TableMetadata, io: Any, snapshot_id: int | None = None) -> dict[str, LiveFile]:
    """Every live data file of a snapshot (default: the current one) with its delete files, by path.

    Reads manifests only (no data). Delete files that name no single data file (written by
    another engine) are attached to every data file of their partition spec with an older
    sequence number, as the spec says.
    """
    snap = metadata.snapshot_by_id(snapshot_id) if snapshot_id is not None else metadata.current_snapshot()
    if snap is None:
        return {}
    files: dict[str, LiveFile] = {}
    seqs: dict[str, int] = {}
    loose: list[tuple[ManifestEntry, int]] = []
    targeted: list[ManifestEntry] = []
    for manifest in snap.manifests(io):
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
            if manifest.content == ManifestContent.DATA:
                files[entry.data_file.file_path] = LiveFile(entry.data_file)
                seqs[entry.data_file.file_path] = entry.sequence_number or 0
            elif entry.data_file.content == DataFileContent.POSITION_DELETES:
                if referenced_data_file(entry.data_file) is not None:
                    targeted.append(entry)
                else:
                    loose.append((entry, manifest.partition_spec_id))
            else:
                raise CatalogError(
                    f"{entry.data_file.file_path}: equality deletes are not supported (written by another engine)",
                    hint="compact the table with that engine first",
                )
    for entry in targeted:
        target = files.get(referenced_data_file(entry.data_file) or "")
        if target is not None and (entry.sequence_number or 0) >= seqs[target.path]:
            target.deletes.append(entry.data_file)
    for entry, spec_id in loose:
        for live in files.values():
            if live.data_file.spec_id == spec_id and (entry.sequence_number or 0) >= seqs[live.path]:
                live.deletes.append(entry.data_file)
    return files


def delete_files_of(files: Iterable[LiveFile]) -> list[DataFile]:
    """The distinct delete files a set of live data files carries."""
    seen: dict[str, DataFile] = {}
    for live in files:
        for d in live.deletes:
            seen.setdefault(d.file_path, d)
    return list(seen.values())


__all__ = [
    "PATH_FIELD_ID",
    "POS_FIELD_ID",
    "LiveFile",
    "PyIcebergVersionError",
    "RowDelta",
    "commit_row_delta",
    "delete_files_of",
    "live_files",
    "position_delete_file",
    "referenced_data_file",
    "require_supported_pyiceberg",
]


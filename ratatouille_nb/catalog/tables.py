"""A pyiceberg `Catalog` over one commit of the version store, staging writes instead of committing.

pyiceberg does all Iceberg metadata work (snapshots, manifests, schema and spec updates); this
class only decides where a table's current metadata is (the staged map, else the base commit)
and, on `commit_table`, writes the new metadata file and stages its location. The transaction
that owns it turns the staged map into one version-store commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError, TableAlreadyExistsError, ValidationError
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import CommitTableResponse, Table
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.errormap import metadata_error

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import TableMetadata

    from ratatouille_nb.storage.warehouse import Warehouse

Identifier = tuple[str, ...]


def table_key(identifier: str | Identifier) -> str:
    parts = identifier if isinstance(identifier, tuple) else tuple(identifier.split("."))
    return ".".join(parts)


def read_metadata(io: Any, location: str, table: str | None = None, *, subject: str | None = None) -> TableMetadata:
    """Parse one metadata file; a missing or damaged one is a TableMetadataError naming the table and the file."""
    try:
        return FromInputFile.table_metadata(io.new_input(location))
    except (OSError, ValueError, ValidationError) as exc:  # ValueError: not UTF-8 / not JSON at all
        raise metadata_error(exc, location, table, subject=subject) from exc


class BranchTables(MetastoreCatalog):
    """Tables as of `base` plus whatever this transaction staged; never touches the version store."""

    def __init__(
        self,
        warehouse: Warehouse,
        prefix: str,
        base: dict[str, TableEntry],
        on_stage: Callable[[str, TableEntry | None], None] | None = None,
    ) -> None:
        super().__init__("rat", **{"warehouse": warehouse.location(prefix), **warehouse.io_properties})
        self.warehouse = warehouse
        self.prefix = prefix
        self.base = dict(base)
        self.staged: dict[str, TableEntry | None] = {}
        self._on_stage = on_stage
        self._io = warehouse.file_io()

    # -- what the branch holds ---------------------------------------------------------------

    def entry(self, key: str) -> TableEntry | None:
        return self.staged[key] if key in self.staged else self.base.get(key)

    def keys(self) -> list[str]:
        merged = {**self.base, **self.staged}
        return sorted(k for k, v in merged.items() if v is not None)

    def _check_location(self, key: str, table_location: str, metadata_location: str) -> None:
        """The prefix guard: a workspace writes table files and metadata only under its own prefix."""
        self.warehouse.check_within(self.prefix, table_location, f"table {key}")
        self.warehouse.check_within(self.prefix, metadata_location, f"the metadata of table {key}")

    def _stage(self, key: str, entry: TableEntry | None) -> None:
        self.staged[key] = entry
        if self._on_stage:
            self._on_stage(key, entry)

    # -- pyiceberg Catalog --------------------------------------------------------------------

    def load_table(self, identifier: str | Identifier) -> Table:
        key = table_key(identifier)
        entry = self.entry(key)
        if entry is None:
            raise NoSuchTableError(f"Table does not exist: {key}")
        metadata = read_metadata(self._io, entry.metadata_location, key)
        return Table(
            identifier=tuple(key.split(".")),
            metadata=metadata,
            metadata_location=entry.metadata_location,
            io=self._io,
            catalog=self,
        )

    def create_table(
        self,
        identifier: str | Identifier,
        schema: Schema | pa.Schema,
        location: str | None = None,
        partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
        sort_order: SortOrder = UNSORTED_SORT_ORDER,
        properties: dict[str, str] | None = None,
    ) -> Table:
        key = table_key(identifier)
        if self.entry(key) is not None:
            raise TableAlreadyExistsError(f"Table already exists: {key}")
        staged = self._create_staged_table(identifier, schema, location, partition_spec, sort_order, properties or {})
        self._check_location(key, staged.metadata.location, staged.metadata_location)
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        self._stage(key, _entry_for(staged.metadata, staged.metadata_location))
        return self.load_table(key)

    def commit_table(self, table: Table, requirements: tuple, updates: tuple) -> CommitTableResponse:
        key = table_key(table.name())
        try:
            current: Table | None = self.load_table(key)
        except NoSuchTableError:
            current = None
        staged = self._update_and_stage_table(current, table.name(), requirements, updates)
        if current is not None and staged.metadata == current.metadata:
            return CommitTableResponse(metadata=current.metadata, metadata_location=current.metadata_location)
        self._check_location(key, staged.metadata.location, staged.metadata_location)
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        self._stage(key, _entry_for(staged.metadata, staged.metadata_location))
        return CommitTableResponse(metadata=staged.metadata, metadata_location=staged.metadata_location)

    def drop_table(self, identifier: str | Identifier) -> None:
        key = table_key(identifier)
        if self.entry(key) is None:
            raise NoSuchTableError(f"Table does not exist: {key}")
        self._stage(key, None)

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        ns = table_key(namespace)
        return [tuple(k.split(".")) for k in self.keys() if k.rsplit(".", 1)[0] == ns]

    def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
        return sorted({(k.split(".")[0],) for k in self.keys()})

    def load_namespace_properties(self, namespace: str | Identifier) -> dict[str, str]:
        return {}

    def create_namespace(self, namespace: str | Identifier, properties: dict[str, str] | None = None) -> None:
        """Namespaces are implicit: a layer exists while it holds a table."""

    def drop_namespace(self, namespace: str | Identifier) -> None:
        raise NoSuchNamespaceError("namespaces are implicit in Ratatouille")

    def update_namespace_properties(self, namespace: Any, removals: Any = None, updates: Any = None) -> Any:
        raise NotImplementedError("namespaces carry no properties")

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        key = table_key(identifier)
        if self.entry(key) is not None and not overwrite:
            raise TableAlreadyExistsError(f"Table already exists: {key}")
        self._stage(key, _entry_for(read_metadata(self._io, metadata_location), metadata_location))
        return self.load_table(key)

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        src, dst = table_key(from_identifier), table_key(to_identifier)
        entry = self.entry(src)
        if entry is None:
            raise NoSuchTableError(f"Table does not exist: {src}")
        if self.entry(dst) is not None:
            raise TableAlreadyExistsError(f"Table already exists: {dst}")
        self._stage(dst, entry)
        self._stage(src, None)
        return self.load_table(dst)

    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        return []

    def view_exists(self, identifier: str | Identifier) -> bool:
        return False

    def drop_view(self, identifier: str | Identifier) -> None:
        raise NotImplementedError("Iceberg views are not supported")

    def load_view(self, identifier: str | Identifier) -> Any:
        raise NotImplementedError("Iceberg views are not supported")

    def register_view(self, identifier: str | Identifier, metadata_location: str) -> Any:
        raise NotImplementedError("Iceberg views are not supported")


def _entry_for(metadata: TableMetadata, location: str) -> TableEntry:
    return TableEntry(
        metadata_location=location,
        snapshot_id=metadata.current_snapshot_id,
        table_uuid=str(metadata.table_uuid),
    )

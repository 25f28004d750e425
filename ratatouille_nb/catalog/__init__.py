"""Catalog with branches: a version store (embedded SQLite or Nessie) over Iceberg tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.catalog.base import VersionStore
from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableDiff, TableEntry
from ratatouille_nb.errors import ConfigError

if TYPE_CHECKING:
    from ratatouille_nb.settings import Settings

__all__ = ["Commit", "MergeResult", "Reference", "TableDiff", "TableEntry", "VersionStore", "open_store"]


def open_store(settings: Settings) -> VersionStore:
    """The version store `RAT_CATALOG` selects: `local` (SQLite under RAT_HOME) or `nessie`."""
    if settings.catalog == "local":
        from ratatouille_nb.catalog.local import LocalVersionStore

        if not settings.catalog_db.exists():
            refuse_lost_catalog(settings)
        return LocalVersionStore(settings.catalog_db)
    if settings.catalog == "nessie":
        from ratatouille_nb.catalog.nessie import NessieVersionStore

        if not settings.nessie_uri:
            raise ConfigError(
                "RAT_CATALOG=nessie needs the Nessie server's address",
                hint="set NESSIE_URI, e.g. NESSIE_URI=http://localhost:19120/api/v2",
            )

        def file_io() -> object:
            from ratatouille_nb.storage import Warehouse

            return Warehouse.from_settings(settings).file_io()

        headers = {"Authorization": f"Bearer {settings.nessie_token}"} if settings.nessie_token else None
        return NessieVersionStore(settings.nessie_uri, file_io=file_io, headers=headers)
    raise ConfigError(f"unknown catalog '{settings.catalog}'", hint="set RAT_CATALOG to 'local' or 'nessie'")


def lost_catalog_evidence(settings: Settings) -> str | None:
    """Why RAT_HOME looks used although catalog.db is absent (so it was deleted or moved), else None.

    A fresh home has none of these; creating its catalog is then the normal first step.
    """
    from ratatouille_nb.catalog.gc import is_table_file
    from ratatouille_nb.storage import Warehouse

    runs = settings.home / "runs.db"
    if runs.exists():
        return f"{runs} holds run history"
    from ratatouille_nb.access import AccessRegistry, resolve_principal
    from ratatouille_nb.access.registry import FILE_NAME

    access = settings.home / FILE_NAME
    if access.exists():
        registry = AccessRegistry(settings.home, resolve_principal(settings))
        try:
            registered = len(registry.all())
        finally:
            registry.close()
        if registered:
            return f"{access} holds {registered} registered workspace(s)"
    warehouse = Warehouse.from_settings(settings)
    count = sum(1 for path, _mtime in warehouse.list_files(warehouse.location()) if is_table_file(path))
    return f"the warehouse {warehouse.location()} holds {count} table file(s)" if count else None


def refuse_lost_catalog(settings: Settings) -> None:
    """Raise CatalogMissingError when catalog.db is missing from a RAT_HOME that was in use.

    An empty catalog over an existing warehouse would show no tables and let `rat gc` treat every
    table file as garbage; the files are intact, so the fix is to restore catalog.db.
    """
    from ratatouille_nb.errors import CatalogMissingError

    evidence = lost_catalog_evidence(settings)
    if evidence is not None:
        raise CatalogMissingError(
            f"the catalog {settings.catalog_db} is missing, but {evidence}: refusing to start an empty catalog",
            path=settings.catalog_db,
            hint="restore catalog.db from a backup (the table files are intact) and see `rat doctor`; to start over "
            "instead, move the warehouse, access.db, registry.db and runs.db out of RAT_HOME",
        )

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

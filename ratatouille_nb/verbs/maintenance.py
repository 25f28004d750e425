"""Maintenance verbs: garbage collection (an administrator's verb) and the checks around it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.catalog.gc import GcReport
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.maintenance.doctor import Diagnosis
    from ratatouille_nb.settings import Settings


def gc(settings: Settings, *, older_than_seconds: float = 3600, dry_run: bool = False) -> GcReport:
    """Delete table files no branch, tag or product pin reaches (catalog/gc.py), as an administrator."""
    from ratatouille_nb.access import AccessPolicy, AccessRegistry, resolve_principal
    from ratatouille_nb.catalog import open_store
    from ratatouille_nb.catalog.authorized import AuthorizedStore
    from ratatouille_nb.catalog.gc import collect_garbage
    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.products.registry import SqliteProductRegistry
    from ratatouille_nb.storage import Warehouse

    principal = resolve_principal(settings)
    registry = AccessRegistry(settings.home, principal)
    store = open_store(settings)
    try:
        guarded = AuthorizedStore(store, AccessPolicy(registry, principal, None, default_branch=store.default_branch))
        products = SqliteProductRegistry(settings.home)
        try:
            pins = [TableEntry(metadata_location=p.metadata_location, snapshot_id=p.snapshot_id) for p in products.all_pins()]
        finally:
            products.close()
        return collect_garbage(
            guarded, Warehouse.from_settings(settings), older_than_seconds=older_than_seconds, dry_run=dry_run, pinned=pins
        )
    finally:
        store.close()
        registry.close()


def session_gc(s: Session, *, older_than_seconds: float = 3600, dry_run: bool = False) -> GcReport:
    """`gc` with a workspace session's settings (the check is the same: administrators only)."""
    return gc(s.settings, older_than_seconds=older_than_seconds, dry_run=dry_run)


def doctor(settings: Settings) -> Diagnosis:
    """Check every store of a RAT_HOME and say how to fix each problem (maintenance/doctor.py); changes no data."""
    from ratatouille_nb.maintenance.doctor import diagnose

    return diagnose(settings)

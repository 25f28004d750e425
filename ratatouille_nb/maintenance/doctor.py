"""`rat doctor`: check every store of a RAT_HOME and say, for each problem, the command that fixes it.

What is checked, in order (a later check needs the earlier ones to pass):

1. each SQLite store (catalog.db, registry.db, runs.db, access.db): `PRAGMA quick_check`, and a
   schema version this package knows; a missing catalog.db beside a used RAT_HOME;
2. every branch and tag head: each table's Iceberg metadata readable, and the manifest list,
   manifests, data and delete files of its current snapshot present in the warehouse; the
   same for every product pin (a release or a refresh);
3. orphans: what `rat gc` would delete (a dry run of it, so both always agree), or why gc
   would refuse to run.

Nothing is written, except that the catalog and registry are opened through their owners, which
migrate an old schema forward as every command does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ratatouille_nb.catalog.gc import _norm, collect_garbage, is_table_file
from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.tables import read_metadata
from ratatouille_nb.errors import CatalogError, StoreError, TableMetadataError
from ratatouille_nb.sqlite_store import integrity_problems, open_read_only, schema_version

if TYPE_CHECKING:
    from ratatouille_nb.catalog.base import VersionStore
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.storage import Warehouse

Severity = Literal["error", "warning"]
ORPHAN_AGE_SECONDS = 3600.0
"""Unreferenced files younger than this may belong to a write in flight: not reported (gc's default)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where, and the command (or step) that fixes it."""

    subject: str
    message: str
    fix: str
    severity: Severity = "error"


@dataclass
class Diagnosis:
    """The problems found and what was looked at (so "no problems" says how much was checked)."""

    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def _store_versions() -> dict[str, int]:
    """The schema version this package writes, per store file."""
    from ratatouille_nb.access.registry import FILE_NAME as ACCESS_FILE
    from ratatouille_nb.access.registry import MIGRATIONS as ACCESS
    from ratatouille_nb.catalog.local import MIGRATIONS as CATALOG
    from ratatouille_nb.pipeline.runs import MIGRATIONS as RUNS
    from ratatouille_nb.products.registry import MIGRATIONS as PRODUCTS

    return {"catalog.db": len(CATALOG), "registry.db": len(PRODUCTS), "runs.db": len(RUNS), ACCESS_FILE: len(ACCESS)}


def _repair_fix(path: Path) -> str:
    if path.name == "runs.db":
        return f"move it aside (only run history is lost; the next run starts a new one): `mv {path} {path}.damaged`"
    return (
        f"restore {path.name} from a backup, or salvage what SQLite can read: "
        f"`mv {path} {path}.damaged && sqlite3 {path}.damaged .recover | sqlite3 {path}`"
    )


def check_stores(settings: Settings, diagnosis: Diagnosis) -> set[str]:
    """Integrity and schema version of every store file; returns the names of those that can be used."""
    from ratatouille_nb.catalog import lost_catalog_evidence

    sound: set[str] = set()
    for name, known in _store_versions().items():
        path = settings.home / name
        if not path.exists():
            evidence = lost_catalog_evidence(settings) if name == "catalog.db" and settings.catalog == "local" else None
            if evidence is not None:
                diagnosis.problems.append(Problem(
                    str(path), f"catalog.db is missing, but {evidence}",
                    f"restore {path} from a backup (the table files are intact); do not run `rat gc` until then",
                ))
            continue
        diagnosis.checked.append(name)
        damage = integrity_problems(path)
        if damage:
            diagnosis.problems.append(Problem(str(path), f"{name} is damaged: {'; '.join(damage[:3])}", _repair_fix(path)))
            continue
        conn = open_read_only(path)
        try:
            version = schema_version(conn)
        finally:
            conn.close()
        if version > known:
            diagnosis.problems.append(Problem(
                str(path), f"{name} has schema version {version}; this Ratatouille knows up to {known}",
                "upgrade ratatouille_nb (`pip install -U ratatouille_nb`)",
            ))
            continue
        sound.add(name)
    return sound


class _Files:
    """What table entries reference, checked against one listing of the warehouse."""

    def __init__(self, warehouse: Warehouse, present: set[str]) -> None:
        self.io = warehouse.file_io()
        self.present = present
        self._seen: dict[str, tuple[str, str] | None] = {}

    def problem(self, location: str, snapshot_id: int | None) -> tuple[str, str] | None:
        """(message, kind) of what is wrong with one metadata file and its current snapshot, else None."""
        if location not in self._seen:
            self._seen[location] = self._check(location, snapshot_id)
        return self._seen[location]

    def _check(self, location: str, snapshot_id: int | None) -> tuple[str, str] | None:
        try:
            meta = read_metadata(self.io, location)
        except TableMetadataError as exc:  # said once per file, whichever tables and pins share it
            problem = str(exc.args[0]).split(f" at {location}: ", 1)[-1]
            return f"cannot read its metadata at {location}: {problem}", "metadata"
        wanted = snapshot_id if snapshot_id is not None else meta.current_snapshot_id
        snapshot = meta.snapshot_by_id(wanted) if wanted is not None else None
        if snapshot is None:
            return None if wanted is None else (f"its snapshot {wanted} is not in {location}", "metadata")
        needed = [snapshot.manifest_list] if snapshot.manifest_list else []
        try:
            for manifest in snapshot.manifests(self.io):
                needed.append(manifest.manifest_path)
                needed += [e.data_file.file_path for e in manifest.fetch_manifest_entry(self.io, discard_deleted=True)]
        except (OSError, ValueError) as exc:
            missing = [p for p in needed if _norm(p) not in self.present]
            detail = f" (missing: {missing[0]})" if missing else f": {exc}"
            return f"the manifests of snapshot {wanted} cannot be read{detail}", "files"
        missing = [p for p in needed if _norm(p) not in self.present]
        if missing:
            return f"{len(missing)} referenced file(s) missing from the warehouse, e.g. {missing[0]}", "files"
        return None


def _table_fix(kind: str, ref: str, ref_kind: str, key: str) -> str:
    if ref_kind == "tag":
        return f"restore the file(s) from a backup, or delete the tag: `rat tag delete {ref}`"
    drop = f'`rat sql --branch {ref} "DROP TABLE {key}"`'
    if kind == "metadata":
        return f"restore the file from a backup, or drop the table: {drop}"
    return f"restore the missing file(s) from a backup, or drop the table ({drop}) and build it again"


def check_tables(store: VersionStore, files: _Files, diagnosis: Diagnosis) -> bool:
    """Every table of every branch and tag head; False when a table is broken."""
    tables, ok = 0, True
    for ref in store.list_references():
        for key, entry in sorted(store.get_commit(ref.hash).contents.items()):
            if entry.view_sql is not None or not entry.metadata_location:
                continue
            tables += 1
            found = files.problem(entry.metadata_location, entry.snapshot_id)
            if found is not None:
                message, kind = found
                diagnosis.problems.append(Problem(f"table {key} on {ref.kind} {ref.name}", message, _table_fix(kind, ref.name, ref.kind, key)))
                ok = False
    diagnosis.checked.append(f"{tables} table(s) on {len(store.list_references())} branch(es) and tag(s)")
    return ok


def check_product_pins(settings: Settings, files: _Files, diagnosis: Diagnosis) -> tuple[bool, list[TableEntry]]:
    """Every pin of every product release (consumers may read any of them with `as_of`); (all sound, the pins)."""
    from ratatouille_nb.products.registry import SqliteProductRegistry

    pins: list[TableEntry] = []
    if not (settings.home / "registry.db").exists():
        return True, pins
    registry = SqliteProductRegistry(settings.home)
    ok = True
    try:
        for release in registry.releases():
            for pin in registry.pins(release.name, release.version):
                if not pin.metadata_location:
                    continue
                pins.append(TableEntry(metadata_location=pin.metadata_location, snapshot_id=pin.snapshot_id))
                subject = f"product {release.name} {release.version}"
                found = files.problem(pin.metadata_location, pin.snapshot_id)
                if found is not None:
                    diagnosis.problems.append(Problem(
                        f"{subject} ({pin.reason} pin)", found[0],
                        f"restore the file from a backup; newer reads are fixed by re-pinning from the owner workspace "
                        f"'{release.owner_workspace}': `rat products refresh {release.name}`",
                    ))
                    ok = False
    finally:
        registry.close()
    diagnosis.checked.append(f"{len(pins)} product pin(s)")
    return ok, pins


def check_orphans(store: VersionStore, warehouse: Warehouse, pins: list[TableEntry], diagnosis: Diagnosis) -> None:
    """What gc would delete (older than an hour), or why gc would refuse: both are worth knowing."""
    try:
        report = collect_garbage(store, warehouse, older_than_seconds=ORPHAN_AGE_SECONDS, dry_run=True, pinned=pins)
    except CatalogError as exc:
        cause = exc.__cause__
        if isinstance(cause, TableMetadataError):  # a commit of the history (not a head) points at it
            diagnosis.problems.append(Problem(
                f"table {cause.table or '?'} in the commit history",
                f"`rat gc` cannot run: a reachable commit references {cause.location}, which cannot be read",
                "restore the file from a backup: gc keeps refusing while any reachable commit references it",
            ))
        else:
            diagnosis.problems.append(Problem("rat gc", str(exc.args[0]), exc.hint or "see the message"))
        return
    if report.files_deleted:
        diagnosis.problems.append(Problem(
            "warehouse",
            f"{report.files_deleted} table file(s) ({report.bytes_freed:,} bytes) no branch, tag or product references",
            "`rat gc --dry-run -v` lists them; `rat gc` deletes them",
            severity="warning",
        ))


def _listing(warehouse: Warehouse) -> tuple[set[str], int]:
    paths = [_norm(p) for p, _m in warehouse.list_files(warehouse.location())]
    return set(paths), sum(1 for p in paths if is_table_file(p))


def diagnose(settings: Settings) -> Diagnosis:
    """Check every store of `settings.home` (and its warehouse); never raises for what it finds."""
    from ratatouille_nb.catalog import open_store
    from ratatouille_nb.storage import Warehouse

    diagnosis = Diagnosis()
    sound = check_stores(settings, diagnosis)
    if settings.catalog == "local" and "catalog.db" not in sound:
        return diagnosis  # without a catalog there are no tables to check
    warehouse = Warehouse.from_settings(settings)
    present, table_files = _listing(warehouse)
    diagnosis.checked.append(f"{table_files} table file(s) in {warehouse.location()}")
    files = _Files(warehouse, present)
    try:
        store = open_store(settings)
    except StoreError as exc:
        diagnosis.problems.append(Problem(str(exc.path or settings.catalog_db), str(exc.args[0]), exc.hint or ""))
        return diagnosis
    try:
        tables_ok = check_tables(store, files, diagnosis)
        if "registry.db" in sound or not (settings.home / "registry.db").exists():
            pins_ok, pins = check_product_pins(settings, files, diagnosis)
        else:
            pins_ok, pins = False, []  # a damaged registry: its pins are unknown, so gc's view would be wrong
        if tables_ok and pins_ok and settings.catalog == "local":
            check_orphans(store, warehouse, pins, diagnosis)
        elif settings.catalog == "local":
            diagnosis.checked.append("orphans: not checked until the problems above are fixed")
    finally:
        store.close()
    return diagnosis


def render(diagnosis: Diagnosis) -> Iterable[str]:
    """The lines `rat doctor` prints."""
    yield "checked: " + ", ".join(diagnosis.checked or ["nothing (no stores under RAT_HOME yet)"])
    for p in diagnosis.problems:
        yield f"{'PROBLEM' if p.severity == 'error' else 'WARNING'}  {p.subject}: {p.message}"
        yield f"  fix: {p.fix}"
    errors, warnings = len(diagnosis.errors), len(diagnosis.problems) - len(diagnosis.errors)
    yield "no problems found" if not diagnosis.problems else f"{errors} problem(s), {warnings} warning(s)"


__all__ = ["Diagnosis", "Problem", "diagnose", "render"]


"""The locked DuckDB sandbox: the only files the SQL of one workspace can reach.

After its extensions load, every connection that runs user SQL gets
- `allowed_directories`: the workspace's storage root (landing included), its `exports/` folder,
  the spill folder, the workspace folder and the folders it lets SQL read (`read_paths:` in
  workspace.yaml, `RAT_READ_PATHS` for one run);
- `allowed_paths`: exactly the files of the product pins it may read — metadata JSON, manifest list,
  manifests, data and delete files of the pinned snapshot (`iceberg_scan` opens all of them;
  allowing the table's folder would expose unpublished snapshots) — and, the same way, of tables
  outside its storage root that a ref it reads holds (another workspace's table merged into main);
- `enable_external_access = false`, then `lock_configuration = true`,
so DuckDB itself refuses read_parquet, glob, iceberg_scan, read_blob, COPY, ATTACH, LOAD and INSTALL
anywhere else, and no `SET` can undo it. Another workspace's storage root or folder, the warehouse
root and RAT_HOME's stores (catalog.db, registry.db, runs.db, access.db) are never allowed, whatever the
settings say: a folder that would expose them is refused when the connection opens.

Known gap (measured on DuckDB 1.5.5): for s3:// paths DuckDB checks the prefix before httpfs folds
`..` segments, so `s3://b/wh/a/../b/x` passes the check for `s3://b/wh/a/`. The statement check
(engine/statements.py) refuses literal `..` segments; on S3 per-workspace credentials are the hard
boundary.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.engine.errors import SandboxError
from ratatouille_nb.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

    from ratatouille_nb.access.registry import WorkspaceRecord
    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.storage import Warehouse
    from ratatouille_nb.workspace import Workspace

STORES = ("catalog.db", "registry.db", "runs.db", "access.db")
READ_PATHS_HINT = "add the folder to `read_paths:` in workspace.yaml (or set RAT_READ_PATHS=<folder> for one run)"
_REFUSED_RE = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')


@dataclass(frozen=True)
class Protected:
    """A location no workspace's SQL may reach except its owner (`what` names it in errors)."""

    path: str
    what: str
    hint: str


@dataclass(frozen=True)
class SandboxPolicy:
    """What one connection may reach; `pins` are the (metadata location, snapshot) pairs whose files are allowed.

    `products` names the `products.<name>` keys among them (dropped when a product is revoked).
    """

    directories: tuple[str, ...]
    paths: tuple[str, ...] = ()
    pins: frozenset[tuple[str, int | None]] = frozenset()
    products: frozenset[str] = frozenset()
    protected: tuple[Protected, ...] = ()
    storage_root: str = ""
    exports: str = ""

    def allows_pin(self, entry: TableEntry) -> bool:
        return (entry.metadata_location, entry.snapshot_id) in self.pins

    def in_storage_root(self, entry: TableEntry) -> bool:
        return _inside(_canonical(entry.metadata_location), self.storage_root.rstrip("/"))

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        """Restrict `con` to this policy and lock its configuration (run after the extensions load)."""
        con.execute(f"SET allowed_directories = {_sql_list(self.directories)}")
        con.execute(f"SET allowed_paths = {_sql_list(self.paths)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def refusal(self, exc: Exception, statement: str) -> SandboxError:
        """DuckDB's PermissionException as one line naming what was refused and the setting that allows it."""
        found = _REFUSED_RE.search(str(exc))
        path = found.group(1) if found else ""
        if not found:
            text = str(exc).split("\n")[0].removeprefix("Permission Error: ")
            return SandboxError(f"refused by the SQL sandbox: {text}", statement=statement)
        canonical = _canonical(path)
        for place in sorted(self.protected, key=lambda p: len(p.path), reverse=True):  # the most specific first
            if _inside(canonical, place.path):
                how = "it is" if canonical == place.path else "it lies in"
                return SandboxError(f"cannot access '{path}': {how} {place.what}", statement=statement, hint=place.hint)
        if "://" in path:
            where = f"outside this workspace's storage root {self.storage_root}"
            return SandboxError(f"cannot access '{path}': {where}", statement=statement)
        return SandboxError(
            f"cannot access '{path}': SQL of this workspace reads local files only in its storage root, "
            f"its folder, {self.exports} and its read_paths",
            statement=statement,
            hint=READ_PATHS_HINT,
        )


def _sql_list(items: Iterable[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


def _canonical(path: str) -> str:
    """One spelling per location: s3a:// -> s3://, file:// dropped, local paths absolute and real."""
    path = path.removeprefix("file://")
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            path = "s3://" + path[len(scheme) :]
    if "://" in path:
        return path.rstrip("/")
    return os.path.realpath(os.path.expanduser(path))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _overlaps(folder: str, places: Iterable[Protected]) -> Protected | None:
    """The protected place `folder` would expose: it holds it, or lies inside it."""
    return next((p for p in places if _inside(p.path, folder) or _inside(folder, p.path)), None)


# -- what is protected ------------------------------------------------------------------------


def protected_places(settings: Settings, workspace: Workspace, warehouse: Warehouse, records: Iterable[WorkspaceRecord]) -> list[Protected]:
    """RAT_HOME's stores, the warehouse root, and every other registered workspace's storage root and folder."""
    product_hint = "read another workspace's data as a data product it grants you: products.<name> (see `rat products list`)"
    places = [
        Protected(_canonical(str(settings.home / name)), f"RAT_HOME's {name}", "SQL never reads Ratatouille's own stores")
        for name in STORES
    ]
    places.append(Protected(_canonical(warehouse.location()), "the warehouse root (every workspace's tables)", product_hint))
    own_root = _canonical(warehouse.location(workspace.prefix))
    for record in records:
        if record.name == workspace.name:
            continue
        root = _canonical(warehouse.location(record.prefix))
        if root != own_root:
            places.append(Protected(root, f"workspace '{record.name}''s storage root", product_hint))
        folder = _canonical(record.path)
        if folder != _canonical(str(workspace.root)):
            places.append(Protected(folder, f"workspace '{record.name}''s folder", "each workspace's SQL reads its own folder only"))
        spill = _canonical(str(settings.workspace_spill_dir(record.name)))
        places.append(Protected(spill, f"workspace '{record.name}''s spill folder", "spill files are private"))
    return places


# -- the policy -------------------------------------------------------------------------------


def exports_dir(workspace: Workspace) -> Path:
    """Where `COPY … TO` may write: `<workspace>/exports/`."""
    return workspace.root / "exports"


def read_paths(settings: Settings, workspace: Workspace) -> list[tuple[str, str]]:
    """(folder, where it was set) for workspace.yaml `read_paths:` (relative to the workspace) and RAT_READ_PATHS."""
    out = []
    for raw in workspace.config.read_paths:
        path = Path(raw).expanduser()
        out.append((str(path if path.is_absolute() else workspace.root / path), f"{workspace.root / 'workspace.yaml'}: read_paths"))
    out += [(str(Path(raw).expanduser().resolve()), "RAT_READ_PATHS") for raw in settings.read_paths]
    return out


def build_policy(
    settings: Settings,
    workspace: Workspace,
    warehouse: Warehouse,
    temp_dir: Path,
    pins: dict[str, list[TableEntry]] | None = None,
    records: Iterable[WorkspaceRecord] = (),
) -> SandboxPolicy:
    """The sandbox of `workspace`: its own folders, its read_paths, and the files of `pins`.

    `pins` maps a table key (`products.<name>`, or a foreign `layer.table` of a ref it reads) to entries;
    `records` are the registered workspaces (access/registry.py), whose places are protected.
    """
    places = protected_places(settings, workspace, warehouse, records)
    storage_root = _canonical(warehouse.location(workspace.prefix))
    holding = next((p for p in places if _inside(p.path, storage_root) and p.path != storage_root), None)
    if holding is not None:
        raise ConfigError(
            f"workspace '{workspace.name}''s storage root {storage_root} holds {holding.what}",
            hint="give each workspace a storage prefix that does not contain another's (isolation.s3_prefix)",
        )
    directories = [storage_root]
    fixed = [
        (str(exports_dir(workspace)), "the exports folder"),
        (str(settings.workspace_spill_dir(workspace.name)), "the spill folder"),
        (str(temp_dir), "resources temp_directory"),
    ]
    for folder, what in [*fixed, *read_paths(settings, workspace)]:
        canonical = _canonical(folder)
        clash = _overlaps(canonical, places)
        if clash is not None:
            raise ConfigError(f"{what} {folder} would let SQL reach {clash.what}", hint="pick a folder that holds no Ratatouille store or other workspace")
        directories.append(canonical)
    directories += _workspace_folders(_canonical(str(workspace.root)), places)
    files: set[str] = set()
    keys: set[tuple[str, int | None]] = set()
    for entries in (pins or {}).values():
        for entry in entries:
            keys.add((entry.metadata_location, entry.snapshot_id))
            files.update(pin_files(warehouse, entry))
    return SandboxPolicy(
        directories=tuple(dict.fromkeys(d.rstrip("/") + "/" for d in directories)),
        paths=tuple(sorted(files)),
        pins=frozenset(keys),
        products=frozenset(k.split(".", 1)[1] for k in pins or {} if k.startswith("products.")),
        protected=tuple(places),
        storage_root=storage_root + "/",
        exports=str(exports_dir(workspace)) + "/",
    )


def _workspace_folders(root: str, places: list[Protected]) -> list[str]:
    """The workspace folder, or — when it holds a protected place (RAT_HOME inside it) — its other children."""
    if _overlaps(root, places) is None:
        return [root]
    if any(_inside(root, p.path) for p in places):
        return []
    out = []
    for child in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        out += _workspace_folders(_canonical(str(child)), places) if child.is_dir() else []
    return out


# -- the files of a product pin ---------------------------------------------------------------

_PIN_CACHE: dict[tuple[str, int | None], tuple[str, ...]] = {}
_PIN_LOCK = threading.Lock()


def pin_files(warehouse: Warehouse, entry: TableEntry) -> tuple[str, ...]:
    """Every file `iceberg_scan(<pin metadata>)` opens, listed with pyiceberg (pins never change: cached)."""
    key = (entry.metadata_location, entry.snapshot_id)
    with _PIN_LOCK:
        cached = _PIN_CACHE.get(key)
    if cached is not None:
        return cached
    from ratatouille_nb.catalog.tables import read_metadata

    io = warehouse.file_io()
    files = [entry.metadata_location]
    try:
        meta = read_metadata(io, entry.metadata_location)
        for snapshot_id in {meta.current_snapshot_id, entry.snapshot_id} - {None}:
            snapshot = meta.snapshot_by_id(snapshot_id)  # type: ignore[arg-type]
            if snapshot is None:
                continue
            files.append(snapshot.manifest_list)
            for manifest in snapshot.manifests(io):
                files.append(manifest.manifest_path)
                files += [e.data_file.file_path for e in manifest.fetch_manifest_entry(io, discard_deleted=True)]
    except Exception:  # noqa: BLE001 - a damaged pin: allow what was listed; reading it reports the damage (errormap.py)
        return tuple(sorted({_canonical(f) for f in files}))  # not cached: a restored file is listed next time
    out = tuple(sorted({_canonical(f) for f in files}))
    with _PIN_LOCK:
        _PIN_CACHE[key] = out
    return out


# -- noticing grants and revocations ----------------------------------------------------------


class RegistryWatch:
    """Tells whether RAT_HOME's product or access registry changed since the last look (SQLite's `PRAGMA data_version`)."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths
        self._cons: dict[Path, sqlite3.Connection] = {}
        self._seen: Any = None
        self._lock = threading.Lock()

    def changed(self) -> bool:
        with self._lock:
            version = tuple(self._version(p) for p in self.paths)
            if version == self._seen:
                return False
            self._seen = version
            return True

    def _version(self, path: Path) -> Any:
        con = self._cons.get(path)
        if con is None:
            if not path.is_file():
                return None
            con = self._cons[path] = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
        try:
            return (con.execute("PRAGMA data_version").fetchone()[0], path.stat().st_ino)
        except (sqlite3.Error, OSError):
            return object()  # unreadable now: treat as changed, so the next look re-reads the registry

    def close(self) -> None:
        with self._lock:
            for con in self._cons.values():
                con.close()
            self._cons.clear()

"""Names a front end offers while someone types: tables on a ref, their columns, model names, branches.

Cheap enough to call on every keystroke: table names come from the ref's commit, columns from
Iceberg metadata (cached per metadata file, which never changes), model names from the
pipelines folder (cached until a file in it changes). Types are DuckDB's names
(catalog/typenames.py), the same as in results.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from ratatouille_nb.errors import RatError

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session

#: Layers a workspace has even before it has tables in them.
LAYERS = ("bronze", "silver", "gold")


def table_names(s: Session, ref: str | None = None) -> list[str]:
    """Every `layer.table` (tables and views) on `ref` (default: the session's branch), sorted."""
    return sorted(s.contents(ref))


def layer_names(s: Session, ref: str | None = None) -> list[str]:
    """The workspace's layers: the usual three and every schema a table on `ref` is in."""
    return sorted({*LAYERS, *(key.split(".", 1)[0] for key in s.contents(ref))})


def columns(s: Session, key: str, ref: str | None = None) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a table or view on `ref`; [] when it does not exist there."""
    entry = s.contents(ref).get(key)
    if entry is None:
        return []
    if entry.view_sql is not None:
        return [(name, typ) for name, typ, _ in s.table_stats(key, ref)["schema"]]
    return list(_metadata_columns(s, entry.metadata_location))


_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {}


def _metadata_columns(s: Session, location: str) -> tuple[tuple[str, str], ...]:
    """A metadata file never changes once written, so its columns are cached by its location."""
    found = _COLUMNS.get(location)
    if found is None:
        if len(_COLUMNS) > 2048:
            _COLUMNS.clear()
        from ratatouille_nb.catalog.tables import read_metadata
        from ratatouille_nb.catalog.typenames import duck_type_of

        meta = read_metadata(s.warehouse.file_io(), location)
        found = _COLUMNS[location] = tuple((f.name, duck_type_of(f.field_type)) for f in meta.schema().fields)
    return found


def model_names(s: Session) -> dict[str, str]:
    """Pipeline name -> the table it builds, for `ref('…')`; {} when the pipelines don't load."""
    root = s.workspace.root
    return dict(_models(root, _stamp(root / "pipelines")))


def _stamp(folder: Path) -> float:
    """The newest modification time under `folder` (0 when it is missing): the cache key of the models."""
    try:
        return max((p.stat().st_mtime for p in folder.rglob("*")), default=folder.stat().st_mtime)
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=8)
def _models(root: Path, stamp: float) -> tuple[tuple[str, str], ...]:
    from ratatouille_nb.pipeline.loader import load_project

    try:
        project = load_project(root)
    except RatError:
        return ()
    return tuple(sorted((name, m.target) for name, m in project.models.items()))


def branch_names(s: Session) -> list[str]:
    """Branches and tags this session may read, the current branch first."""
    names = [r.name for r in s.store.list_references()]
    return sorted(names, key=lambda n: (n != s.branch, n))

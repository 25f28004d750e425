"""Promote (export/promote.py) never writes outside the pipelines folder, whatever a cell says.

`%%rat sql --save gold.../../workspace` once overwrote workspace.yaml through the REST endpoint; the
check lives in the core, so the CLI, the magics and REST all get it. A refused promotion writes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from ratatouille_nb.export import plan_promotion, promote
from ratatouille_nb.export.promote import PromoteError
from ratatouille_nb.workspace import Workspace


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def _files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("cell", "match"),
    [
        ("%%rat sql --save gold.../../workspace\nSELECT 1 AS x", "invalid table name"),
        ("%%rat sql --save gold/../../workspace.x\nSELECT 1 AS x", "invalid table name"),
        ("%%rat sql --save ../gold.x\nSELECT 1 AS x", "invalid table name"),
        ("%%rat sql --save gold.x/../../../evil\nSELECT 1 AS x", "invalid table name"),
        ("%%rat sql --save platinum.x\nSELECT 1 AS x", "'platinum' is not a layer"),
        ("%%rat sql\nCREATE TABLE \"gold\".\"..\" AS SELECT 1 AS x", "invalid table name"),
        ("# rat: ingest\n# @name: notes\n# @layer: ../..\nprint(1)", "is not a layer"),
        ("# rat: ingest\n# @name: evil_x\nprint(1)", "'evil' is not a layer"),
    ],
)
def test_bad_targets_are_refused_and_nothing_is_written(workspace: Workspace, tmp_path: Path, cell: str, match: str) -> None:
    nb = _notebook(workspace.root / "notebooks" / "n.ipynb", cell)
    before = _files(workspace.root)
    with pytest.raises(PromoteError, match=match):
        promote(nb, workspace, force=True)
    assert _files(workspace.root) == before


def test_a_symlinked_layer_folder_cannot_lead_outside(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    gold = workspace.pipelines_dir / "gold"
    shutil.rmtree(gold)
    gold.symlink_to(outside)
    nb = _notebook(workspace.root / "notebooks" / "n.ipynb", "%%rat sql --save gold.kpis\nSELECT 1 AS x")
    with pytest.raises(PromoteError, match="outside the pipeline folders"):
        promote(nb, workspace, force=True)
    assert list(outside.iterdir()) == []


def test_into_must_stay_in_the_workspace(workspace: Workspace, tmp_path: Path) -> None:
    nb = _notebook(workspace.root / "notebooks" / "n.ipynb", "%%rat sql --save gold.kpis\nSELECT 1 AS x")
    with pytest.raises(PromoteError, match="outside the workspace"):
        plan_promotion(nb, workspace, into=tmp_path)


def test_good_targets_still_promote(workspace: Workspace) -> None:
    nb = _notebook(
        workspace.root / "notebooks" / "n.ipynb",
        "%%rat sql --save gold.kpis\nSELECT 1 AS x",
        "# rat: ingest\n# @name: bronze_notes\nprint(1)",
    )
    result = promote(nb, workspace)
    written = sorted(str(f.path.relative_to(workspace.pipelines_dir)) for f in result.files)
    assert written == ["bronze/bronze_notes.py", "gold/kpis.sql", "gold/kpis.yaml"]

"""The getting-started notebook runs top to bottom, headless: on the demo `make lab` points at
(RAT_WORKSPACE set) and from a plain JupyterLab (RAT_WORKSPACE unset: it opens the demo itself,
building a small one the first time). It deletes the branches it creates, and its kernelspec is
ipykernel's own, so opening it does not mark it modified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "getting-started.ipynb"


def execute(cwd: Path) -> Any:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    return nb


def texts_of(nb: Any) -> str:
    return "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )


def branches(home: Path, workspace: Path) -> list[str]:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.settings import Settings

    with Session(Settings.from_env(home=str(home), workspace=str(workspace))) as s:
        return sorted(r.name for r in s.store.list_references())


def test_getting_started_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ratatouille_nb.demo import run_demo
    from ratatouille_nb.settings import Settings

    home = tmp_path / "home"
    run_demo(Settings.from_env(home=str(home)), tmp_path / "demo", rows=20_000, echo=lambda _line: None)
    monkeypatch.setenv("RAT_HOME", str(home))
    monkeypatch.setenv("RAT_WORKSPACE", str(tmp_path / "demo"))
    before = branches(home, tmp_path / "demo")
    texts = texts_of(execute(tmp_path))
    assert "merged" in texts and "published sales_kpis 1.0.0" in texts and "from RAT_WORKSPACE" in texts
    assert "BranchPicker" in texts and "ProductBrowser" in texts
    assert "deleted branch 'workspace/demo/dev/explore-" in texts
    assert branches(home, tmp_path / "demo") == before  # the tutorial leaves no branch behind


def test_getting_started_without_rat_workspace_opens_the_demo_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("RAT_HOME", str(home))
    monkeypatch.delenv("RAT_WORKSPACE", raising=False)
    (tmp_path / "notebooks").mkdir()
    texts = texts_of(execute(tmp_path / "notebooks"))  # a Lab started anywhere: the kernel's folder holds no workspace
    built = home / "workspaces" / "demo"
    assert f"building a small one in {built}" in texts and f"workspace 'demo' ({built})" in texts
    assert "published sales_kpis 1.0.0" in texts
    assert [b for b in branches(home, built) if "/dev/" in b] == []


def test_kernelspec_matches_ipykernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    meta = json.loads(NOTEBOOK.read_text())["metadata"]["kernelspec"]
    assert meta == {"display_name": spec.display_name, "language": spec.language, "name": "python3"}

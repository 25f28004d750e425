"""The getting-started notebook runs top to bottom, headless, on a fresh demo state."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "getting-started.ipynb"


def test_getting_started_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ratatouille_nb.demo import run_demo
    from ratatouille_nb.settings import Settings

    home = tmp_path / "home"
    run_demo(Settings.from_env(home=str(home)), tmp_path / "demo", rows=20_000, echo=lambda _line: None)
    monkeypatch.setenv("RAT_HOME", str(home))
    monkeypatch.setenv("RAT_WORKSPACE", str(tmp_path / "demo"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    texts = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "merged" in texts and "published sales_kpis 1.0.0" in texts
    assert "BranchPicker" in texts and "ProductBrowser" in texts

"""Notebook -> pipeline export: which cells become files, refs, conflicts, and the round trip."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from ratatouille_nb.engine.session import Session
from ratatouille_nb.export import plan_promotion, promote
from ratatouille_nb.export.promote import PromoteError
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

_NO_HISTORY = Config()
_NO_HISTORY.HistoryManager.enabled = False

CELLS = [
    ("code", "%load_ext ratatouille_nb", []),
    ("markdown", "# Orders exploration", []),
    ("code", "%%rat sql --save bronze.orders\nSELECT i AS order_id, i % 7 AS customer_id, (i * 13) % 100 AS amount FROM range(500) t(i)", []),
    ("code", "%%rat sql\nSELECT * FROM bronze.orders LIMIT 5", []),
    ("code", "%%rat sql\n-- @materialized: table\nCREATE OR REPLACE TABLE silver.orders AS\nSELECT order_id, customer_id, amount, 'bronze.orders' AS origin\nFROM bronze.orders WHERE amount > 10", []),
    ("code", "%%rat sql --save gold.customer_totals\nWITH t AS (SELECT customer_id, sum(amount) AS total FROM silver.orders GROUP BY 1)\nSELECT * FROM t", []),
    ("code", "%%rat sql --save gold.scratch\nSELECT 1 AS x", ["rat-skip"]),
    ("code", "x = 1", []),
    ("code", "# rat: ingest\n# @name: bronze_notes\nimport pandas as pd\nrat.append('bronze.notes', pd.DataFrame({'n': [1, 2]}))", []),
]


def make_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in CELLS:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def run_notebook_cells(path: Path, settings: Settings, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from ratatouille_nb.api import rat
    from ratatouille_nb.verbs import session as sessions

    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(workspace.root))
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=_NO_HISTORY)
    shell.user_ns["rat"] = rat
    try:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                with capture_output():
                    result = shell.run_cell(cell.source)
                assert result.success, (cell.source, result.error_in_exec)
    finally:
        sessions.reset()
        InteractiveShell.clear_instance()


def test_plan_picks_table_cells_and_rewrites_refs(session: Session, workspace: Workspace, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "orders.ipynb")
    plan = plan_promotion(nb, workspace, session=session)
    names = sorted(str(f.path.relative_to(workspace.root)) for f in plan.files)
    assert names == [
        "pipelines/bronze/bronze_notes.py",
        "pipelines/bronze/orders.sql",
        "pipelines/bronze/orders.yaml",
        "pipelines/gold/customer_totals.sql",
        "pipelines/gold/customer_totals.yaml",
        "pipelines/silver/orders.sql",
        "pipelines/silver/orders.yaml",
    ]
    by_name = {f.path.name: f.content for f in plan.files if f.path.suffix == ".sql"}
    silver = next(f.content for f in plan.files if f.path.parts[-2:] == ("silver", "orders.sql"))
    assert "FROM {{ ref('bronze.orders') }}" in silver and "'bronze.orders' AS origin" in silver
    assert "-- @materialized: table" in silver and "-- @name: silver_orders" in silver
    assert "FROM {{ ref('silver.orders') }}" in by_name["customer_totals.sql"]
    reasons = {s.index: s.reason for s in plan.skipped}
    assert "exploratory" in reasons[3] and "rat-skip" in reasons[6] and "exploratory Python" in reasons[7]
    assert not any(p.exists() for p in (f.path for f in plan.files))


def test_round_trip_build_equals_notebook(settings: Settings, workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ratatouille_nb.pipeline.build import build

    nb = make_notebook(tmp_path / "orders.ipynb")
    run_notebook_cells(nb, settings, workspace, monkeypatch)
    with Session(settings, workspace) as s:
        result = promote(nb, workspace, session=s)
        assert result.written and all(f.status == "new" for f in result.files)
        yaml_text = (workspace.root / "pipelines/gold/customer_totals.yaml").read_text()
        assert "name: total" in yaml_text and "type:" in yaml_text
        s.store.create_reference("fresh", "branch", "main")
        s.use_branch("fresh")
        built = build(s)
        assert built.published, built.reason
        for table in ("bronze.orders", "silver.orders", "gold.customer_totals", "bronze.notes"):
            left = s.sql(f"SELECT * FROM {table} ORDER BY ALL", ref="workspace/acme").relation.fetchall()
            right = s.sql(f"SELECT * FROM {table} ORDER BY ALL", ref="fresh").relation.fetchall()
            assert left == right, table


def test_existing_files_need_force_and_nothing_is_half_written(session: Session, workspace: Workspace, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "orders.ipynb")
    promote(nb, workspace, session=session)
    silver = workspace.root / "pipelines/silver/orders.sql"
    silver.write_text(silver.read_text() + "\n-- my edit\n")
    again = promote(nb, workspace, dry_run=True, session=session)
    assert [f.path for f in again.conflicts] == [silver]
    with pytest.raises(PromoteError, match="would overwrite 1 existing file"):
        promote(nb, workspace, session=session)
    assert silver.read_text().endswith("-- my edit\n")
    forced = promote(nb, workspace, force=True, session=session)
    assert any(f.status == "overwrite" for f in forced.files) and "-- my edit" not in silver.read_text()


def test_bad_paths_are_refused(session: Session, workspace: Workspace, tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "orders.ipynb")
    with pytest.raises(PromoteError, match="outside the workspace"):
        promote(nb, workspace, into=tmp_path / "elsewhere", session=session)
    with pytest.raises(PromoteError, match="outside the workspace"):
        promote(nb, workspace, into=workspace.root / ".." / "escape", session=session)
    with pytest.raises(PromoteError, match="not a notebook"):
        promote(tmp_path / "missing.ipynb", workspace, session=session)
    (tmp_path / "broken.ipynb").write_text("{not json")
    with pytest.raises(PromoteError, match="cannot read notebook"):
        promote(tmp_path / "broken.ipynb", workspace, session=session)


def test_cli_promote_dry_run(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    from ratatouille_nb.cli.main import cli

    nb = make_notebook(tmp_path / "orders.ipynb")
    out = CliRunner().invoke(cli, ["--home", str(settings.home), "-w", str(workspace.root), "promote", str(nb), "--dry-run"], obj={})
    assert out.exit_code == 0, out.output
    assert "would write  pipelines/silver/orders.sql" in out.output and "| -- @name: silver_orders" in out.output
    assert not (workspace.root / "pipelines/silver/orders.sql").exists()

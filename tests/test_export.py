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
    # cells are numbered by their 1-based position among all cells (the markdown cell is number 2)
    assert "exploratory" in reasons[4] and "rat-skip" in reasons[7] and "exploratory Python" in reasons[8]
    assert not any(s.failed for s in plan.skipped)
    assert "cell 5" in silver.splitlines()[0] and {f.cell for f in plan.files if f.path.parts[-2:] == ("silver", "orders.sql")} == {5}
    models = {(m.cell, m.name, m.target, m.kind, m.materialized) for m in plan.models}
    assert models == {
        (3, "bronze_orders", "bronze.orders", "sql", "table"),
        (5, "silver_orders", "silver.orders", "sql", "table"),
        (6, "gold_customer_totals", "gold.customer_totals", "sql", "table"),
        (9, "bronze_notes", "bronze", "python", "python"),
    }
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


BAD_CELLS: list[tuple[str, str, list[str]]] = [
    ("code", "%load_ext ratatouille_nb", []),
    ("markdown", "Exploration", []),
    ("code", "%%rat sql --save bronze.good\nSELECT 1 AS x", []),
    ("code", "%%rat sql --save silver.bad\nSELEC x FROM bronze.good", []),
    ("code", "%%rat sql\nCREATE TABLE gold.worse AS SELECT FROM WHERE", []),
    ("code", "%%rat sql --save nolayer.t\nSELECT 1", []),
    ("code", "%%rat sql --save gold.fine\nSELECT x FROM {{ ref('bronze.good') }}", []),
]


def make_bad_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, source, _tags in BAD_CELLS:
        nb.cells.append(nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source))
    nbformat.write(nb, path)
    return path


def test_failing_cells_are_named_and_skippable(session: Session, workspace: Workspace, tmp_path: Path) -> None:
    nb = make_bad_notebook(tmp_path / "bad.ipynb")
    plan = plan_promotion(nb, workspace, session=session)
    # the plan goes on past the bad cells: the good ones are planned, the bad ones listed with their reason
    assert sorted(m.target for m in plan.models) == ["bronze.good", "gold.fine"]
    failed = {c.index: c.reason for c in plan.failed}
    assert set(failed) == {4, 5, 6}, failed
    assert "SELEC" in failed[4] and "syntax error" in failed[4].lower()
    assert "nolayer" in failed[6] and "not a layer" in failed[6]
    assert "\n" not in failed[4]  # one line
    with pytest.raises(PromoteError, match=r"cell 4 fails: .*SELEC.*and 2 more") as info:
        promote(nb, workspace, session=session)
    assert "--skip 4 5 6" in (info.value.hint or "")
    assert not (workspace.root / "pipelines/bronze/good.sql").exists()  # refused: nothing written
    done = promote(nb, workspace, session=session, skip=[4, 5, 6])
    assert done.written and not done.failed
    reasons = {c.index: c.reason for c in done.skipped if c.index in (4, 5, 6)}
    assert all(r.startswith("skipped on request (it fails: ") for r in reasons.values()), reasons
    assert "SELEC" in reasons[4]
    fine = (workspace.root / "pipelines/gold/fine.sql").read_text()
    assert fine.startswith("-- Promoted from bad.ipynb, cell 7\n")


def test_cli_promote_names_failing_cells_and_skips_them(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    from ratatouille_nb.cli.main import cli

    nb = make_bad_notebook(tmp_path / "bad.ipynb")
    base = ["--home", str(settings.home), "-w", str(workspace.root), "promote", str(nb)]
    dry = CliRunner().invoke(cli, [*base, "--dry-run"], obj={})
    assert dry.exit_code == 0 and "FAILS  cell 4:" in dry.output, dry.output
    refused = CliRunner().invoke(cli, base, obj={})
    assert refused.exit_code != 0 and "cell 4 fails" in refused.output
    done = CliRunner().invoke(cli, [*base, "--skip", "4", "--skip", "5", "--skip", "6"], obj={})
    assert done.exit_code == 0, done.output
    assert (workspace.root / "pipelines/gold/fine.sql").is_file()

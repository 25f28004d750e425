"""The `[dagster]` extra: the demo workspace's pipelines as Dagster assets, materialized in-process.

Skipped when Dagster is not installed (`make test` installs the extra, so CI runs these).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import dagster as dg
else:
    dg = pytest.importorskip("dagster")

from ratatouille_nb.demo import land_csv_batches, scaffold
from ratatouille_nb.engine.session import Session
from ratatouille_nb.orchestration.dagster_defs import (
    TESTS_CHECK,
    build_definitions,
    schedule_groups,
)
from ratatouille_nb.pipeline.dag import build_dag
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.loader import load_project
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace
from ratatouille_nb.workspace.manager import register_workspace

ROWS = 2000
BRONZE = dg.AssetKey(["bronze", "raw_sales"])
SILVER = dg.AssetKey(["silver", "sales"])
GOLD = dg.AssetKey(["gold", "daily_sales_kpis"])


@pytest.fixture
def demo(settings: Settings, tmp_path: Path) -> Workspace:
    """The demo template in a temporary RAT_HOME with ROWS sales rows in its landing zone."""
    path = tmp_path / "demo"
    scaffold(path)
    workspace = Workspace.load(path)
    register_workspace(workspace, settings)
    with Session(settings, workspace) as session:
        land_csv_batches(session.con, session.warehouse.location(workspace.prefix), "batch", ROWS)
    return workspace


def _materialize(defs: dg.Definitions, selection: list[dg.AssetKey] | None = None, **run_config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        defs.assets,
        selection=selection,
        resources=defs.resources,
        run_config={"ops": {"rat_demo": {"config": run_config}}} if run_config else None,
        raise_on_error=False,
    )


def _materializations(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, dict[str, object]]:
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key] = {k: v.value for k, v in mat.metadata.items()}
    return out


def _step_failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "expected a failed step"
    return failures[0].event_specific_data.error.message


def _count(session: Session, sql: str) -> int:
    return session.sql(sql).relation.fetchone()[0]


def test_assets_checks_and_schedule_mirror_the_demo_dag(settings: Settings, demo: Workspace) -> None:
    defs = build_definitions(settings, demo)
    (assets,) = defs.assets
    assert set(assets.keys) == {BRONZE, SILVER, GOLD}
    assert assets.asset_deps[BRONZE] == set()
    assert assets.asset_deps[SILVER] == {BRONZE}
    assert assets.asset_deps[GOLD] == {SILVER}
    assert assets.can_subset
    specs = assets.specs_by_key
    assert {k: s.group_name for k, s in specs.items()} == {BRONZE: "bronze", SILVER: "silver", GOLD: "gold"}
    assert specs[SILVER].metadata["rat/pipeline"] == "silver_sales"
    assert specs[SILVER].metadata["rat/file"] == "pipelines/silver/sales.sql:2"
    assert specs[SILVER].metadata["rat/unique_key"] == "txn_id"
    assert [c.name for c in specs[SILVER].metadata["dagster/column_schema"].columns][:2] == ["txn_id", "store_id"]
    assert specs[BRONZE].kinds == {"python", "duckdb", "iceberg"}
    assert specs[BRONZE].metadata["rat/schedule"] == "0 * * * *"
    # the data tests of silver and gold are asset checks; the Python ingestion has none
    assert {(k.asset_key, k.name) for k in assets.check_keys} == {(SILVER, TESTS_CHECK), (GOLD, TESTS_CHECK)}
    # `@pipeline(schedule="0 * * * *")` on the ingestion: one hourly schedule over it and its
    # unscheduled downstream models
    assert {s.name: s.cron_schedule for s in defs.schedules} == {"rat_demo_hourly": "0 * * * *"}
    job = defs.resolve_job_def("rat_demo_hourly_job")
    assert set(job.asset_layer.executable_asset_keys) == {BRONZE, SILVER, GOLD}
    assert defs.resources["rat"].workspace == str(demo.root)
    assert defs.resources["rat"].home == str(settings.home)


def test_materialize_demo_in_process(settings: Settings, demo: Workspace) -> None:
    defs = build_definitions(settings, demo)
    with Session(settings, demo) as session:
        commits_before = len(session.store.log(session.branch))

    result = _materialize(defs)
    assert result.success
    meta = _materializations(result)
    assert set(meta) == {BRONZE, SILVER, GOLD}
    checks = {(e.asset_key, e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {(SILVER, TESTS_CHECK): True, (GOLD, TESTS_CHECK): True}

    with Session(settings, demo) as session:
        bronze = _count(session, "SELECT count(*) FROM bronze.raw_sales")
        silver = _count(session, "SELECT count(*) FROM silver.sales")
        valid = _count(session, "SELECT count(DISTINCT txn_id) FROM bronze.raw_sales WHERE quantity > 0 AND unit_price > 0")
        gold = _count(session, "SELECT count(*) FROM gold.daily_sales_kpis")
        groups = _count(session, "SELECT count(*) FROM (SELECT DISTINCT _date, store_id FROM silver.sales)")
        revenue_matches = _count(
            session,
            "SELECT (SELECT sum(revenue) FROM gold.daily_sales_kpis) = (SELECT sum(total_amount) FROM silver.sales)",
        )
        head = session.store.get_reference(session.branch).hash
        commits_after = len(session.store.log(session.branch))
    assert bronze == ROWS
    assert silver == valid and 0.9 * ROWS < silver < ROWS
    assert gold == groups > 0
    assert revenue_matches
    assert (meta[BRONZE]["rows_written"], meta[SILVER]["rows_written"], meta[GOLD]["rows_written"]) == (bronze, silver, gold)
    assert meta[SILVER]["operation"] == "create"
    # one Dagster run = one `rat build` = one commit on the workspace branch
    assert commits_after == commits_before + 1
    assert {m["rat/commit"] for m in meta.values()} == {head}
    assert {m["rat/branch"] for m in meta.values()} == {"workspace/demo"}
    assert len({m["rat/run_id"] for m in meta.values()}) == 1

    # a second batch (10 % updates) through Dagster: silver merges incrementally
    with Session(settings, demo) as session:
        land_csv_batches(
            session.con, session.warehouse.location(demo.prefix), "update", 500,
            seed=99, id_offset=ROWS, update_fraction=0.10, update_pool=ROWS,
        )
    second = _materialize(defs)
    assert second.success
    meta2 = _materializations(second)
    assert meta2[BRONZE]["rows_written"] == 500
    assert meta2[SILVER]["operation"] == "merge"
    assert meta2[SILVER]["rows_updated"] > 0

    # a subset: only gold, without the audit (`test: false`) -> no check evaluated, one commit
    with Session(settings, demo) as session:
        commits_before = len(session.store.log(session.branch))
    third = _materialize(defs, selection=[GOLD], test=False)
    assert third.success
    assert set(_materializations(third)) == {GOLD}
    assert third.get_asset_check_evaluations() == []
    with Session(settings, demo) as session:
        assert len(session.store.log(session.branch)) == commits_before + 1
        assert _count(session, "SELECT count(*) FROM gold.daily_sales_kpis") == _count(
            session, "SELECT count(*) FROM (SELECT DISTINCT _date, store_id FROM silver.sales)"
        )


def test_failing_data_test_fails_the_run_and_publishes_nothing(settings: Settings, demo: Workspace) -> None:
    yaml_path = demo.root / "pipelines" / "gold" / "daily_sales_kpis.yaml"
    yaml_path.write_text(yaml_path.read_text() + "  - name: never_passes\n    sql: SELECT 1\n    expect: 0\n")
    defs = build_definitions(settings, demo)
    with Session(settings, demo) as session:
        head = session.store.get_reference(session.branch).hash

    result = _materialize(defs)
    assert not result.success
    assert result.get_asset_materialization_events() == []
    checks = {e.asset_key: (e.passed, e.severity) for e in result.get_asset_check_evaluations()}
    assert checks[GOLD] == (False, dg.AssetCheckSeverity.ERROR)
    assert checks[SILVER][0] is True
    message = _step_failure(result)
    assert "1 error-level test(s) failed; nothing was merged into 'workspace/demo'" in message
    with Session(settings, demo) as session:
        assert session.store.get_reference(session.branch).hash == head
        assert "bronze.raw_sales" not in session.contents()


def test_model_error_surfaces_as_dagster_failure(settings: Settings, tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "broken", settings, name="broken")
    (workspace.root / "pipelines" / "bronze" / "numbers.sql").write_text("SELECT range AS n FROM range(10)\n")
    (workspace.root / "pipelines" / "silver" / "doubled.sql").write_text(
        "SELECT no_such_column * 2 AS n2 FROM {{ ref('bronze.numbers') }}\n"
    )
    defs = build_definitions(settings, workspace)
    (assets,) = defs.assets
    assert assets.asset_deps[dg.AssetKey(["silver", "doubled"])] == {dg.AssetKey(["bronze", "numbers"])}
    with Session(settings, workspace) as session:
        head = session.store.get_reference(session.branch).hash

    result = dg.materialize(defs.assets, resources=defs.resources, raise_on_error=False)
    assert not result.success
    message = _step_failure(result)
    assert "silver_doubled" in message and "no_such_column" in message
    assert "nothing was merged into 'workspace/broken'" in message
    with Session(settings, workspace) as session:
        assert session.store.get_reference(session.branch).hash == head


def test_schedules_come_from_python_and_yaml(settings: Settings, demo: Workspace) -> None:
    yaml_path = demo.root / "pipelines" / "silver" / "sales.yaml"
    yaml_path.write_text(yaml_path.read_text() + '\nschedule: "0 6 * * *"\n')
    dag = build_dag(load_project(demo.root))
    # each schedule covers its models and their downstream models without a schedule of their own
    assert schedule_groups(dag) == {
        "0 * * * *": ["bronze_raw_sales"],
        "0 6 * * *": ["silver_sales", "gold_daily_sales_kpis"],
    }
    defs = build_definitions(settings, demo)
    assert {s.name: s.cron_schedule for s in defs.schedules} == {
        "rat_demo_hourly": "0 * * * *",
        "rat_demo_0_6_x_x_x": "0 6 * * *",
    }
    assert set(defs.resolve_job_def("rat_demo_hourly_job").asset_layer.executable_asset_keys) >= {BRONZE}
    selected = dg.AssetSelection.assets(SILVER, GOLD)
    daily = defs.resolve_job_def("rat_demo_0_6_x_x_x_job")
    assert set(daily.asset_layer.executable_asset_keys) >= set(selected.resolve(defs.assets))


def test_invalid_cron_names_the_file(settings: Settings, demo: Workspace) -> None:
    yaml_path = demo.root / "pipelines" / "gold" / "daily_sales_kpis.yaml"
    yaml_path.write_text('schedule: "every hour"\n' + yaml_path.read_text())
    with pytest.raises(PipelineError) as info:
        build_definitions(settings, demo)
    message = str(info.value)
    assert f"{yaml_path}:1:" in message
    assert "schedule 'every hour' of pipeline 'gold_daily_sales_kpis' is not a valid cron expression" in message


def test_entry_module_reads_the_workspace_from_the_environment(
    settings: Settings, demo: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(demo.root))
    sys.modules.pop("ratatouille_nb.dagster", None)
    module = importlib.import_module("ratatouille_nb.dagster")
    try:
        assert isinstance(module.defs, dg.Definitions)
        assert set(module.defs.assets[0].keys) == {BRONZE, SILVER, GOLD}
        assert module.defs.resources["rat"].workspace == str(demo.root)
    finally:
        sys.modules.pop("ratatouille_nb.dagster", None)


@pytest.mark.slow
def test_dagster_cli_loads_the_entry_module(settings: Settings, demo: Workspace, tmp_path: Path) -> None:
    """What `dagster dev -m ratatouille_nb.dagster` does first: load the code location in its own process."""
    dagster_bin = Path(sys.executable).with_name("dagster")
    if not dagster_bin.exists():
        pytest.skip("the dagster CLI is not installed next to this Python")
    env = {**os.environ, "RAT_HOME": str(settings.home), "RAT_WORKSPACE": str(demo.root), "DAGSTER_HOME": str(tmp_path / "dg")}
    (tmp_path / "dg").mkdir()
    proc = subprocess.run(
        [str(dagster_bin), "definitions", "validate", "-m", "ratatouille_nb.dagster"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful for code location ratatouille_nb.dagster" in proc.stdout + proc.stderr

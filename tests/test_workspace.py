"""workspace.yaml validation, scaffolding and isolation."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from ratatouille_nb.errors import ConfigError, WorkspaceError
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, find_workspace, init_workspace, list_workspaces, load_workspace_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workspace.yaml"
    path.write_text(text)
    return path


def test_seed_example_is_valid(tmp_path: Path) -> None:
    cfg = load_workspace_config(
        write(
            tmp_path,
            """
name: acme
version: "1.0"
description: "ACME Corp data workspace"
isolation:
  nessie_branch: "workspace/acme"
  s3_prefix: "acme"
resources:
  profile: small
  overrides:
    max_memory_mb: 4096
    max_parallel_pipelines: 2
layers:
  bronze: {retention_days: 90, partition_by: [_ingested_date]}
  silver: {retention_days: 365, partition_by: [_date]}
  gold: {retention_days: null, partition_by: []}
products:
  - name: sales_kpis
    source: gold.daily_sales_kpis
    access: [{workspace: "*", level: read}]
    sla: {freshness_hours: 24}
subscriptions:
  - product: inventory/stock_levels
    alias: ext_inventory
""",
        )
    )
    assert cfg.branch == "workspace/acme"
    assert cfg.storage_prefix == "acme"
    assert cfg.partition_by("silver") == ["_date"]
    assert cfg.products[0].access[0].workspace == "*"
    assert cfg.subscriptions[0].version == "latest"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: acme\nresources:\n  profile: small\n  bogus: 1\n", r"workspace.yaml:4: resources.bogus: Extra inputs"),
        ("name: Bad Name\n", r"workspace.yaml:1: name: Value error, must start with a lowercase letter"),
        ("name: acme\nlayers:\n  silver:\n    retention_days: -3\n", r"workspace.yaml:4: layers.silver.retention_days"),
        ("name: acme\nisolation:\n  s3_prefix: ../escape\n", r"workspace.yaml:3: isolation.s3_prefix"),
        ("name: acme\nproducts:\n  - name: k\n    source: gold.k\n    access:\n      - workspace: a\n        level: admin\n", r"workspace.yaml:7: products.0.access.0.level"),
        ("name: [unclosed\n", r"workspace.yaml:\d+: malformed YAML"),
        ("- just\n- a list\n", r"workspace.yaml:1: workspace.yaml must be a mapping"),
        ("description: no name\n", r"workspace.yaml:1: name: Field required"),
    ],
)
def test_invalid_files_name_field_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_workspace_config(write(tmp_path, text))


def test_init_scaffolds_quickly(settings: Settings, tmp_path: Path) -> None:
    started = time.perf_counter()
    ws = init_workspace(tmp_path / "shop", settings)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    for sub in ("pipelines/bronze", "pipelines/silver", "pipelines/gold", "macros", "schemas", "notebooks"):
        assert (ws.root / sub).is_dir()
    assert ws.name == "shop" and ws.branch == "workspace/shop" and ws.prefix == "shop"
    with pytest.raises(WorkspaceError, match="already holds a workspace"):
        init_workspace(tmp_path / "shop", settings)


def test_init_rejects_bad_name(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="invalid workspace name"):
        init_workspace(tmp_path / "x", settings, name="../evil")
    assert not (tmp_path / "x" / "workspace.yaml").exists()


def test_find_workspace_by_name_path_and_upward(settings: Settings, tmp_path: Path) -> None:
    ws = init_workspace(settings.workspaces_dir / "ops", settings, name="ops")
    assert find_workspace(settings.with_(workspace="ops")).root == ws.root
    assert find_workspace(settings.with_(workspace=str(ws.root))).root == ws.root
    assert find_workspace(settings, cwd=ws.root / "pipelines" / "silver").root == ws.root
    with pytest.raises(WorkspaceError, match="not found"):
        find_workspace(settings.with_(workspace="nope"))
    with pytest.raises(WorkspaceError, match=re.escape("no workspace.yaml")):
        find_workspace(settings, cwd=tmp_path)


def test_workspaces_are_isolated(settings: Settings, tmp_path: Path) -> None:
    from ratatouille_nb.engine.session import Session

    a = init_workspace(tmp_path / "a", settings, name="a")
    b = init_workspace(tmp_path / "b", settings, name="b")
    assert {r.name for r in list_workspaces(settings)} == {"a", "b"}
    with Session(settings, a) as sa:
        sa.sql("CREATE TABLE silver.t AS SELECT 1 AS x")
        location = sa.table_stats("silver.t")["location"]
        assert "/a/silver/t" in location
    with Session(settings, b) as sb:
        assert sb.contents() == {}
        assert sb.branch == "workspace/b"


def test_shared_prefix_is_refused(settings: Settings, tmp_path: Path) -> None:
    from ratatouille_nb.workspace.manager import register_workspace

    init_workspace(tmp_path / "a", settings, name="a")
    clash = tmp_path / "c"
    clash.mkdir()
    (clash / "workspace.yaml").write_text("name: c\nisolation:\n  s3_prefix: a\n")
    with pytest.raises(WorkspaceError, match="the storage prefix 'a' is taken by workspace 'a'"):
        register_workspace(Workspace.load(clash), settings)

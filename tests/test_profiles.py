"""Resource profiles: shipped values, overrides, and the settings DuckDB really runs with."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import ProfileError
from ratatouille_nb.resources import PROFILE_NAMES, load_profile
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

from .conftest import scalar


def test_shipped_profiles_have_seed_values() -> None:
    tiny, small, large = load_profile("tiny"), load_profile("small"), load_profile("large")
    assert (tiny.max_memory_mb, tiny.threads, tiny.chunk_size_rows) == (1024, 1, 10000)
    assert (small.max_memory_mb, small.duckdb_memory_mb, small.threads) == (4096, 8192, 2)
    assert (large.max_memory_mb, large.threads, large.max_parallel_pipelines) == (32768, 8, 8)
    assert [load_profile(n).name for n in PROFILE_NAMES] == list(PROFILE_NAMES)


def test_duckdb_cap_is_derived_from_the_rss_budget() -> None:
    tiny = load_profile("tiny")
    # (1024 MB budget - 270 MB of imports) / 1.3 RSS overhead
    assert tiny.duckdb_limit_mb == 580
    assert load_profile("small", {"max_memory_mb": 500}).duckdb_limit_mb == 176


def test_overrides_merge_and_validate(tmp_path: Path) -> None:
    cfg = load_profile("small", {"max_memory_mb": 2048, "threads": 1})
    assert cfg.max_memory_mb == 2048 and cfg.threads == 1 and cfg.duckdb_memory_mb == 8192
    with pytest.raises(ProfileError, match="max_memory_mb"):
        load_profile("small", {"max_memory_mb": "lots"})
    with pytest.raises(ProfileError, match="unknown resource profile 'huge'"):
        load_profile("huge")
    custom = tmp_path / "mine.yaml"
    custom.write_text("resources:\n  max_memory_mb: 800\n  duckdb: {threads: 1}\n")
    assert load_profile(str(custom)).max_memory_mb == 800


def test_profile_applied_to_connection(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    with Session(settings.with_(profile="tiny"), workspace) as s:
        assert scalar(s, "SELECT current_setting('threads')") == 1
        limit = str(scalar(s, "SELECT current_setting('memory_limit')"))
        assert limit.endswith("MiB") and 500 <= float(limit.split()[0]) <= 600
        assert scalar(s, "SELECT current_setting('temp_directory')") == str(settings.workspace_spill_dir(workspace.name))


def test_workspace_profile_and_overrides_apply(settings: Settings, tmp_path: Path) -> None:
    from ratatouille_nb.workspace import init_workspace

    ws = init_workspace(tmp_path / "w", settings, name="w")
    text = (ws.root / "workspace.yaml").read_text().replace("overrides: {}", "overrides: {threads: 1, max_memory_mb: 1000}")
    (ws.root / "workspace.yaml").write_text(text)
    with Session(settings, Workspace.load(ws.root)) as s:
        assert s.resources.max_memory_mb == 1000
        assert scalar(s, "SELECT current_setting('threads')") == 1


def test_big_sort_spills_instead_of_failing(settings: Settings, workspace: Workspace) -> None:
    # The connection's settings are locked (engine/sandbox.py): the cap comes from the workspace's resources.
    text = (workspace.root / "workspace.yaml").read_text()
    text = text.replace("profile: small", "profile: tiny").replace("overrides: {}", "overrides: {memory_limit: 64MB}")
    (workspace.root / "workspace.yaml").write_text(text)
    with Session(settings, Workspace.load(workspace.root)) as s:
        assert s.resources.duckdb_limit_mb == 128  # the override, raised to the 128 MB floor (MIN_DUCKDB_MB)
        total = scalar(
            s,
            "SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(2000000) t(i) ORDER BY h)",
        )
        assert total == 2_000_000

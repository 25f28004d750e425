"""The branch menu's endpoints and `?path=` workspace resolution (server/branches.py, service.workspace_for).

Like tests/test_server.py, pytest-jupyter's fixtures are imported into this module only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyter_server")
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures for this module only

from ratatouille_nb.engine.session import Session
from ratatouille_nb.server import branches as server_branches
from ratatouille_nb.server.service import ApiError, resolve_server_path
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace
from tests.server_api import Api, api, jp_server_config  # after pytest-jupyter's: these override its fixtures

__all__ = ["api", "jp_server_config"]


@pytest.fixture
def env_workspace(settings: Settings, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """RAT_WORKSPACE set, a table on the workspace branch."""
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(workspace.root))
    with Session(settings, workspace) as s:
        s.sql("CREATE TABLE silver.sales AS SELECT i AS id, i * 2 AS amount FROM range(100) t(i)")
    return workspace


@pytest.fixture
def foldered(settings: Settings, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """RAT_WORKSPACE unset; a workspace `myws` made with `rat init` inside the server root."""
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.delenv("RAT_WORKSPACE", raising=False)
    ws = init_workspace(jp_root_dir / "myws", settings, name="myws")
    (ws.root / "notebooks").mkdir(exist_ok=True)
    (ws.root / "notebooks" / "explore.ipynb").write_text("{}")
    return ws


# -- ?path= resolution -----------------------------------------------------------------------


def test_path_finds_the_notebooks_workspace_without_rat_workspace(api: Api, foldered: Workspace) -> None:
    status, body = api("GET", "session", params={"path": "myws/notebooks/explore.ipynb"})
    assert status == 200, body
    assert body["workspace"] == "myws" and body["workspace_root"] == str(foldered.root)
    status, body = api("GET", "branches", params={"path": "myws/notebooks/explore.ipynb"})
    assert status == 200 and body["current"] == "workspace/myws"
    status, body = api("GET", "products", params={"path": "myws/notebooks/explore.ipynb"})
    assert status == 200 and body["workspace"] == "myws"


def test_a_new_notebook_not_saved_yet_still_finds_its_workspace(api: Api, foldered: Workspace) -> None:
    status, body = api("GET", "session", params={"path": "myws/notebooks/Untitled3.ipynb"})
    assert status == 200 and body["workspace"] == "myws"


def test_dbt_project_folder_is_a_workspace(api: Api, settings: Settings, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.delenv("RAT_WORKSPACE", raising=False)
    project = jp_root_dir / "shop"
    (project / "analyses").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nprofile: shop\n")
    status, body = api("GET", "session", params={"path": "shop/analyses/a.ipynb"})
    assert status == 200, body
    assert body["workspace_root"] == str(project.resolve())


def test_no_workspace_anywhere_is_one_clear_error(api: Api, settings: Settings, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.delenv("RAT_WORKSPACE", raising=False)
    monkeypatch.chdir(jp_root_dir)
    (jp_root_dir / "loose").mkdir()
    status, body = api("GET", "session", params={"path": "loose/x.ipynb"})
    assert status == 503
    assert "\n" not in body["message"] and "loose/x.ipynb" in body["message"] and "workspace.yaml" in body["message"]
    assert "rat init" in body["hint"]


def test_rat_workspace_still_wins_over_the_path(api: Api, env_workspace: Workspace, jp_root_dir: Path, settings: Settings) -> None:
    init_workspace(jp_root_dir / "other", settings, name="other")
    status, body = api("GET", "session", params={"path": "other/x.ipynb"})
    assert status == 200 and body["workspace"] == "acme"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.ipynb", "a/../../x.ipynb", "C:\\x.ipynb"])
def test_bad_paths_are_refused(api: Api, foldered: Workspace, bad: str) -> None:
    status, body = api("GET", "session", params={"path": bad})
    assert status in (400, 403), body


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ApiError):
        resolve_server_path(root, "a\x00b")  # Tornado already blanks control characters in query arguments
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(ApiError) as info:
        resolve_server_path(root, "out/x.ipynb")
    assert info.value.status == 403


def test_promote_follows_the_notebooks_workspace(api: Api, foldered: Workspace, jp_root_dir: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext ratatouille_nb"), nbformat.v4.new_code_cell("%%rat sql --save silver.t\nSELECT 1 AS x")]
    nbformat.write(nb, foldered.root / "notebooks" / "p.ipynb")
    status, body = api("POST", "promote", body={"path": "myws/notebooks/p.ipynb", "dry_run": True})
    assert status == 200, body
    assert body["workspace"] == "myws" and body["workspace_root"] == str(foldered.root)


# -- the branch menu ---------------------------------------------------------------------------


def test_menu_lists_own_branches_builds_grouped_tags(api: Api, env_workspace: Workspace, settings: Settings, jp_root_dir: Path) -> None:
    other = init_workspace(jp_root_dir / "other", settings, name="other")
    with Session(settings, other) as s:
        s.store.create_reference("workspace/other/play", "branch", "workspace/other")
    with Session(settings, env_workspace) as s:
        s.store.create_reference("dev", "branch", "workspace/acme")
        s.store.create_reference("workspace/acme/build/20260101-120000-abcdef", "branch", "workspace/acme")
        s.store.create_reference("v1", "tag", "workspace/acme")
    status, body = api("GET", "branch", "list")
    assert status == 200, body
    names = [b["name"] for b in body["branches"]]
    assert names[0] == "workspace/acme" and body["branches"][0]["current"]
    assert "dev" in names and "main" in names
    assert not any("other" in n for n in names), names
    assert [(g["parent"], len(g["branches"])) for g in body["builds"]] == [("workspace/acme", 1)]
    assert body["builds"][0]["branches"][0]["name"].endswith("/build/20260101-120000-abcdef")
    assert [t["name"] for t in body["tags"]] == ["v1"]
    # ?branch= is the notebook kernel's branch
    status, body = api("GET", "branch", "list", params={"branch": "dev"})
    assert status == 200 and body["current"] == "dev" and body["branches"][0]["name"] == "dev"


def test_create_switch_diff_merge_delete(api: Api, env_workspace: Workspace, settings: Settings) -> None:
    status, body = api("POST", "branch", "create", body={"name": "fix"})
    assert status == 200 and body["action"] == "created" and body["name"] == "fix"
    status, body = api("POST", "branch", "switch", body={"name": "fix"})
    assert status == 200 and body["action"] == "switch"
    with Session(settings.with_(branch="fix"), env_workspace) as s:
        s.sql("DELETE FROM silver.sales WHERE id < 7")
        s.sql("UPDATE silver.sales SET amount = -1 WHERE id = 50")
    status, diff = api("GET", "branch", "diff", params={"source": "fix"})
    assert status == 200, diff
    assert diff["into"] == "workspace/acme" and diff["fork_point"]
    [table] = diff["tables"]
    assert table["table"] == "silver.sales" and table["rows_exact"]
    assert table["net_rows"] == -7 and table["rows_deleted"] - table["rows_added"] == 7
    assert table["sample"]
    # the other direction: nothing happened on the workspace branch since the fork
    status, back = api("GET", "branch", "diff", params={"source": "workspace/acme", "into": "fix"})
    assert status == 200 and back["tables"] == []
    status, merged = api("POST", "branch", "merge", body={"source": "fix"})
    assert status == 200, merged
    assert merged["into"] == "workspace/acme" and merged["kind"] in ("fast-forward", "merge")
    with Session(settings, env_workspace) as s:
        assert s.sql("SELECT count(*) FROM silver.sales").relation.fetchone()[0] == 93
    # the notebook kernel is on fix: it cannot delete its own branch
    status, body = api("POST", "branch", "delete", body={"name": "fix"}, params={"branch": "fix"})
    assert status == 400 and "current branch" in body["message"]
    status, body = api("POST", "branch", "delete", body={"name": "fix"})
    assert status == 200 and body["action"] == "deleted"
    status, body = api("POST", "branch", "switch", body={"name": "fix"})
    assert status == 404


def test_delete_refuses_default_and_protected(api: Api, env_workspace: Workspace, settings: Settings) -> None:
    with Session(settings, env_workspace) as s:
        s.store.create_reference("keep", "branch", "workspace/acme")
        s.store.set_protected("keep", True)
    status, body = api("POST", "branch", "delete", body={"name": "keep"})
    assert status == 400 and "protected" in body["message"]
    status, body = api("POST", "branch", "delete", body={"name": "main"})
    assert status in (400, 403)


def test_merge_conflict_is_409_with_tables(api: Api, env_workspace: Workspace, settings: Settings) -> None:
    with Session(settings, env_workspace) as s:
        s.store.create_reference("a", "branch", "workspace/acme")
    with Session(settings.with_(branch="a"), env_workspace) as s:
        s.sql("DELETE FROM silver.sales WHERE id = 1")
    with Session(settings, env_workspace) as s:
        s.sql("DELETE FROM silver.sales WHERE id = 2")
    status, body = api("POST", "branch", "merge", body={"source": "a"})
    assert status == 409, body
    assert body["tables"] == ["silver.sales"]


def test_prune_builds(api: Api, env_workspace: Workspace, settings: Settings) -> None:
    with Session(settings, env_workspace) as s:
        s.store.create_reference("workspace/acme/build/20250101-120000-abcdef", "branch", "workspace/acme")
    status, body = api("POST", "branch", "prune", body={"dry_run": True})
    assert status == 200 and body == {"deleted": ["workspace/acme/build/20250101-120000-abcdef"], "dry_run": True}
    status, body = api("POST", "branch", "prune", body={})
    assert status == 200 and len(body["deleted"]) == 1
    status, body = api("GET", "branch", "list")
    assert body["builds"] == []


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [("create", {"name": "x", "extra": 1}), ("create", {"name": 3}), ("create", {}), ("switch", {"name": "a b"}),
     ("merge", {"source": "../x"}), ("delete", []), ("prune", {"dry_run": "yes"})],
)
def test_bad_bodies_are_400(api: Api, env_workspace: Workspace, endpoint: str, body: Any) -> None:
    status, answer = api("POST", "branch", endpoint, body=body)
    assert status == 400, answer


def test_workspaces_lists_registered_with_role_and_marks_current(api: Api, foldered: Workspace, settings: Settings, jp_root_dir: Path) -> None:
    init_workspace(jp_root_dir / "second", settings, name="second")
    status, body = api("GET", "workspaces", params={"path": "myws/notebooks/explore.ipynb"})
    assert status == 200, body
    assert {w["name"] for w in body["workspaces"]} >= {"myws", "second"}
    assert body["current"] == "myws"
    mine = next(w for w in body["workspaces"] if w["name"] == "myws")
    assert mine["role"] == "owner" and mine["current"] and mine["branch"] == "workspace/myws"


def test_models_dump_what_the_frontend_reads() -> None:
    menu = server_branches.BranchMenu(
        workspace="w", workspace_root="/w", workspace_branch="workspace/w", current="workspace/w", default="main",
        branches=[], builds=[], tags=[],
    ).model_dump()
    assert set(menu) == {"workspace", "workspace_root", "workspace_branch", "current", "default", "branches", "builds", "tags"}


def test_workspace_param_is_the_kernels_workspace(api: Api, foldered: Workspace, settings: Settings, tmp_path: Path) -> None:
    other = init_workspace(tmp_path / "elsewhere", settings, name="elsewhere")
    status, body = api("GET", "session", params={"path": "myws/notebooks/explore.ipynb", "workspace": str(other.root)})
    assert status == 200 and body["workspace"] == "elsewhere"
    status, body = api("GET", "session", params={"workspace": str(tmp_path)})
    assert status == 400 and "not a workspace folder" in body["message"]
    status, body = api("GET", "session", params={"workspace": "relative/dir"})
    assert status == 400


def test_empty_branch_param_means_the_environments(api: Api, env_workspace: Workspace) -> None:
    status, body = api("GET", "session", params={"branch": ""})
    assert status == 200 and body["branch"] == "workspace/acme"
    status, body = api("GET", "session", params={"branch": "no such;branch"})
    assert status == 400


def test_create_starts_from_the_notebooks_branch(api: Api, env_workspace: Workspace, settings: Settings) -> None:
    with Session(settings, env_workspace) as s:
        s.store.create_reference("base", "branch", "workspace/acme")
    with Session(settings.with_(branch="base"), env_workspace) as s:
        s.sql("CREATE TABLE silver.only_on_base AS SELECT 1 AS x")
    status, body = api("POST", "branch", "create", body={"name": "child"}, params={"branch": "base"})
    assert status == 200, body
    with Session(settings, env_workspace) as s:
        assert "silver.only_on_base" in s.store.contents("child")
        assert s.store.get_reference("child").hash == s.store.get_reference("base").hash

"""The Jupyter server extension: `/ratatouille/` endpoints behind Jupyter's auth and XSRF checks.

pytest-jupyter's fixtures are imported into this module only (not registered as a plugin), so
its autouse event-loop fixtures touch no other test file. Tests are plain functions that run
`jp_fetch` on that loop.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytest.importorskip("jupyter_server")
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures for this module only

from ratatouille_nb.engine.session import Session
from ratatouille_nb.server.service import ApiError, resolve_notebook
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace
from tests.server_api import REPO, SERVER_CONFIG, Api, api, jp_server_config  # after pytest-jupyter's: these override its fixtures

__all__ = ["api", "jp_server_config"]


@pytest.fixture
def lakehouse(settings: Settings, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace with a gold table published as product `sales_kpis` (readable by everyone)."""
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(workspace.root))
    with Session(settings, workspace) as s:
        s.sql(
            "CREATE TABLE gold.daily_sales_kpis AS SELECT DATE '2024-01-01' + CAST(i AS INTEGER) AS day, 'STORE' || (i % 3) AS store_id, "
            "i * 10.5 AS revenue FROM range(30) t(i)"
        )
        s.sql("CREATE TABLE silver.customers AS SELECT i AS customer_id, 'c' || i AS name FROM range(5) t(i)")
        s.products.publish("gold.daily_sales_kpis", "sales_kpis", "1.0.0", access=[("*", "read")], description="Daily sales KPIs by store")
        s.products.publish("silver.customers", "customers", "0.1.0", description="Customer master data")
    return workspace


@pytest.fixture
def raw_fetch(http_server_client: Any, jp_asyncio_loop: Any, jp_base_url: str) -> Callable[..., Any]:
    """An HTTP request with no credentials at all (the path is used as given, not escaped)."""

    def fetch(path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("raise_error", False)
        kwargs.setdefault("follow_redirects", False)
        return jp_asyncio_loop.run_until_complete(http_server_client.fetch(jp_base_url.rstrip("/") + path, **kwargs))

    return fetch


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


PROMOTABLE = [
    "%load_ext ratatouille_nb",
    "%%rat sql --save silver.store_revenue\nSELECT store_id, SUM(revenue) AS revenue FROM gold.daily_sales_kpis GROUP BY 1",
    "%%rat sql\nSELECT * FROM silver.store_revenue ORDER BY revenue DESC",
]


# -- read endpoints ------------------------------------------------------------------------------


def test_session_reports_workspace_and_branch(api: Api, lakehouse: Workspace, settings: Settings) -> None:
    status, body = api("GET", "session")
    assert status == 200, body
    assert body["workspace"] == "acme" and body["branch"] == "workspace/acme"
    assert body["workspace_root"] == str(lakehouse.root) and body["home"] == str(settings.home)
    assert body["catalog"] == "local" and body["profile"]


def test_branches_lists_refs_and_marks_the_current_one(api: Api, lakehouse: Workspace, settings: Settings) -> None:
    with Session(settings, lakehouse) as s:
        s.store.create_reference("dev", "branch", "workspace/acme")
        s.store.create_reference("v1", "tag", "workspace/acme")
    status, body = api("GET", "branches")
    assert status == 200, body
    refs = {r["name"]: r for r in body["references"]}
    assert {"main", "workspace/acme", "dev", "v1"} <= set(refs)
    assert refs["v1"]["kind"] == "tag" and refs["dev"]["kind"] == "branch"
    assert body["current"] == "workspace/acme" and refs["workspace/acme"]["current"] and not refs["dev"]["current"]


def test_products_list_with_versions_schema_owner_freshness(api: Api, lakehouse: Workspace) -> None:
    status, body = api("GET", "products")
    assert status == 200, body
    by_name = {p["name"]: p for p in body["products"]}
    assert set(by_name) == {"customers", "sales_kpis"}
    kpis = by_name["sales_kpis"]
    assert kpis["owner"] == "acme" and kpis["latest"] == "1.0.0" and [v["version"] for v in kpis["versions"]] == ["1.0.0"]
    assert kpis["description"] == "Daily sales KPIs by store" and kpis["source"] == "gold.daily_sales_kpis"
    assert [c["name"] for c in kpis["schema"]] == ["day", "store_id", "revenue"]
    assert 0 <= kpis["freshness_seconds"] < 600
    assert kpis["query"] == "%%rat sql\nSELECT *\nFROM products.sales_kpis\nLIMIT 100"


def test_products_search(api: Api, lakehouse: Workspace) -> None:
    assert [p["name"] for p in api("GET", "products", params={"q": "KPI"})[1]["products"]] == ["sales_kpis"]
    assert [p["name"] for p in api("GET", "products", params={"q": "master"})[1]["products"]] == ["customers"]
    assert api("GET", "products", params={"q": "nothing-like-this"})[1]["products"] == []
    status, body = api("GET", "products", params={"q": "x" * 101})
    assert status == 400 and "too long" in body["message"]


def test_inserted_query_runs(api: Api, lakehouse: Workspace, settings: Settings) -> None:
    query = api("GET", "products", "sales_kpis")[1]["query"]
    assert query.startswith("%%rat sql\n")
    with Session(settings, lakehouse) as s:
        assert s.sql(query.split("\n", 1)[1]).relation.fetchall()[:1] != []


def test_product_detail_unknown_and_invalid_names(api: Api, lakehouse: Workspace, raw_fetch: Any, jp_auth_header: dict) -> None:
    status, body = api("GET", "products", "customers")
    assert status == 200 and body["latest"] == "0.1.0" and body["access"] == "write"
    status, body = api("GET", "products", "no_such_product")
    assert status == 404 and "no product named 'no_such_product'" in body["message"]
    for bad in ("Bad-Name", "x" * 80, "a.b", "%2e%2e", "..%2F..%2Fetc", "%00"):
        response = raw_fetch(f"/ratatouille/products/{bad}", headers=jp_auth_header)
        assert response.code in (400, 404), (bad, response.code)
        if response.code == 400:
            assert "invalid product name" in json.loads(response.body)["message"]


def test_product_of_another_workspace_needs_a_grant(api: Api, lakehouse: Workspace, settings: Settings, tmp_path: Path) -> None:
    other = init_workspace(tmp_path / "finance", settings, name="finance")
    with Session(settings, other) as s:
        s.sql("CREATE TABLE gold.ledger AS SELECT 1 AS entry")
        s.products.publish("gold.ledger", "ledger", "1.0.0")
    assert "ledger" not in [p["name"] for p in api("GET", "products")[1]["products"]]
    status, body = api("GET", "products", "ledger")
    assert status == 403 and "may not read product 'ledger'" in body["message"] and "grant" in body["hint"]


def test_without_a_workspace_the_server_says_so(api: Api, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> None:
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(tmp_path / "nowhere"))
    status, body = api("GET", "session")
    assert status == 503 and "not found" in body["message"] and body["hint"]


# -- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/ratatouille/session"), ("GET", "/ratatouille/branches"), ("GET", "/ratatouille/products"),
     ("GET", "/ratatouille/products/sales_kpis"), ("POST", "/ratatouille/promote")],
)
def test_unauthenticated_requests_are_refused(
    method: str, path: str, raw_fetch: Any, lakehouse: Workspace, jp_root_dir: Path
) -> None:
    write_notebook(jp_root_dir / "explore.ipynb", PROMOTABLE)
    body = json.dumps({"path": "explore.ipynb"}) if method == "POST" else None
    response = raw_fetch(path, method=method, body=body)
    assert response.code == 403, response.code
    assert b"sales_kpis" not in (response.body or b"")
    assert not (lakehouse.root / "pipelines" / "silver" / "store_revenue.sql").exists()
    wrong = raw_fetch(path, method=method, body=body, headers={"Authorization": "token not-the-token"})
    assert wrong.code == 403


def test_cookie_sessions_need_the_xsrf_token(raw_fetch: Any, jp_serverapp: Any, lakehouse: Workspace, jp_root_dir: Path) -> None:
    """A browser (cookie) session may POST only with Jupyter's XSRF token, as JupyterLab sends it."""
    write_notebook(jp_root_dir / "explore.ipynb", PROMOTABLE)
    login_page = raw_fetch("/login")
    xsrf = re.search(r"_xsrf=([^;]+)", login_page.headers.get("Set-Cookie", "")).group(1)
    token = jp_serverapp.identity_provider.token
    login = raw_fetch(
        "/login", method="POST", body=f"password={token}&_xsrf={xsrf}", headers={"Cookie": f"_xsrf={xsrf}"}
    )
    assert login.code == 302, login.code
    cookies = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie"))
    assert "username-" in cookies
    body = json.dumps({"path": "explore.ipynb", "dry_run": True})
    # The login cookie alone reads…
    assert raw_fetch("/ratatouille/session", headers={"Cookie": cookies}).code == 200
    # …but cannot POST without the XSRF header…
    refused = raw_fetch("/ratatouille/promote", method="POST", body=body, headers={"Cookie": cookies})
    assert refused.code == 403
    # …and can with it.
    ok = raw_fetch(
        "/ratatouille/promote", method="POST", body=body,
        headers={"Cookie": f"{cookies}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
    )
    assert ok.code == 200, ok.body


# -- promote ---------------------------------------------------------------------------------------


def test_promote_writes_files_then_refuses_to_overwrite_without_force(api: Api, lakehouse: Workspace, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "work" / "explore.ipynb", PROMOTABLE)
    target = lakehouse.root / "pipelines" / "silver" / "store_revenue.sql"

    status, plan = api("POST", "promote", body={"path": "work/explore.ipynb", "dry_run": True})
    assert status == 200 and plan["dry_run"] and not plan["written"] and not target.exists()
    assert "{{ ref('gold.daily_sales_kpis') }}" in next(f["content"] for f in plan["files"] if f["path"].endswith(".sql"))

    status, done = api("POST", "promote", body={"path": "work/explore.ipynb"})
    assert status == 200, done
    assert done["written"] and sorted(f["path"] for f in done["files"]) == [
        "pipelines/silver/store_revenue.sql", "pipelines/silver/store_revenue.yaml"
    ]
    assert {f["status"] for f in done["files"]} == {"new"} and [s["cell"] for s in done["skipped"]] == [1, 3]
    assert target.is_file() and "-- @name: silver_store_revenue" in target.read_text()
    assert "columns: []" in target.with_suffix(".yaml").read_text()  # the notebook never ran: no columns to infer

    status, again = api("POST", "promote", body={"path": "work/explore.ipynb"})
    assert status == 200 and {f["status"] for f in again["files"]} == {"unchanged"}

    target.write_text(target.read_text() + "-- my edit\n")
    status, refused = api("POST", "promote", body={"path": "work/explore.ipynb"})
    assert status == 409 and refused["conflicts"] == ["pipelines/silver/store_revenue.sql"]
    assert "would overwrite 1 existing file" in refused["message"]
    assert target.read_text().endswith("-- my edit\n")

    status, forced = api("POST", "promote", body={"path": "work/explore.ipynb", "force": True})
    assert status == 200 and {f["path"]: f["status"] for f in forced["files"]}["pipelines/silver/store_revenue.sql"] == "overwrite"
    assert "-- my edit" not in target.read_text()


def test_promote_the_getting_started_notebook(api: Api, lakehouse: Workspace, jp_root_dir: Path) -> None:
    """The notebook the browser test promotes: Jinja in its cells must not break the export."""
    (jp_root_dir / "notebooks").mkdir()
    (jp_root_dir / "notebooks" / "getting-started.ipynb").write_bytes((REPO / "notebooks" / "getting-started.ipynb").read_bytes())
    status, plan = api("POST", "promote", body={"path": "notebooks/getting-started.ipynb", "dry_run": True})
    assert status == 200, plan
    assert plan["files"] == [] and len(plan["skipped"]) > 10


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"path": "../outside.ipynb"}, 400, "contains '..'"),
        ({"path": "work/../../outside.ipynb"}, 400, "contains '..'"),
        ({"path": "..\\outside.ipynb"}, 400, "contains '..'"),
        ({"path": "/etc/passwd"}, 400, "absolute path"),
        ({"path": "C:\\Users\\x.ipynb"}, 400, "absolute path"),
        ({"path": "\\\\server\\share\\x.ipynb"}, 400, "absolute path"),
        ({"path": "notes.txt"}, 400, "not a notebook"),
        ({"path": ""}, 400, "empty"),
        ({"path": "a\x00.ipynb"}, 400, "not a valid path"),
        ({"path": "x" * 2000 + ".ipynb"}, 400, "not a valid path"),
        ({"path": "missing.ipynb"}, 404, "no notebook at 'missing.ipynb'"),
        ({"path": "linked.ipynb"}, 403, "outside the server root"),
        ({"path": "linkdir/outside.ipynb"}, 403, "outside the server root"),
        ({"path": 3}, 400, "must be a string"),
        ({"path": "explore.ipynb", "force": "yes"}, 400, "must be a boolean"),
        ({"path": "explore.ipynb", "into": "/tmp"}, 400, "unknown field(s): into"),
        ({"force": True}, 400, "missing field 'path'"),
        (["explore.ipynb"], 400, "JSON object"),
    ],
)
def test_promote_refuses_bad_parameters(
    api: Api, lakehouse: Workspace, jp_root_dir: Path, tmp_path: Path, body: Any, status: int, message: str
) -> None:
    write_notebook(jp_root_dir / "explore.ipynb", PROMOTABLE)
    outside = write_notebook(tmp_path / "elsewhere" / "outside.ipynb", PROMOTABLE)
    (jp_root_dir / "linked.ipynb").symlink_to(outside)
    (jp_root_dir / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    got, answer = api("POST", "promote", body=body)
    assert got == status, answer
    assert message in answer["message"]
    assert not (lakehouse.root / "pipelines" / "silver" / "store_revenue.sql").exists()


def test_promote_refuses_malformed_bodies(api: Api, lakehouse: Workspace) -> None:
    assert api("POST", "promote", raw=b"{not json")[0] == 400
    assert api("POST", "promote", raw=b"")[0] == 400
    assert api("POST", "promote", raw=b"x" * (65 * 1024))[0] == 413


def test_resolve_notebook_inside_root(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "a" / "b.ipynb", [])
    assert resolve_notebook(tmp_path, "a/b.ipynb") == nb.resolve()
    assert resolve_notebook(tmp_path, "./a/b.ipynb") == nb.resolve()
    with pytest.raises(ApiError) as err:
        resolve_notebook(tmp_path / "a", "../a/b.ipynb")
    assert err.value.status == 400


def test_promote_round_trip_through_the_endpoint(
    api: Api, lakehouse: Workspace, settings: Settings, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook cells run, promoted over REST, rebuilt from the files on a fresh branch: same tables."""
    from ratatouille_nb.pipeline.build import build
    from tests.test_export import make_notebook, run_notebook_cells

    nb = make_notebook(jp_root_dir / "orders.ipynb")
    run_notebook_cells(nb, settings, lakehouse, monkeypatch)
    status, done = api("POST", "promote", body={"path": "orders.ipynb"})
    assert status == 200 and done["written"], done
    assert "pipelines/gold/customer_totals.sql" in [f["path"] for f in done["files"]]
    assert "name: total" in (lakehouse.root / "pipelines/gold/customer_totals.yaml").read_text()
    with Session(settings, lakehouse) as s:
        s.store.create_reference("fresh", "branch", "main")
        s.use_branch("fresh")
        built = build(s)
        assert built.published, built.reason
        for table in ("bronze.orders", "silver.orders", "gold.customer_totals"):
            left = s.sql(f"SELECT * FROM {table} ORDER BY ALL", ref="workspace/acme").relation.fetchall()
            right = s.sql(f"SELECT * FROM {table} ORDER BY ALL", ref="fresh").relation.fetchall()
            assert left == right, table


def test_shipped_jupyter_config_files() -> None:
    config = json.loads(SERVER_CONFIG.read_text())
    assert config["ServerApp"]["jpserver_extensions"] == {"ratatouille_nb.server": True}
    page = json.loads((REPO / "jupyter-config" / "labconfig" / "page_config.d" / "ratatouille_nb.json").read_text())
    assert page["disabledExtensions"]["jupysql-plugin"] is True
    assert os.path.isfile(REPO / "package.json")


# -- the principal: REST calls pass the same access checks -----------------------------------


def test_rest_calls_are_checked_for_the_principal(api: Api, lakehouse: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A principal who is not a member of the server's workspace gets 403 with one line, everywhere."""
    monkeypatch.setenv("RAT_USER", "mallory")
    for method, parts, body in (
        ("GET", ("session",), None),
        ("GET", ("branches",), None),
        ("GET", ("products",), None),
        ("GET", ("products", "sales_kpis"), None),
    ):
        status, payload = api(method, *parts, body=body)
        assert status == 403, (parts, payload)
        assert payload["message"] == "principal 'mallory' is not a member of workspace 'acme'"
        assert "rat workspace grant acme mallory viewer" in payload["hint"]
    monkeypatch.delenv("RAT_USER")
    assert api("GET", "session")[0] == 200


# -- GET /ratatouille/tables (server/tables.py): the sidebar's tables browser -------------------


def test_tables_lists_layers_tables_and_duckdb_types(api: Api, lakehouse: Workspace) -> None:
    status, body = api("GET", "tables")
    assert status == 200, body
    assert body["workspace"] == "acme" and len(body["commit"]) == 12
    assert [layer["name"] for layer in body["layers"]] == ["bronze", "silver", "gold"]
    gold = {t["table"]: t for t in body["layers"][2]["tables"]}
    kpis = gold["gold.daily_sales_kpis"]
    assert kpis["rows"] == 30 and kpis["kind"] == "table" and len(kpis["commit"]) == 12
    assert [(c["name"], c["type"]) for c in kpis["columns"]] == [("day", "DATE"), ("store_id", "VARCHAR"), ("revenue", "DECIMAL(22,1)")]
    assert kpis["freshness"]["basis"] == "age" and kpis["freshness"]["text"].endswith("old")
    assert kpis["query"].startswith("%%rat sql\nSELECT *\nFROM gold.daily_sales_kpis")
    assert kpis["lineage"] == "%rat lineage gold.daily_sales_kpis"


def test_tables_on_another_branch_and_bad_branches(api: Api, lakehouse: Workspace, settings: Settings) -> None:
    with Session(settings, lakehouse) as s:
        s.store.create_reference("dev", "branch", s.branch)
        s.sql("DROP TABLE silver.customers", ref="dev")
    status, body = api("GET", "tables", params={"branch": "dev"})
    assert status == 200 and body["ref"] == "dev"
    assert [t["table"] for layer in body["layers"] for t in layer["tables"]] == ["gold.daily_sales_kpis"]
    status, body = api("GET", "tables", params={"branch": "no-such-branch"})
    assert status == 404, body
    status, body = api("GET", "tables", params={"branch": "bad name;"})
    assert status == 400 and "invalid branch" in body["message"]


def test_tables_follow_the_notebook_without_rat_workspace(
    api: Api, settings: Settings, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.delenv("RAT_WORKSPACE", raising=False)
    ws = init_workspace(jp_root_dir / "myws", settings, name="myws")
    with Session(settings, ws) as s:
        s.sql("CREATE TABLE bronze.events AS SELECT 1 AS id")
    write_notebook(jp_root_dir / "myws" / "notebooks" / "explore.ipynb", [])
    status, body = api("GET", "tables", params={"path": "myws/notebooks/explore.ipynb"})
    assert status == 200, body
    assert body["workspace"] == "myws" and body["layers"][0]["tables"][0]["table"] == "bronze.events"
    status, body = api("GET", "tables", params={"path": "../outside.ipynb"})
    assert status == 400 and ".." in body["message"]


def test_promote_preview_lists_models_and_failing_cells_then_skips_them(api: Api, lakehouse: Workspace, jp_root_dir: Path) -> None:
    write_notebook(
        jp_root_dir / "work" / "bad.ipynb",
        [
            "%load_ext ratatouille_nb",
            "%%rat sql --save silver.good\nSELECT 1 AS x",
            "%%rat sql --save gold.bad\nSELEC x FROM silver.good",
        ],
    )
    status, preview = api("POST", "promote", body={"path": "work/bad.ipynb", "dry_run": True})
    assert status == 200, preview
    assert [(m["cell"], m["name"], m["materialized"]) for m in preview["models"]] == [(2, "silver_good", "table")]
    # the workspace is outside this server's root: Lab could not open the files, so no lab_path
    assert [f["lab_path"] for f in preview["files"]] == [None, None]
    bad = [s for s in preview["skipped"] if s["failed"]]
    assert [s["cell"] for s in bad] == [3] and "SELEC" in bad[0]["reason"]
    status, refused = api("POST", "promote", body={"path": "work/bad.ipynb"})
    assert status == 400 and refused["message"].startswith("cell 3 fails:") and refused["failed"] == [3]
    assert not (lakehouse.root / "pipelines" / "silver" / "good.sql").exists()
    status, done = api("POST", "promote", body={"path": "work/bad.ipynb", "skip": [3]})
    assert status == 200 and done["written"], done
    (three,) = [s for s in done["skipped"] if s["cell"] == 3]
    assert three["reason"].startswith("skipped on request (it fails: Parser Error") and not three["failed"]
    assert (lakehouse.root / "pipelines" / "silver" / "good.sql").read_text().startswith("-- Promoted from bad.ipynb, cell 2")
    for body in ({"path": "work/bad.ipynb", "skip": "3"}, {"path": "work/bad.ipynb", "skip": [0]}, {"path": "work/bad.ipynb", "skip": [True]}):
        assert api("POST", "promote", body=body)[0] == 400


def test_promoted_files_have_lab_paths_when_lab_can_reach_them(
    api: Api, lakehouse: Workspace, jp_root_dir: Path
) -> None:
    write_notebook(jp_root_dir / "work" / "good.ipynb", ["%%rat sql --save silver.good\nSELECT 1 AS x"])
    (jp_root_dir / "lakehouse").symlink_to(lakehouse.root, target_is_directory=True)
    status, done = api("POST", "promote", body={"path": "work/good.ipynb"})
    assert status == 200, done
    assert sorted(f["lab_path"] for f in done["files"]) == ["lakehouse/pipelines/silver/good.sql", "lakehouse/pipelines/silver/good.yaml"]

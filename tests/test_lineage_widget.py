"""The lineage graph widget through its Python API (no browser): synced graph, selection details
with columns and last run, up/downstream highlighting, column mode, the bundled frontend."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import RatError
from ratatouille_nb.lineage import UnknownNodeError, lineage, producing_run
from ratatouille_nb.lineage.errors import LineageError
from ratatouille_nb.notebook.widgets.lineage import CSS_PATH, ESM_PATH, LineageGraphWidget, graph_from_json
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

CHAIN = ("bronze.orders", "silver.orders", "gold.revenue")


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """Three chained SQL models (bronze -> silver -> gold), run once."""
    tmp = tmp_path_factory.mktemp("lineage-widget")
    settings = Settings.from_env(home=str(tmp / "rat-home"))
    ws: Workspace = init_workspace(tmp / "shop", settings, name="shop")
    _write(ws.root, "pipelines/bronze/orders.sql", """
        SELECT i AS order_id, 'c' || (i % 3) AS customer, (i % 7) + 1 AS quantity, 2.5 AS unit_price
        FROM range(30) t(i)
    """)
    _write(ws.root, "pipelines/silver/orders.sql", """
        SELECT order_id, upper(customer) AS customer, quantity * unit_price AS amount
        FROM {{ ref('bronze_orders') }}
        WHERE quantity > 0
    """)
    _write(ws.root, "pipelines/gold/revenue.sql", """
        SELECT customer, sum(amount) AS revenue, count(*) AS orders
        FROM {{ ref('silver_orders') }}
        GROUP BY customer
    """)
    session = Session(settings, ws)
    record = Runner(session).run()
    assert record.status == "success", record.error
    yield session
    session.close()


def test_for_session_syncs_the_graph_json(chain: Session) -> None:
    w = LineageGraphWidget.for_session(chain)
    data = w.graph
    assert data == lineage(chain).to_json()
    json.dumps(data)  # plain data: it crosses the comm as JSON
    assert [n["id"] for n in data["nodes"]] == sorted(CHAIN)
    assert {(e["source"], e["target"]) for e in data["edges"]} == {("bronze.orders", "silver.orders"), ("silver.orders", "gold.revenue")}
    by_id = {n["id"]: n for n in data["nodes"]}
    assert by_id["gold.revenue"]["kind"] == "model" and by_id["gold.revenue"]["layer"] == "gold"
    assert by_id["gold.revenue"]["model"] == "gold_revenue" and by_id["gold.revenue"]["exists"]
    assert [c["name"] for c in by_id["silver.orders"]["columns"]] == ["order_id", "customer", "amount"]
    assert data["meta"]["workspace"] == "shop" and data["column_edges"] == []
    assert w.mode == "table" and w.highlight == "both" and w.selected is None and w.details == {}
    assert w.highlighted() == set()
    # what is synced to the browser: the trait metadata and the state ipywidgets sends
    state = w.get_state()
    for name in ("graph", "selected", "selected_column", "mode", "highlight", "details", "height", "_esm", "_css"):
        assert name in state, name
    assert w._repr_mimebundle_()[0]["text/plain"] == w.lineage_graph.to_text()  # terminals get the text tree


def test_select_fills_details_with_columns_schema_and_last_run(chain: Session) -> None:
    w = LineageGraphWidget.for_session(chain)
    details = w.select("silver.orders")
    assert w.selected == "silver.orders" and details == w.details
    assert details["id"] == "silver.orders" and details["schema"] == "silver" and details["kind"] == "model"
    assert details["model"] == "silver_orders" and details["language"] == "sql" and details["materialized"] == "table"
    assert details["path"] == "pipelines/silver/orders.sql"
    cols = {c["name"]: c["type"] for c in details["columns"]}
    assert list(cols) == ["order_id", "customer", "amount"] and cols["customer"] == "VARCHAR"  # DuckDB type names, as in results
    assert details["upstream"] == ["bronze.orders"] and details["downstream"] == ["gold.revenue"]
    run = details["last_run"]
    expected = producing_run(chain, "silver.orders")
    assert expected is not None and run["run_id"] == expected.run_id and run["model"] == "silver_orders"
    assert run["status"] == "success" and run["command"] == "run" and run["rows_written"] == 30
    assert run["inputs"] == [{"table": "bronze.orders", "snapshot_id": chain.contents()["bronze.orders"].snapshot_id}]
    json.dumps(w.details)
    # by pipeline name too; None clears
    assert w.select("gold_revenue")["id"] == "gold.revenue"
    w.select(None)
    assert w.selected is None and w.details == {}
    # a selection made in the browser (the trait set directly) fills details the same way
    w.selected = "bronze.orders"
    assert w.details["id"] == "bronze.orders" and w.details["last_run"]["rows_written"] == 30


def test_highlight_upstream_downstream_and_none(chain: Session) -> None:
    w = LineageGraphWidget.for_session(chain)
    w.select("silver.orders")
    assert w.highlighted() == set(CHAIN)
    w.set_highlight("upstream")
    assert w.highlight == "upstream" and w.highlighted() == {"silver.orders", "bronze.orders"}
    w.set_highlight("down")
    assert w.highlight == "downstream" and w.highlighted() == {"silver.orders", "gold.revenue"}
    w.select("gold.revenue")
    assert w.highlighted() == {"gold.revenue"}
    w.set_highlight("none")
    assert w.highlighted() == set()
    with pytest.raises(LineageError):
        w.set_highlight("sideways")


def test_bad_node_ids_and_modes_raise_rat_errors(chain: Session) -> None:
    w = LineageGraphWidget.for_session(chain)
    with pytest.raises(UnknownNodeError) as info:
        w.select("gold.nope")
    assert isinstance(info.value, RatError) and "known:" in (info.value.hint or "")
    assert w.selected is None
    with pytest.raises(UnknownNodeError):
        w.selected = "silver.nothing"
    with pytest.raises(LineageError, match="no column"):
        w.select("silver.orders", column="nope")
    with pytest.raises(LineageError, match="mode"):
        w.set_mode("3d")
    assert w.mode == "table"


def test_column_mode_has_column_edges_and_column_highlighting(chain: Session) -> None:
    w = LineageGraphWidget.for_session(chain)
    assert w.graph["column_edges"] == []
    w.set_mode("column")  # computed on demand when the graph was built without columns
    assert w.mode == "column"
    edges = {(c["source"], c["source_column"], c["target"], c["target_column"]) for c in w.graph["column_edges"]}
    assert ("silver.orders", "amount", "gold.revenue", "revenue") in edges
    assert ("bronze.orders", "quantity", "silver.orders", "amount") in edges
    assert ("bronze.orders", "unit_price", "silver.orders", "amount") in edges
    details = w.select("gold.revenue")
    sources = {c["name"]: c["sources"] for c in details["columns"]}
    assert sources["revenue"] == [{"table": "silver.orders", "column": "amount"}] and details["column_lineage"]
    # one column's lineage
    w.select("gold.revenue", column="revenue")
    assert w.highlighted_columns() == {
        ("gold.revenue", "revenue"),
        ("silver.orders", "amount"),
        ("bronze.orders", "quantity"),
        ("bronze.orders", "unit_price"),
    }
    assert w.highlighted() == set(CHAIN)
    w.select("bronze.orders", column="customer")
    assert w.highlighted_columns() == {("bronze.orders", "customer"), ("silver.orders", "customer"), ("gold.revenue", "customer")}
    w.set_highlight("upstream")
    assert w.highlighted() == {"bronze.orders"}
    # for_session(columns=True) starts in column mode; a focus model is selected
    cw = LineageGraphWidget.for_session(chain, model="silver_orders", columns=True)
    assert cw.mode == "column" and cw.graph["column_edges"] and cw.selected == "silver.orders"
    assert cw.graph["focus"] == "silver.orders"
    # asking for column mode without --columns computes them too (for the same focus)
    mw = LineageGraphWidget.for_session(chain, model="gold_revenue", mode="column")
    assert mw.mode == "column" and mw.graph["column_edges"] and mw.graph["focus"] == "gold.revenue"


def test_from_graph_round_trips_and_has_no_run_history(chain: Session) -> None:
    g = lineage(chain, columns=True)
    assert graph_from_json(g.to_json()).to_json() == g.to_json()
    w = LineageGraphWidget.from_graph(g.to_json(), mode="column")
    assert w.graph == g.to_json() and w.lineage_graph.has_columns
    assert w.select("gold.revenue")["last_run"] is None
    with pytest.raises(LineageError, match="refresh"):
        w.refresh()
    # assigning the trait (as another widget or the user might) keeps the Python side in step
    w.graph = lineage(chain, model="bronze_orders", direction="upstream").to_json()
    assert list(w.lineage_graph) == ["bronze.orders"] and w.selected is None and w.details == {}
    # the frontend's "refresh" message rebuilds a session widget
    sw = LineageGraphWidget.for_session(chain)
    sw.select("gold.revenue")
    sw._on_message(sw, {"type": "refresh"}, [])
    assert sw.error == "" and sw.selected == "gold.revenue" and sw.details["id"] == "gold.revenue"


def test_lineage_magic_returns_the_widget(chain: Session) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    from ratatouille_nb.verbs import session as sessions

    no_history = Config()
    no_history.HistoryManager.enabled = False  # its SQLite file would outlive the test's HOME
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance(config=no_history)
    sessions.forget()
    sessions.use(chain)
    try:
        with capture_output():
            sh.run_cell("%load_ext ratatouille_nb")
            result = sh.run_cell("%rat lineage gold_revenue --columns")
        assert result.success, result.error_in_exec
        w = result.result
        assert isinstance(w, LineageGraphWidget) and w.mode == "column" and w.selected == "gold.revenue"
        assert w.graph["column_edges"]
    finally:
        sessions.forget()
        InteractiveShell.clear_instance()


def test_the_frontend_bundle_is_shipped() -> None:
    # A missing or stale bundle must fail here, not silently in the browser.
    assert ESM_PATH.is_file() and CSS_PATH.is_file()
    js = ESM_PATH.read_text()
    assert "cytoscape" in js.lower() and "dagre" in js.lower()
    assert "export{" in js.replace(" ", "") or "export default" in js  # one ES module
    assert 50_000 < len(js) < 2_000_000
    css = CSS_PATH.read_text()
    assert ".rat-lineage" in css and "--jp-" in css
    w = LineageGraphWidget()
    assert w._esm == js and w._css == css  # what anywidget sends to the browser
    src = ESM_PATH.parent.parent / "js"
    assert (src / "package.json").is_file() and (src / "package-lock.json").is_file() and (src / "src" / "lineage.js").is_file()
    assert '"build"' in (src / "package.json").read_text()

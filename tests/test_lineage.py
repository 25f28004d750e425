"""Lineage: column lineage with sqlglot, the graph of the demo workspace, renderings, producing runs."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import RatError, TableNotFoundError
from ratatouille_nb.lineage import (
    LineageGraph,
    UnknownNodeError,
    build_lineage,
    column_lineage,
    lineage,
    output_columns,
    producing_run,
    register_edge_provider,
    unregister_edge_provider,
)
from ratatouille_nb.lineage.errors import ColumnLineageError, LineageError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

SCHEMAS = {
    "silver.sales": {
        "txn_id": "string",
        "store_id": "string",
        "product_id": "string",
        "quantity": "int",
        "unit_price": "decimal(10, 2)",
        "_date": "date",
    },
    "bronze.stores": {"store_id": "string", "region": "string", "opened_at": "date"},
}

# -- column lineage of one query --------------------------------------------------------------


def test_column_lineage_through_ctes_join_and_aggregates() -> None:
    sql = """
    WITH valid AS (
        SELECT store_id, _date, quantity * unit_price AS amount, product_id
        FROM silver.sales
        WHERE quantity > 0
    ),
    daily AS (
        SELECT store_id, _date, SUM(amount) AS revenue, COUNT(*) AS transactions,
               COUNT(DISTINCT product_id) AS products
        FROM valid
        GROUP BY store_id, _date
    )
    SELECT d._date, st.region, upper(st.store_id) AS store, d.revenue, d.transactions, d.products,
           d.revenue / NULLIF(d.transactions, 0) AS avg_basket, 'v1' AS version
    FROM daily d
    JOIN bronze.stores st ON st.store_id = d.store_id
    """
    assert column_lineage(sql, SCHEMAS) == {
        "_date": {("silver.sales", "_date")},
        "region": {("bronze.stores", "region")},
        "store": {("bronze.stores", "store_id")},
        "revenue": {("silver.sales", "quantity"), ("silver.sales", "unit_price")},
        "transactions": set(),
        "products": {("silver.sales", "product_id")},
        "avg_basket": {("silver.sales", "quantity"), ("silver.sales", "unit_price")},
        "version": set(),
    }


def test_select_star_is_expanded_with_the_known_schemas() -> None:
    sales = SCHEMAS["silver.sales"]
    assert column_lineage("SELECT * FROM silver.sales", SCHEMAS) == {c: {("silver.sales", c)} for c in sales}
    # through a CTE and a USING join: DuckDB's column order, store_id coalesced from both sides
    got = column_lineage("WITH x AS (SELECT * FROM silver.sales) SELECT * FROM x JOIN bronze.stores USING (store_id)", SCHEMAS)
    assert list(got) == ["txn_id", "store_id", "product_id", "quantity", "unit_price", "_date", "region", "opened_at"]
    assert got["store_id"] == {("silver.sales", "store_id"), ("bronze.stores", "store_id")}
    assert got["opened_at"] == {("bronze.stores", "opened_at")}
    # EXCLUDE / REPLACE
    got = column_lineage("SELECT s.* EXCLUDE (quantity, unit_price), st.region FROM silver.sales s JOIN bronze.stores st USING (store_id)", SCHEMAS)
    assert got == {
        "txn_id": {("silver.sales", "txn_id")},
        "store_id": {("silver.sales", "store_id")},
        "product_id": {("silver.sales", "product_id")},
        "_date": {("silver.sales", "_date")},
        "region": {("bronze.stores", "region")},
    }
    got = column_lineage("SELECT * REPLACE (quantity * unit_price AS quantity) FROM silver.sales", SCHEMAS)
    assert got["quantity"] == {("silver.sales", "quantity"), ("silver.sales", "unit_price")}
    # a star over a table nobody knows stays a star
    assert column_lineage("SELECT * FROM bronze.unknown", SCHEMAS) == {"*": {("bronze.unknown", "*")}}


def test_column_lineage_unions_subqueries_and_names() -> None:
    got = column_lineage("SELECT store_id AS id FROM bronze.stores UNION ALL SELECT txn_id FROM silver.sales", SCHEMAS)
    assert got == {"id": {("bronze.stores", "store_id"), ("silver.sales", "txn_id")}}
    got = column_lineage("SELECT t.k, t.total FROM (SELECT store_id AS k, sum(quantity) AS total FROM silver.sales GROUP BY 1) t", SCHEMAS)
    assert got == {"k": {("silver.sales", "store_id")}, "total": {("silver.sales", "quantity")}}
    # duplicate names are numbered as DuckDB numbers them in the table it creates
    got = column_lineage("SELECT s.store_id, st.store_id FROM silver.sales s, bronze.stores st", SCHEMAS)
    assert got == {"store_id": {("silver.sales", "store_id")}, "store_id_1": {("bronze.stores", "store_id")}}
    # case-insensitive resolution, reported in the schema's spelling
    got = column_lineage('SELECT "Amount" * 2 AS Doubled FROM bronze.mixed', {"bronze.mixed": {"Amount": "int"}})
    assert got == {"Doubled": {("bronze.mixed", "Amount")}}


def test_output_columns_infers_types_and_unknown_sources_are_guessed() -> None:
    cols = output_columns("SELECT store_id, SUM(quantity) AS n, CAST(_date AS VARCHAR) AS d FROM silver.sales GROUP BY 1", SCHEMAS)
    assert list(cols) == ["store_id", "n", "d"]
    assert cols["d"] == "TEXT" and cols["n"] == "BIGINT"
    # a model not built yet: its columns come from the query, aliases shadowing columns included
    got = column_lineage("SELECT CAST(q AS INT) AS q, q * p AS total FROM bronze.new_table WHERE q > 0", {})
    assert got == {"q": {("bronze.new_table", "q")}, "total": {("bronze.new_table", "q"), ("bronze.new_table", "p")}}


def test_column_lineage_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ColumnLineageError, match="cannot parse"):
        column_lineage("SELEC nonsense FROM", SCHEMAS)
    with pytest.raises(ColumnLineageError, match="SELECT"):
        column_lineage("DELETE FROM silver.sales", SCHEMAS)
    assert issubclass(ColumnLineageError, RatError)


# -- the graph object -------------------------------------------------------------------------


def _diamond() -> LineageGraph:
    g = LineageGraph()
    g.node("bronze.a", kind="source", layer="bronze", exists=True)
    g.node("bronze.b", kind="source", layer="bronze", exists=True)
    g.node("silver.c", kind="model", layer="silver", model="silver_c", language="sql", materialized="table")
    g.node("gold.d", kind="model", layer="gold", model="gold_d", language="sql", materialized="table")
    g.node("gold.e", kind="view", layer="gold", model="gold_e", language="sql", materialized="view")
    for a, b in [("bronze.a", "silver.c"), ("bronze.b", "silver.c"), ("silver.c", "gold.d"), ("silver.c", "gold.e"), ("bronze.a", "gold.d")]:
        g.add_edge(a, b)
    g.add_edge("gold.d", "products.d", "publish")
    g.add_edge("landing/x/*.csv", "bronze.a", "file")
    g.nodes["silver.c"].columns = {"k": "int", "v": "int"}
    g.nodes["bronze.a"].columns = {"k": "int"}
    g.nodes["silver.c"].column_lineage = True
    g.add_column_edge("bronze.a", "k", "silver.c", "k")
    g.add_column_edge("bronze.b", "w", "silver.c", "v")
    g.nodes["gold.d"].column_lineage = True
    g.nodes["gold.d"].columns = {"total": "int"}
    g.add_column_edge("silver.c", "v", "gold.d", "total")
    return g


def test_graph_navigation_and_subgraphs() -> None:
    g = _diamond()
    assert g.parents("silver_c") == ["bronze.a", "bronze.b"]
    assert g.upstream("gold.d") == ["landing/x/*.csv", "bronze.a", "bronze.b", "silver.c"]
    assert g.downstream("bronze.a") == ["silver.c", "gold.d", "gold.e", "products.d"]
    assert g.nodes["products.d"].kind == "product" and g.nodes["landing/x/*.csv"].kind == "file"
    up = g.subgraph("gold_d", "upstream")
    assert set(up.nodes) == {"gold.d", "silver.c", "bronze.a", "bronze.b", "landing/x/*.csv"}
    assert up.focus == "gold.d" and up.direction == "upstream"
    down = g.subgraph("silver.c", "downstream")
    assert set(down.nodes) == {"silver.c", "gold.d", "gold.e", "products.d"}
    assert {(c.source, c.target) for c in down.column_edges} == {("silver.c", "gold.d")}
    assert set(g.subgraph("silver.c").nodes) == set(g.nodes) - {"nothing"}
    assert g.column_sources("gold.d", "total") == {("silver.c", "v")}
    assert g.column_sources("gold.d", "total", transitive=True) == {("bronze.b", "w")}
    with pytest.raises(UnknownNodeError, match="'nope' is not a model or table"):
        g.subgraph("nope")
    with pytest.raises(LineageError, match="unknown direction"):
        g.subgraph("gold.d", "sideways")


def test_json_is_stable_and_complete() -> None:
    g = _diamond()
    data = g.to_json()
    assert json.dumps(data) == json.dumps(_diamond().to_json())
    ids = [n["id"] for n in data["nodes"]]
    assert ids == sorted(ids)
    assert data["edges"] == sorted(data["edges"], key=lambda e: (e["source"], e["target"], e["kind"]))
    by_id = {n["id"]: n for n in data["nodes"]}
    assert by_id["landing/x/*.csv"]["depth"] == 0 and by_id["gold.d"]["depth"] == 3
    assert by_id["silver.c"]["columns"] == [{"name": "k", "type": "int"}, {"name": "v", "type": "int"}]
    assert {"source": "silver.c", "source_column": "v", "target": "gold.d", "target_column": "total"} in data["column_edges"]
    json.dumps(data)  # plain data only


MERMAID_LINE = re.compile(
    r"""^(flowchart\ LR
        |\ \ n\d+(\["[^"]*"\]|\(\["[^"]*"\]\)|\[\("[^"]*"\)\]|\{\{"[^"]*"\}\}|\[/"[^"]*"/\]|>"[^"]*"\])
        |\ \ subgraph\ n\d+\ \["[^"]*"\]
        |\ \ \ \ direction\ TB
        |\ \ \ \ n\d+_c\d+\["[^"]*"\]
        |\ \ end
        |\ \ n\d+(_c\d+)?\ -->(\|[^|]+\|)?\ n\d+(_c\d+)?
        |\ \ classDef\ \w+\ [\w:#,-]+
        |\ \ class\ n\d+(,n\d+)*\ \w+)$""",
    re.X,
)


def check_mermaid(text: str) -> None:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    declared = set()
    for line in lines:
        assert MERMAID_LINE.match(line), f"bad mermaid line: {line!r}"
        m = re.match(r"^\s+(?:subgraph )?(n\d+(?:_c\d+)?) ?[\[({>]", line)
        if m:
            declared.add(m.group(1))
    assert lines.count("  end") == sum(line.startswith("  subgraph ") for line in lines)
    for line in lines:
        edge = re.match(r"^  (\S+) -->(?:\|[^|]+\|)? (\S+)$", line)
        if edge:
            assert edge.group(1) in declared and edge.group(2) in declared, line


def check_dot(text: str) -> None:
    """A small DOT reader: balanced braces and labels, statements end with ';', edges join declared nodes."""
    assert text.startswith("digraph lineage {\n") and text.rstrip().endswith("}")
    body = text.strip().splitlines()[1:-1]
    ident = r'(?:[A-Za-z_]\w*|"(?:[^"\\]|\\.)*")'
    declared = set()
    for line in body:
        assert line.endswith(";"), line
        node = re.match(rf"^  ({ident}) \[(.*)\];$", line)
        edge = re.match(rf"^  ({ident})(?::c\d+:[ew])? -> ({ident})(?::c\d+:[ew])?( \[.*\])?;$", line)
        if edge:
            assert edge.group(1) in declared and edge.group(2) in declared, line
        elif node and node.group(1) not in ("node", "edge"):
            declared.add(node.group(1))
            attrs = node.group(2)
            if "label=<" in attrs:
                html = attrs[attrs.index("label=<") + 6 :]
                assert html.count("<") == html.count(">") and "<TABLE" in html and html.count("<TR>") == html.count("</TR>")
            else:
                assert len(re.sub(r'\\.', "", attrs).split('"')) % 2 == 1, line  # quotes balanced
        else:
            assert re.match(r"^  (rankdir=LR|node \[.*\]|edge \[.*\]);$", line), line
    assert declared


def test_mermaid_and_dot_are_well_formed() -> None:
    g = _diamond()
    g.node('bronze."odd" <name>', kind="source")
    g.add_edge('bronze."odd" <name>', "silver.c")
    for columns in (False, True):
        check_mermaid(g.to_mermaid(columns=columns))
        check_dot(g.to_dot(columns=columns))
    assert re.search(r"^  n\d+_c\d+ --> n\d+_c\d+$", g.to_mermaid(columns=True), re.M)
    assert '"silver.c":c1:e -> "gold.d":c0:w;' in g.to_dot(columns=True)
    assert '"gold.d" -> "products.d" [label="publish", style=dashed];' in g.to_dot()
    assert "(see above)" in g.to_text(columns=False)  # silver.c is reached from several roots


# -- a real workspace: the demo template ------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The demo template with 2,000 landed rows, run once (module-wide: the tests only read it)."""
    from ratatouille_nb.demo import land_csv_batches, scaffold
    from ratatouille_nb.workspace.manager import register_workspace

    tmp = tmp_path_factory.mktemp("lineage-demo")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("RAT_HOME", "RAT_WORKSPACE", "RAT_PROFILE", "RAT_BRANCH", "RAT_CATALOG"):
            mp.delenv(var, raising=False)
        mp.setenv("HOME", str(tmp / "user-home"))
        settings = Settings.from_env(home=str(tmp / "home"))
        assert scaffold(tmp / "demo")
        ws = Workspace.load(tmp / "demo")
        register_workspace(ws, settings)
        session = Session(settings, ws)
        before = lineage(session, columns=True)
        land_csv_batches(session.con, session.warehouse.location(ws.prefix), "batch", 2000)
        record = Runner(session).run()
        assert record.status == "success", record.error
        yield SimpleNamespace(settings=settings, ws=ws, session=session, before=before)
        session.close()


def test_demo_table_lineage(demo) -> None:
    session = demo.session
    g = build_lineage(session)
    assert {(e.source, e.target, e.kind) for e in g.edges} == {
        ("bronze.raw_sales", "silver.sales", "ref"),
        ("silver.sales", "gold.daily_sales_kpis", "ref"),
        ("gold.daily_sales_kpis", "products.sales_kpis", "publish"),
    }
    raw, silver, gold = g.nodes["bronze.raw_sales"], g.nodes["silver.sales"], g.nodes["gold.daily_sales_kpis"]
    assert (raw.kind, raw.model, raw.language) == ("model", "bronze_raw_sales", "python")
    assert (silver.kind, silver.model, silver.materialized, silver.layer) == ("model", "silver_sales", "incremental", "silver")
    assert gold.exists and gold.snapshot_id == session.contents()["gold.daily_sales_kpis"].snapshot_id
    assert list(gold.columns) == ["_date", "store_id", "revenue", "transactions", "avg_basket", "distinct_products"]
    assert g.nodes["products.sales_kpis"].kind == "product"
    assert not any(n.startswith("_") for n in g.nodes)  # bookkeeping tables stay hidden
    assert g.upstream("gold_daily_sales_kpis") == ["bronze.raw_sales", "silver.sales"]
    assert g.downstream("bronze.raw_sales") == ["silver.sales", "gold.daily_sales_kpis", "products.sales_kpis"]
    assert g.to_text(columns=False).splitlines() == [
        "bronze.raw_sales  (model bronze_raw_sales, python)",
        "└── silver.sales  (model silver_sales, sql, incremental)",
        "    └── gold.daily_sales_kpis  (model gold_daily_sales_kpis, sql, table)",
        "        └── products.sales_kpis  (data product)",
    ]


def test_demo_column_lineage(demo) -> None:
    session = demo.session
    g = lineage(session, "gold.daily_sales_kpis", "upstream", columns=True)
    assert set(g.nodes) == {"bronze.raw_sales", "silver.sales", "gold.daily_sales_kpis"}
    assert g.column_map("silver.sales")["total_amount"] == [("bronze.raw_sales", "quantity"), ("bronze.raw_sales", "unit_price")]
    assert g.column_map("silver.sales")["_date"] == [("bronze.raw_sales", "transaction_time")]
    gold = g.column_map("gold.daily_sales_kpis")
    assert gold == {
        "_date": [("silver.sales", "_date")],
        "store_id": [("silver.sales", "store_id")],
        "revenue": [("silver.sales", "total_amount")],
        "transactions": [],
        "avg_basket": [("silver.sales", "total_amount")],
        "distinct_products": [("silver.sales", "product_id")],
    }
    assert g.column_sources("gold.daily_sales_kpis", "revenue", transitive=True) == {
        ("bronze.raw_sales", "quantity"),
        ("bronze.raw_sales", "unit_price"),
    }
    assert g.nodes["gold.daily_sales_kpis"].columns["revenue"] == "DECIMAL(38,2)"  # the built table's type, by its DuckDB name
    text = g.to_text()
    assert "columns of bronze.raw_sales: (Python pipeline: table-level lineage only)" in text
    assert re.search(r"total_amount\s+<- bronze\.raw_sales\.quantity, bronze\.raw_sales\.unit_price", text)
    assert re.search(r"transactions\s+\(no source column: computed\)", text)


def test_demo_lineage_before_anything_is_built(demo) -> None:
    """Not built yet: silver's schema is inferred from its SQL, and gold's lineage goes through it."""
    g = demo.before
    assert not g.nodes["silver.sales"].exists and g.nodes["silver.sales"].snapshot_id is None
    assert list(g.nodes["silver.sales"].columns)[:3] == ["txn_id", "store_id", "product_id"]
    assert g.nodes["silver.sales"].columns["total_amount"] == "DECIMAL(12, 2)"
    assert g.column_map("gold.daily_sales_kpis")["revenue"] == [("silver.sales", "total_amount")]
    assert g.column_map("silver.sales")["quantity"] == [("bronze.raw_sales", "quantity")]
    assert "not built yet" in g.to_text()


def _rat(settings: Settings, ws: Workspace, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--home", str(settings.home), "-w", str(ws.root), "lineage", *args], obj={}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_lineage_formats_and_filters(demo) -> None:
    settings, ws = demo.settings, demo.ws
    out = _rat(settings, ws)
    assert out.startswith("bronze.raw_sales  (model bronze_raw_sales, python)\n")
    up = _rat(settings, ws, "silver_sales", "--upstream")
    assert "bronze.raw_sales" in up and "gold.daily_sales_kpis" not in up
    down = _rat(settings, ws, "silver.sales", "--downstream")
    assert "gold.daily_sales_kpis" in down and "products.sales_kpis" in down and "bronze.raw_sales" not in down
    data = json.loads(_rat(settings, ws, "silver.sales", "--downstream", "--format", "json"))
    assert data["focus"] == "silver.sales" and data["direction"] == "downstream"
    assert [n["id"] for n in data["nodes"]] == ["gold.daily_sales_kpis", "products.sales_kpis", "silver.sales"]
    assert data["meta"] == {"ref": "workspace/demo", "workspace": "demo"}
    assert json.loads(_rat(settings, ws, "--format", "json")) == json.loads(_rat(settings, ws, "--format", "json"))
    cols = json.loads(_rat(settings, ws, "gold.daily_sales_kpis", "--columns", "--format", "json"))
    assert {"source": "silver.sales", "source_column": "total_amount", "target": "gold.daily_sales_kpis", "target_column": "revenue"} in cols["column_edges"]
    check_mermaid(_rat(settings, ws, "--format", "mermaid"))
    check_mermaid(_rat(settings, ws, "--columns", "--format", "mermaid"))
    check_dot(_rat(settings, ws, "--format", "dot"))
    check_dot(_rat(settings, ws, "--columns", "--format", "dot"))
    text = _rat(settings, ws, "gold_daily_sales_kpis", "--columns")
    assert "columns of gold.daily_sales_kpis:" in text and "revenue" in text
    tag = CliRunner().invoke(cli, ["--home", str(settings.home), "-w", str(ws.root), "tag", "create", "v1"], obj={}, catch_exceptions=False)
    assert tag.exit_code == 0, tag.output
    assert json.loads(_rat(settings, ws, "--branch", "v1", "--format", "json"))["meta"]["ref"] == "v1"


def test_cli_lineage_errors_are_one_line(demo) -> None:
    settings, ws = demo.settings, demo.ws
    out = _rat(settings, ws, "gold.nope", code=1)
    assert out.startswith("error: 'gold.nope' is not a model or table") and "Traceback" not in out
    assert _rat(settings, ws, "--upstream", code=1).startswith("error: --upstream needs a MODEL")
    assert _rat(settings, ws, "--run", code=1).startswith("error: --run needs a MODEL")
    with pytest.raises(UnknownNodeError):
        lineage(demo.session, "no_such_model")


def test_demo_producing_run(demo) -> None:
    settings, ws, session = demo.settings, demo.ws, demo.session
    contents = session.contents()
    gold = producing_run(session, "gold.daily_sales_kpis")
    assert gold is not None and gold.model == "gold_daily_sales_kpis" and gold.command == "run"
    assert gold.snapshot_id == contents["gold.daily_sales_kpis"].snapshot_id
    assert gold.inputs == [("silver.sales", contents["silver.sales"].snapshot_id)]
    assert gold.commit_hash == session.store.get_reference(session.branch).hash
    silver = producing_run(session, "silver.sales")
    assert silver is not None and silver.run_id == gold.run_id
    assert silver.inputs == [("bronze.raw_sales", contents["bronze.raw_sales"].snapshot_id)]
    raw = producing_run(session, "bronze.raw_sales")
    assert raw is not None and raw.model == "bronze_raw_sales" and raw.rows_written == 2000
    assert producing_run(session, "gold.daily_sales_kpis", 12345) is None
    out = _rat(settings, ws, "gold_daily_sales_kpis", "--run")
    assert f"produced by run {gold.run_id}" in out and f"silver.sales @ snapshot {contents['silver.sales'].snapshot_id}" in out
    data = json.loads(_rat(settings, ws, "gold.daily_sales_kpis", "--run", "--format", "json"))
    assert data["run_id"] == gold.run_id and data["inputs"][0]["table"] == "silver.sales"
    with pytest.raises(TableNotFoundError):
        producing_run(session, "gold.missing")


# -- small workspaces of our own --------------------------------------------------------------


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def test_sources_hardcoded_tables_views_products_and_extra_edges(session: Session, workspace: Workspace) -> None:
    session.sql("CREATE TABLE bronze.stores AS SELECT 'S1' AS store_id, 'north' AS region")
    _write(workspace.root, "pipelines/silver/files.sql", """
        SELECT id, amount * {{ var('rate', 2) }} AS amount FROM {{ source('landing/x/*.csv') }}
    """)
    _write(workspace.root, "pipelines/silver/joined.sql", """
        -- @materialized: view
        SELECT f.id, s.region, f.amount * {{ var('needs_a_value') }} AS scaled
        FROM {{ ref('silver_files') }} f CROSS JOIN bronze.stores s
        WHERE {{ var('filter', 'true') }}
    """)
    _write(workspace.root, "pipelines/gold/ext.sql", """
        SELECT * FROM {{ ref('sales_feed') }}
    """)
    _write(workspace.root, "pipelines/bronze/split.py", """
        from ratatouille import pipeline

        @pipeline(name="bronze_split", layer="bronze", outputs=["bronze.left", "bronze.right"], depends_on=["bronze.stores"])
        def split():
            pass
    """)
    text = (workspace.root / "workspace.yaml").read_text()
    text += "\nsubscriptions:\n  - product: sales_kpis\n    alias: sales_feed\n"
    text = text.replace("subscriptions: []\n", "")
    (workspace.root / "workspace.yaml").write_text(text)
    ws = Workspace.load(workspace.root)
    with Session(session.settings, ws) as s:
        g = build_lineage(s, columns=True, extra_edges=[("analytics:gold.report", "products.sales_kpis", "product")])
        edges = {(e.source, e.target, e.kind) for e in g.edges}
        assert ("landing/x/*.csv", "silver.files", "file") in edges
        assert ("silver.files", "silver.joined", "ref") in edges
        assert ("bronze.stores", "silver.joined", "sql") in edges  # named directly, not with ref()
        assert ("products.sales_kpis", "gold.ext", "ref") in edges  # a subscription alias
        assert ("analytics:gold.report", "products.sales_kpis", "product") in edges
        assert ("bronze.stores", "bronze.left", "ref") in edges and ("bronze.stores", "bronze.right", "ref") in edges
        assert g.nodes["bronze.right"].model == "bronze_split" and g.nodes["bronze.right"].language == "python"
        assert g.resolve("bronze_split") == "bronze.left"
        assert g.nodes["analytics:gold.report"].kind == "external"
        assert g.nodes["landing/x/*.csv"].kind == "file" and g.nodes["silver.joined"].kind == "view"
        assert g.nodes["bronze.stores"].kind == "source" and g.nodes["bronze.stores"].columns == {"store_id": "VARCHAR", "region": "VARCHAR"}
        assert g.column_map("silver.files") == {"id": [("landing/x/*.csv", "id")], "amount": [("landing/x/*.csv", "amount")]}
        assert g.column_map("silver.joined") == {
            "id": [("silver.files", "id")],
            "region": [("bronze.stores", "region")],
            "scaled": [("silver.files", "amount")],
        }
        assert g.nodes["landing/x/*.csv"].columns == {"amount": "", "id": ""}

        def provider(session_: Session, ref: str) -> list[tuple[str, str, str]]:
            return [("products.sales_kpis", "other:silver.copy", "subscription")]

        register_edge_provider(provider)
        try:
            assert ("products.sales_kpis", "other:silver.copy", "subscription") in {
                (e.source, e.target, e.kind) for e in build_lineage(s).edges
            }
        finally:
            unregister_edge_provider(provider)
        assert "other:silver.copy" not in build_lineage(s).nodes
        with pytest.raises(LineageError, match="extra lineage edge"):
            build_lineage(s, extra_edges=[("just-one",)])  # type: ignore[list-item]


def test_producing_run_follows_snapshots_across_runs(session: Session, workspace: Workspace) -> None:
    session.sql("CREATE TABLE bronze.items AS SELECT range AS id FROM range(5)")
    _write(workspace.root, "pipelines/silver/items.sql", "SELECT id, id * 2 AS double FROM {{ ref('bronze.items') }}\n")
    first = Runner(session).run()
    snap1 = session.contents()["silver.items"].snapshot_id
    session.sql("INSERT INTO bronze.items SELECT 99")
    second = Runner(session).run()
    snap2 = session.contents()["silver.items"].snapshot_id
    assert snap1 != snap2
    now = producing_run(session, "silver.items")
    assert now is not None and now.run_id == second.run_id and now.snapshot_id == snap2
    assert now.inputs == [("bronze.items", session.contents()["bronze.items"].snapshot_id)]
    then = producing_run(session, "silver.items", snap1)
    assert then is not None and then.run_id == first.run_id and then.inputs[0][1] != now.inputs[0][1]
    assert producing_run(session, "bronze.items") is None  # written with SQL, not by a run
    g = build_lineage(session, columns=True)
    assert g.column_map("silver.items") == {"id": [("bronze.items", "id")], "double": [("bronze.items", "id")]}


def test_empty_workspace_and_sql_sqlglot_cannot_read(session: Session, workspace: Workspace) -> None:
    g = lineage(session)
    assert len(g) == 0 and g.to_text() == "no pipelines or tables yet\n"
    check_mermaid(g.to_mermaid())
    check_dot(g.to_dot()) if g.nodes else None
    _write(workspace.root, "pipelines/silver/odd.sql", "SELECT a FROM {{ ref('bronze.x') }} WHERE a >>>> (\n")
    _write(workspace.root, "pipelines/gold/fine.sql", "SELECT a AS b FROM {{ ref('silver_odd') }}\n")
    g = build_lineage(session, columns=True)
    assert {(e.source, e.target) for e in g.edges} == {("bronze.x", "silver.odd"), ("silver.odd", "gold.fine")}
    assert "cannot parse" in (g.nodes["silver.odd"].error or "")
    assert g.column_map("gold.fine") == {"b": [("silver.odd", "a")]}
    text = g.to_text()
    assert "columns of silver.odd: (column lineage unavailable: cannot parse" in text
    assert "bronze.x  (source table, not on this ref)" in text

"""The pipeline SDK end to end: loading and naming, selectors, errors that name file:line, templating,
every materialization checked against plain DuckDB on the same generated data, schema evolution,
atomic runs and parallel runs.

Everything is real: DuckDB, pyiceberg metadata, the SQLite version store, all in tmp folders.
Expected results are computed in a separate `duckdb.connect()` from the same deterministic
`sales_select_sql` batches, never by Ratatouille itself.
"""

from __future__ import annotations

import sys
import textwrap
import threading
import types
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.dag import build_dag
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.loader import load_project
from ratatouille_nb.pipeline.runs import RunHistory, RunRecord
from ratatouille_nb.sampledata import sales_select_sql
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

# -- helpers ----------------------------------------------------------------------------------

# Three bronze batches: 1 500 fresh rows, then two batches of new rows plus 20 % updates of
# batch-1 txn_ids (distinct within a batch; batches 2 and 3 may update the same id).
BATCHES: dict[int, str] = {
    1: sales_select_sql(1500, seed=1),
    2: sales_select_sql(500, seed=2, id_offset=10_000, update_fraction=0.2, update_pool=1500),
    3: sales_select_sql(500, seed=3, id_offset=20_000, update_fraction=0.2, update_pool=1500),
}


def batch_select(n: int, where: str = "") -> str:
    return f"SELECT *, {n} AS _batch FROM ({BATCHES[n]}) {where}"


def write(workspace: Workspace, rel: str, text: str) -> Path:
    """Write a workspace file (`pipelines/silver/x.sql`, `macros/m.sql`) from an indented literal."""
    path = workspace.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def model(workspace: Workspace, layer: str, name: str, text: str) -> Path:
    return write(workspace, f"pipelines/{layer}/{name}", text)


def run(session: Session, *selectors: str, **kwargs: Any) -> RunRecord:
    return Runner(session).run(list(selectors), **kwargs)


def ok(record: RunRecord) -> RunRecord:
    assert record.status == "success", record.error
    assert all(m.status == "success" for m in record.models), [(m.model, m.status, m.error) for m in record.models]
    return record


def by_model(record: RunRecord) -> dict[str, Any]:
    return {m.model: m for m in record.models}


def head(session: Session) -> str:
    return session.store.get_reference(session.branch).hash


def load_bronze(session: Session, *batches: int, where: str = "") -> None:
    for n in batches:
        if "bronze.raw_sales" in session.contents():
            session.sql(f"INSERT INTO bronze.raw_sales {batch_select(n, where)}")
        else:
            session.sql(f"CREATE TABLE bronze.raw_sales AS {batch_select(n, where)}")


def plain_bronze(*batches: int | tuple[int, str]) -> duckdb.DuckDBPyConnection:
    """A separate, plain DuckDB holding the same bronze rows as `raw_sales` (a batch, or (batch, WHERE …))."""
    con = duckdb.connect()
    selects = [f"({batch_select(b)})" if isinstance(b, int) else f"({batch_select(*b)})" for b in batches]
    con.execute("CREATE TABLE raw_sales AS " + " UNION ALL ".join(selects))
    return con


def assert_same_rows(session: Session, query: str, con: duckdb.DuckDBPyConnection, expected_sql: str, ref: str | None = None) -> int:
    """Rows of `query` in Ratatouille == rows of `expected_sql` in plain DuckDB (EXCEPT ALL both ways)."""
    got = session.sql(query, ref=ref).arrow()
    con.register("got", got)
    try:
        missing = con.execute(f"SELECT count(*) FROM (({expected_sql}) EXCEPT ALL (SELECT * FROM got))").fetchone()[0]
        extra = con.execute(f"SELECT count(*) FROM ((SELECT * FROM got) EXCEPT ALL ({expected_sql}))").fetchone()[0]
        expected_rows = con.execute(f"SELECT count(*) FROM ({expected_sql})").fetchone()[0]
    finally:
        con.unregister("got")
    assert (missing, extra) == (0, 0), f"{missing} expected row(s) missing, {extra} unexpected row(s)"
    assert got.num_rows == expected_rows
    return got.num_rows


def scalar(session: Session, sql: str, ref: str | None = None) -> Any:
    return session.sql(sql, ref=ref).relation.fetchone()[0]


def parquet_files(settings: Settings) -> set[str]:
    return {str(p) for p in settings.warehouse.rglob("*.parquet")}


def data_files(session: Session, key: str) -> set[str]:
    from pyiceberg.table import StaticTable

    table = StaticTable.from_metadata(session.contents()[key].metadata_location)
    return {task.file.file_path for task in table.scan().plan_files()}


def reopen_with_overrides(settings: Settings, workspace: Workspace, overrides: str) -> Session:
    config = workspace.root / "workspace.yaml"
    config.write_text(config.read_text().replace("overrides: {}", f"overrides: {overrides}"))
    return Session(settings, Workspace.load(workspace.root))


# -- loading and naming -----------------------------------------------------------------------

INGEST_PY = """
from ratatouille import pipeline


@pipeline(name="bronze_raw_sales", layer="bronze")
def ingest_sales():
    pass


@pipeline(outputs=["bronze.customers", "bronze.orders"], tags=["crm"])
def load_crm():
    pass
"""


@pytest.fixture
def project_files(workspace: Workspace) -> Workspace:
    model(workspace, "bronze", "ingest.py", INGEST_PY)
    model(
        workspace,
        "silver",
        "sales.sql",
        """
        -- @tags: daily, finance
        SELECT * FROM {{ ref('bronze.raw_sales') }}
        """,
    )
    model(
        workspace,
        "silver",
        "clean_customers.sql",
        """
        -- @name: tidy_customers
        SELECT * FROM {{ ref('bronze.customers') }}
        """,
    )
    model(
        workspace,
        "gold",
        "kpis.sql",
        """
        SELECT count(*) AS n FROM {{ ref('silver_sales') }} JOIN {{ ref('tidy_customers') }} ON true
        """,
    )
    write(workspace, "pipelines/gold/kpis.yaml", "description: KPIs\ntags: [finance, exec]\n")
    model(workspace, "gold", "stores.sql", "SELECT * FROM {{ ref('silver.clean_customers') }}\n")
    return workspace


def test_file_names_build_tables_and_headers_name_pipelines(project_files: Workspace) -> None:
    project = load_project(project_files.root)
    targets = {name: m.target for name, m in project.models.items()}
    assert targets == {
        "bronze_raw_sales": "bronze.raw_sales",
        "bronze_load_crm": "bronze.load_crm",
        "silver_sales": "silver.sales",
        "tidy_customers": "silver.clean_customers",
        "gold_kpis": "gold.kpis",
        "gold_stores": "gold.stores",
    }
    crm = project.models["bronze_load_crm"]
    assert crm.kind == "python" and crm.produces == ["bronze.customers", "bronze.orders"]
    assert project.models["bronze_raw_sales"].produces == ["bronze.raw_sales"]
    assert project.models["silver_sales"].tags == ["daily", "finance"]
    assert project.models["gold_kpis"].tags == ["finance", "exec"]
    assert project.models["gold_kpis"].description == "KPIs"
    # Either name resolves: a pipeline name or the table it builds.
    assert project.get("tidy_customers") is project.get("silver.clean_customers")
    assert project.get("bronze.orders") is crm


def test_refs_become_dag_edges(project_files: Workspace) -> None:
    dag = build_dag(load_project(project_files.root))
    assert dag.upstream["silver_sales"] == {"bronze_raw_sales"}
    assert dag.upstream["tidy_customers"] == {"bronze_load_crm"}  # via an `outputs=` table
    assert dag.upstream["gold_kpis"] == {"silver_sales", "tidy_customers"}
    assert dag.upstream["gold_stores"] == {"tidy_customers"}  # ref by table name
    assert not dag.external
    order = dag.order()
    for up, down in [("bronze_raw_sales", "silver_sales"), ("silver_sales", "gold_kpis"), ("bronze_load_crm", "tidy_customers")]:
        assert order.index(up) < order.index(down)


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["silver_sales"], ["silver_sales"]),
        (["silver.sales"], ["silver_sales"]),
        (["+silver_sales"], ["bronze_raw_sales", "silver_sales"]),
        (["+silver.sales"], ["bronze_raw_sales", "silver_sales"]),
        (["silver_sales+"], ["silver_sales", "gold_kpis"]),
        (["tidy_customers+"], ["tidy_customers", "gold_kpis", "gold_stores"]),
        (["+gold.kpis"], ["bronze_load_crm", "bronze_raw_sales", "silver_sales", "tidy_customers", "gold_kpis"]),
        (["layer:gold"], ["gold_kpis", "gold_stores"]),
        (["layer:bronze"], ["bronze_load_crm", "bronze_raw_sales"]),
        (["tag:finance"], ["silver_sales", "gold_kpis"]),
        (["tag:exec"], ["gold_kpis"]),
        (["tag:crm"], ["bronze_load_crm"]),
        (["tag:daily", "gold_stores"], ["silver_sales", "gold_stores"]),
        (["gold_stores silver.sales"], ["silver_sales", "gold_stores"]),
        ([], None),
    ],
)
def test_selectors(project_files: Workspace, selectors: list[str], expected: list[str] | None) -> None:
    dag = build_dag(load_project(project_files.root))
    chosen = dag.select(selectors)
    if expected is None:
        assert sorted(chosen) == sorted(dag.models)
    else:
        assert sorted(chosen) == sorted(expected)
    # Always in DAG order: everything a model depends on comes before it.
    for name in chosen:
        assert all(chosen.index(up) < chosen.index(name) for up in dag.closure(name, "up") & set(chosen))


@pytest.mark.parametrize("selector", ["nothing", "silver.nothing", "layer:platinum", "tag:nope"])
def test_selector_matching_nothing_is_an_error(project_files: Workspace, selector: str) -> None:
    dag = build_dag(load_project(project_files.root))
    with pytest.raises(PipelineError, match="matches no model"):
        dag.select([selector])


def test_run_builds_only_the_selection(session: Session, workspace: Workspace) -> None:
    model(workspace, "silver", "a.sql", "SELECT 1 AS x\n")
    model(workspace, "silver", "b.sql", "SELECT x + 1 AS x FROM {{ ref('silver.a') }}\n")
    model(workspace, "gold", "c.sql", "SELECT x * 10 AS x FROM {{ ref('silver_b') }}\n")
    record = ok(run(session, "silver_a+"))
    assert [m.model for m in record.models] == ["silver_a", "silver_b", "gold_c"]
    assert scalar(session, "SELECT x FROM gold.c") == 20
    session.sql("CREATE OR REPLACE TABLE silver.a AS SELECT 5 AS x")
    record = ok(run(session, "+silver_b"))  # refreshes a again, then b; gold.c untouched
    assert [m.model for m in record.models] == ["silver_a", "silver_b"]
    assert (scalar(session, "SELECT x FROM silver.b"), scalar(session, "SELECT x FROM gold.c")) == (2, 20)


# -- errors name the file and line ------------------------------------------------------------

ERROR_CASES: dict[str, tuple[dict[str, str], str, int, str]] = {
    # case: (files, file the error must name, line, message part)
    "cycle": (
        {
            "pipelines/silver/a.sql": "-- @name: a\nSELECT *\nFROM {{ ref('silver.b') }}\n",
            "pipelines/silver/b.sql": "-- @name: b\n\n\nSELECT * FROM {{ ref('a') }}\n",
        },
        "pipelines/silver/a.sql",
        3,
        "dependency cycle: a -> b -> a",
    ),
    "ref to nothing": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\nUNION ALL\nSELECT * FROM {{ ref('silver.nope') }}\n"},
        "pipelines/silver/a.sql",
        3,
        "ref('silver.nope') matches no model and no table",
    ),
    "malformed yaml": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\n", "pipelines/silver/a.yaml": "description: x\ncolumns: [\n  - name: a\n"},
        "pipelines/silver/a.yaml",
        3,
        "malformed YAML",
    ),
    "unknown yaml key": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\n", "pipelines/silver/a.yaml": "description: x\nowner: me\nbogus: 1\n"},
        "pipelines/silver/a.yaml",
        3,
        "unknown key 'bogus'",
    ),
    "unknown header": (
        {"pipelines/silver/a.sql": "-- @materialized: table\n-- @bogus: x\nSELECT 1 AS x\n"},
        "pipelines/silver/a.sql",
        2,
        "unknown header '@bogus'",
    ),
    "unknown macro": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\nFROM range(3)\nWHERE {{ no_such_macro('x') }}\n"},
        "pipelines/silver/a.sql",
        3,
        "'no_such_macro' is undefined",
    ),
    "jinja syntax error": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\n{{ ref('silver.b' }}\n"},
        "pipelines/silver/a.sql",
        2,
        "template syntax error",
    ),
    "macro syntax error": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\n", "macros/util.sql": "{% macro m() %}\n{% if %}\n{% endmacro %}\n"},
        "macros/util.sql",
        2,
        "template syntax error",
    ),
    "var without default": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\nWHERE 1 = {{ var('threshold') }}\n"},
        "pipelines/silver/a.sql",
        2,
        "var('threshold') is not set and has no default",
    ),
    "python syntax error": (
        {"pipelines/bronze/ingest.py": "from ratatouille import pipeline\n\n\n@pipeline()\ndef ingest(:\n    pass\n"},
        "pipelines/bronze/ingest.py",
        5,
        "syntax error",
    ),
    "python import-time exception": (
        {"pipelines/bronze/ingest.py": "import os\n\nVALUE = 1 / 0\n"},
        "pipelines/bronze/ingest.py",
        3,
        "ZeroDivisionError",
    ),
    "merge without unique_key": (
        {"pipelines/silver/a.sql": "-- @owner: me\n-- @materialized: incremental\nSELECT 1 AS x\n"},
        "pipelines/silver/a.sql",
        2,
        "incremental merge needs @unique_key",
    ),
    "two models build one table": (
        {
            "pipelines/bronze/load.py": "from ratatouille import pipeline\n\n\n@pipeline(outputs=['silver.a'])\ndef load():\n    pass\n",
            "pipelines/silver/a.sql": "SELECT 1 AS x\n",
        },
        "pipelines/silver/a.sql",
        1,
        "table silver.a is also built by",
    ),
    "two models with one name": (
        {"pipelines/silver/a.sql": "SELECT 1 AS x\n", "pipelines/gold/b.sql": "-- @owner: me\n-- @name: silver_a\nSELECT 2 AS x\n"},
        "pipelines/silver/a.sql",
        1,
        "pipeline name 'silver_a' is also used by",
    ),
    "bad value in header": (
        {"pipelines/silver/a.sql": "-- @owner: me\n-- @materialized: sometimes\nSELECT 1 AS x\n"},
        "pipelines/silver/a.sql",
        2,
        "materialized",
    ),
}


def _error_of(session: Session) -> str:
    """The error a load or a run reports (loading raises; model failures come back in the record)."""
    try:
        record = Runner(session).run()
    except RatError as exc:
        return str(exc)
    assert record.status == "failed", "the run should have failed"
    assert record.error
    return record.error


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_name_file_and_line(session: Session, workspace: Workspace, case: str) -> None:
    files, culprit, line, message = ERROR_CASES[case]
    for rel, text in files.items():
        write(workspace, rel, text)
    before = head(session)
    error = _error_of(session)
    assert f"{workspace.root / culprit}:{line}:" in error, error
    assert message in error, error
    assert head(session) == before
    if case == "two models build one table":
        assert f"{workspace.root / 'pipelines/bronze/load.py'}:4" in error  # the other builder, by its decorator
    if case == "two models with one name":
        assert f"{workspace.root / 'pipelines/gold/b.sql'}:2" in error  # the other one, by its @name line
    if case == "var without default":
        assert error.count("hint: pass --vars threshold=VALUE") == 1


def test_var_given_at_run_time(session: Session, workspace: Workspace) -> None:
    model(workspace, "silver", "a.sql", "SELECT {{ var('threshold') }} AS x\n")
    ok(run(session, variables={"threshold": 7}))
    assert scalar(session, "SELECT x FROM silver.a") == 7


# -- templating -------------------------------------------------------------------------------


def test_macros_vars_env_vars_and_this(session: Session, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    load_bronze(session, 1)
    write(
        workspace,
        "macros/util.sql",
        """
        {% macro positive(col) -%} {{ col }} > 0 {%- endmacro %}
        {% macro cents(col) -%} CAST(round({{ col }} * 100) AS BIGINT) {%- endmacro %}
        """,
    )
    model(
        workspace,
        "silver",
        "sales.sql",
        """
        SELECT txn_id, store_id, {{ cents('unit_price') }} AS price_cents,
               '{{ env_var("RAT_TEST_REGION", "eu") }}' AS region,
               '{{ this }}' AS built_as
        FROM {{ ref('bronze.raw_sales') }}
        WHERE {{ positive('quantity') }} AND {{ positive('unit_price') }}
          AND store_id <> '{{ var("skip_store", "NONE") }}'
        """,
    )
    monkeypatch.delenv("RAT_TEST_REGION", raising=False)
    ok(run(session))
    con = plain_bronze(1)
    expected = (
        "SELECT txn_id, store_id, CAST(round(unit_price * 100) AS BIGINT), 'eu', 'silver.sales' FROM raw_sales "
        "WHERE quantity > 0 AND unit_price > 0 AND store_id <> '{skip}'"
    )
    query = "SELECT txn_id, store_id, price_cents, region, built_as FROM silver.sales"
    assert_same_rows(session, query, con, expected.format(skip="NONE"))

    skipped = con.execute("SELECT store_id FROM raw_sales GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    monkeypatch.setenv("RAT_TEST_REGION", "apac")
    ok(run(session, variables={"skip_store": skipped}))
    assert_same_rows(session, query, con, expected.format(skip=skipped).replace("'eu'", "'apac'"))


def test_env_var_without_default_names_the_line(session: Session, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAT_TEST_UNSET", raising=False)
    path = model(workspace, "silver", "a.sql", "SELECT 1 AS x\nWHERE '{{ env_var('RAT_TEST_UNSET') }}' = ''\n")
    error = _error_of(session)
    assert f"{path}:2:" in error and "env_var('RAT_TEST_UNSET')" in error


# -- materializations, against plain DuckDB ---------------------------------------------------

SILVER_MERGE = """
-- @name: silver_sales
-- @materialized: incremental
-- @unique_key: txn_id
SELECT txn_id, store_id, quantity, unit_price,
       CAST(quantity * unit_price AS DECIMAL(12, 2)) AS total_amount, transaction_time, _batch
FROM {{ ref('bronze.raw_sales') }}
WHERE quantity > 0 AND unit_price > 0
{% if is_incremental() %}
  AND _batch > {{ watermark('_batch') }}
{% endif %}
QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY _batch DESC) = 1
"""
SILVER_EXPECTED = """
SELECT txn_id, store_id, quantity, unit_price, CAST(quantity * unit_price AS DECIMAL(12, 2)), transaction_time, _batch
FROM raw_sales WHERE quantity > 0 AND unit_price > 0
QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY _batch DESC) = 1
"""
SILVER_COLUMNS = "SELECT txn_id, store_id, quantity, unit_price, total_amount, transaction_time, _batch FROM silver.sales"


def test_view_reads_through_to_upstream(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    model(
        workspace,
        "gold",
        "store_counts.sql",
        """
        -- @materialized: view
        SELECT store_id, count(*) AS n, sum(quantity) AS qty FROM {{ ref('bronze.raw_sales') }} GROUP BY store_id
        """,
    )
    record = ok(run(session))
    assert by_model(record)["gold_store_counts"].operation == "view"
    entry = session.contents()["gold.store_counts"]
    assert entry.view_sql is not None and entry.metadata_location == "" and entry.snapshot_id is None
    assert session.table_stats("gold.store_counts")["kind"] == "view"
    expected = "SELECT store_id, count(*), sum(quantity) FROM raw_sales GROUP BY store_id"
    assert_same_rows(session, "SELECT * FROM gold.store_counts", plain_bronze(1), expected)
    # Upstream changes show through the view without running the pipeline again.
    load_bronze(session, 2)
    assert_same_rows(session, "SELECT * FROM gold.store_counts", plain_bronze(1, 2), expected)
    assert not list((session.settings.warehouse / workspace.prefix / "gold").glob("**/*.parquet"))


def test_table_is_rebuilt_in_full(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    model(
        workspace,
        "gold",
        "store_kpis.sql",
        """
        -- @materialized: table
        SELECT store_id, count(*) AS n, sum(quantity * unit_price) AS revenue
        FROM {{ ref('bronze.raw_sales') }} WHERE quantity > 0 GROUP BY store_id
        """,
    )
    expected = "SELECT store_id, count(*), sum(quantity * unit_price) FROM raw_sales WHERE quantity > 0 GROUP BY store_id"
    record = ok(run(session))
    assert by_model(record)["gold_store_kpis"].operation == "create"
    first_files = data_files(session, "gold.store_kpis")
    assert_same_rows(session, "SELECT * FROM gold.store_kpis", plain_bronze(1), expected)
    load_bronze(session, 2, 3)
    record = ok(run(session))
    assert by_model(record)["gold_store_kpis"].operation == "replace"
    assert not (data_files(session, "gold.store_kpis") & first_files)  # every file rewritten
    assert_same_rows(session, "SELECT * FROM gold.store_kpis", plain_bronze(1, 2, 3), expected)


def test_incremental_append_with_this_and_full_refresh(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    model(
        workspace,
        "silver",
        "events.sql",
        """
        -- @materialized: incremental
        -- @incremental_strategy: append
        SELECT txn_id, quantity, _batch FROM {{ ref('bronze.raw_sales') }}
        {% if is_incremental() %}
        WHERE _batch > (SELECT max(_batch) FROM {{ this }})
        {% endif %}
        """,
    )
    expected = "SELECT txn_id, quantity, _batch FROM raw_sales"
    assert by_model(ok(run(session)))["silver_events"].rows_written == 1500
    for n in (2, 3):
        load_bronze(session, n)
        m = by_model(ok(run(session)))["silver_events"]
        assert (m.operation, m.rows_written) == ("append", 500)  # only the new batch
    assert_same_rows(session, "SELECT * FROM silver.events", plain_bronze(1, 2, 3), expected)
    # Nothing new: an incremental run appends nothing.
    assert by_model(ok(run(session)))["silver_events"].rows_written == 0
    # Rows removed upstream stay in an append-only table until a full refresh rebuilds it.
    session.sql("DELETE FROM bronze.raw_sales WHERE _batch = 1")
    ok(run(session))
    assert scalar(session, "SELECT count(*) FROM silver.events") == 2500
    m = by_model(ok(run(session, full_refresh=True)))["silver_events"]
    assert (m.operation, m.rows_written) == ("full-refresh", 1000)
    assert_same_rows(session, "SELECT * FROM silver.events", plain_bronze(2, 3), expected)


def test_incremental_merge_equals_full_refresh(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    model(workspace, "silver", "sales.sql", SILVER_MERGE)
    con = plain_bronze(1)
    first = by_model(ok(run(session)))["silver_sales"]
    assert first.operation == "create"
    assert first.rows_written == con.execute(f"SELECT count(*) FROM ({SILVER_EXPECTED})").fetchone()[0]
    for n in (2, 3):
        load_bronze(session, n)
        con.execute(f"INSERT INTO raw_sales {batch_select(n)}")
        new_valid = con.execute(f"SELECT count(*) FROM raw_sales WHERE _batch = {n} AND quantity > 0 AND unit_price > 0").fetchone()[0]
        keys = session.sql("SELECT txn_id FROM silver.sales").arrow()
        con.register("keys_before", keys)
        updates = con.execute(
            f"SELECT count(*) FROM raw_sales WHERE _batch = {n} AND quantity > 0 AND unit_price > 0 AND txn_id IN (SELECT txn_id FROM keys_before)"
        ).fetchone()[0]
        con.unregister("keys_before")
        m = by_model(ok(run(session)))["silver_sales"]
        # The watermark let through exactly the new batch; the merge updated the keys it already had.
        assert (m.operation, m.rows_written, m.rows_updated) == ("merge", new_valid, updates)
        assert updates > 0
        assert_same_rows(session, SILVER_COLUMNS, con, SILVER_EXPECTED)
    assert scalar(session, "SELECT count(*) - count(DISTINCT txn_id) FROM silver.sales") == 0

    # A full refresh of the same bronze, on another branch, gives the very same rows.
    session.store.create_reference("refresh", "branch", session.branch)
    m = by_model(ok(run(session, full_refresh=True, branch="refresh")))["silver_sales"]
    assert m.operation == "full-refresh"
    incremental = session.sql(SILVER_COLUMNS).arrow()
    refreshed = session.sql(SILVER_COLUMNS, ref="refresh").arrow()
    cmp = duckdb.connect()
    cmp.register("inc", incremental)
    cmp.register("ref", refreshed)
    assert cmp.execute("SELECT count(*) FROM (SELECT * FROM inc EXCEPT ALL SELECT * FROM ref)").fetchone()[0] == 0
    assert cmp.execute("SELECT count(*) FROM (SELECT * FROM ref EXCEPT ALL SELECT * FROM inc)").fetchone()[0] == 0
    assert incremental.num_rows == refreshed.num_rows


def test_incremental_merge_on_a_composite_key(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    # part and seq are each repeated; only the pair identifies a transaction.
    model(
        workspace,
        "silver",
        "parts.sql",
        """
        SELECT CAST(substr(txn_id, 4) AS BIGINT) % 7 AS part, CAST(substr(txn_id, 4) AS BIGINT) // 7 AS seq,
               quantity, payment_method, _batch
        FROM {{ ref('bronze.raw_sales') }}
        {% if is_incremental() %} WHERE _batch > {{ watermark('_batch') }} {% endif %}
        QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY _batch DESC) = 1
        """,
    )
    write(workspace, "pipelines/silver/parts.yaml", "materialized: incremental\nunique_key: [part, seq]\n")
    assert load_project(workspace.root).models["silver_parts"].unique_key == ["part", "seq"]
    expected = """
        SELECT CAST(substr(txn_id, 4) AS BIGINT) % 7, CAST(substr(txn_id, 4) AS BIGINT) // 7, quantity, payment_method, _batch
        FROM raw_sales QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY _batch DESC) = 1
    """
    ok(run(session))
    assert scalar(session, "SELECT count(DISTINCT part) < count(*) AND count(DISTINCT seq) < count(*) FROM silver.parts")
    for n in (2, 3):
        load_bronze(session, n)
        m = by_model(ok(run(session)))["silver_parts"]
        assert (m.operation, m.rows_written) == ("merge", 500) and m.rows_updated > 0
    assert_same_rows(session, "SELECT * FROM silver.parts", plain_bronze(1, 2, 3), expected)


def test_insert_overwrite_replaces_only_touched_partitions(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    model(
        workspace,
        "gold",
        "daily.sql",
        """
        -- @materialized: incremental
        -- @incremental_strategy: insert_overwrite
        -- @partition_by: _month
        SELECT CAST(date_trunc('month', transaction_time) AS DATE) AS _month, CAST(transaction_time AS DATE) AS day,
               count(*) AS n, sum(quantity) AS qty, max(_batch) AS _batch
        FROM {{ ref('bronze.raw_sales') }}
        {% if is_incremental() %}
        WHERE date_trunc('month', transaction_time) IN (
            SELECT date_trunc('month', transaction_time) FROM {{ ref('bronze.raw_sales') }} WHERE _batch > {{ watermark('_batch') }})
        {% endif %}
        GROUP BY ALL
        """,
    )
    expected = """
        SELECT CAST(date_trunc('month', transaction_time) AS DATE), CAST(transaction_time AS DATE), count(*), sum(quantity), max(_batch)
        FROM raw_sales GROUP BY ALL
    """
    ok(run(session))
    assert session.table_stats("gold.daily")["partition_by"] == ["_month"]
    before = data_files(session, "gold.daily")
    assert len({f.split("/_month=")[1].split("/")[0] for f in before}) == 12
    # The next batch only has sales of January and February: only those partitions are rewritten.
    early = "WHERE transaction_time < TIMESTAMP '2024-03-01'"
    load_bronze(session, 2, where=early)
    m = by_model(ok(run(session)))["gold_daily"]
    touched_days = scalar(session, "SELECT count(DISTINCT CAST(transaction_time AS DATE)) FROM bronze.raw_sales WHERE transaction_time < '2024-03-01'")
    assert (m.operation, m.rows_written) == ("insert_overwrite", touched_days)
    after = data_files(session, "gold.daily")
    rewritten = {f for f in before if "/_month=2024-01-01/" in f or "/_month=2024-02-01/" in f}
    assert rewritten and not rewritten & after
    assert len(before - rewritten) == 10 and before - rewritten <= after  # other months kept their files
    con = plain_bronze(1, (2, early))
    assert_same_rows(session, "SELECT * FROM gold.daily", con, expected)
    # A full refresh gives the same rows.
    ok(run(session, full_refresh=True))
    assert_same_rows(session, "SELECT * FROM gold.daily", con, expected)


def test_insert_overwrite_needs_a_partitioned_table(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    model(
        workspace,
        "gold",
        "daily.sql",
        """
        -- @materialized: incremental
        -- @incremental_strategy: insert_overwrite
        SELECT CAST(transaction_time AS DATE) AS _date, count(*) AS n FROM {{ ref('bronze.raw_sales') }} GROUP BY 1
        """,
    )
    ok(run(session))
    record = run(session)
    assert record.status == "failed" and "insert_overwrite needs a partitioned table" in str(record.error)


# -- schema evolution -------------------------------------------------------------------------

EVOLVING = """
-- @materialized: incremental
-- @unique_key: txn_id
SELECT txn_id, {columns} FROM {{{{ ref('bronze.raw_sales') }}}}
{{% if is_incremental() %}} WHERE _batch > {{{{ watermark('_batch') }}}} {{% endif %}}
"""


def _evolve(workspace: Workspace, columns: str) -> None:
    model(workspace, "silver", "evolving.sql", EVOLVING.format(columns=columns))


def test_incremental_schema_evolution(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    _evolve(workspace, "CAST(quantity AS INTEGER) AS qty, _batch")
    ok(run(session))
    assert session.table_stats("silver.evolving")["schema"] == [("txn_id", "VARCHAR", True), ("qty", "INTEGER", True), ("_batch", "INTEGER", True)]

    # A new column is added to the Iceberg schema; rows written before have NULL in it.
    load_bronze(session, 2)
    _evolve(workspace, "CAST(quantity AS INTEGER) AS qty, _batch, payment_method")
    ok(run(session))
    schema = session.table_stats("silver.evolving")["schema"]
    assert [c[0] for c in schema] == ["txn_id", "qty", "_batch", "payment_method"]
    counts = session.sql(
        "SELECT count(*) FILTER (WHERE payment_method IS NULL), count(*) FILTER (WHERE payment_method IS NOT NULL), count(*) FROM silver.evolving"
    ).relation.fetchone()
    con = plain_bronze(1, 2)
    untouched = con.execute("SELECT count(*) FROM raw_sales WHERE _batch = 1 AND txn_id NOT IN (SELECT txn_id FROM raw_sales WHERE _batch = 2)").fetchone()[0]
    assert counts == (untouched, 500, untouched + 500)

    # int -> bigint widens in place; old and new rows read as bigint.
    load_bronze(session, 3)
    _evolve(workspace, "CAST(quantity AS BIGINT) * 1000000000 AS qty, _batch, payment_method")
    ok(run(session))
    assert ("qty", "BIGINT", True) in session.table_stats("silver.evolving")["schema"]
    assert scalar(session, "SELECT max(qty) FROM silver.evolving WHERE _batch = 3") >= 1_000_000_000
    assert scalar(session, "SELECT max(qty) FROM silver.evolving WHERE _batch = 1") <= 20
    assert scalar(session, "SELECT count(*) FROM silver.evolving") == con.execute(
        f"SELECT count(DISTINCT txn_id) FROM ({BATCHES[1]} UNION ALL {BATCHES[2]} UNION ALL {BATCHES[3]})"
    ).fetchone()[0]


def test_dropping_a_column_needs_full_refresh(session: Session, workspace: Workspace, settings: Settings) -> None:
    load_bronze(session, 1)
    _evolve(workspace, "quantity, payment_method, _batch")
    ok(run(session))
    load_bronze(session, 2)
    before_head, before_contents, before_files = head(session), session.contents(), parquet_files(settings)
    _evolve(workspace, "quantity, _batch")
    record = run(session)
    assert record.status == "failed"
    assert "payment_method" in str(record.error) and "--full-refresh" in str(record.error)
    assert head(session) == before_head and session.contents() == before_contents
    assert parquet_files(settings) == before_files

    m = by_model(ok(run(session, full_refresh=True)))["silver_evolving"]
    assert m.operation == "full-refresh"
    assert [c[0] for c in session.table_stats("silver.evolving")["schema"]] == ["txn_id", "quantity", "_batch"]
    assert_same_rows(session, "SELECT * FROM silver.evolving", plain_bronze(1, 2), "SELECT txn_id, quantity, _batch FROM raw_sales")


def test_incompatible_type_change_needs_full_refresh(session: Session, workspace: Workspace) -> None:
    load_bronze(session, 1)
    _evolve(workspace, "quantity, _batch")
    ok(run(session))
    load_bronze(session, 2)
    _evolve(workspace, "CAST(quantity AS VARCHAR) AS quantity, _batch")
    record = run(session)
    assert record.status == "failed" and "--full-refresh" in str(record.error)
    ok(run(session, full_refresh=True))
    assert ("quantity", "VARCHAR", True) in session.table_stats("silver.evolving")["schema"]


# -- atomicity --------------------------------------------------------------------------------

CHAIN_C_GOOD = """
-- @materialized: incremental
-- @unique_key: store_id
SELECT store_id, max(quantity) AS top_qty FROM {{ ref('silver_b') }} GROUP BY store_id
"""
CHAIN_C_BAD = {
    "sql error": "SELECT store_id, no_such_column FROM {{ ref('silver_b') }}\n",
    "duplicate merge keys": """
        -- @materialized: incremental
        -- @unique_key: store_id
        SELECT store_id, quantity AS top_qty FROM {{ ref('silver_b') }}
        """,
}


@pytest.mark.parametrize("failure", list(CHAIN_C_BAD))
def test_failed_run_changes_nothing(session: Session, workspace: Workspace, settings: Settings, failure: str) -> None:
    load_bronze(session, 1)
    model(workspace, "silver", "a.sql", "SELECT txn_id, store_id, quantity, _batch FROM {{ ref('bronze.raw_sales') }}\n")
    model(
        workspace,
        "silver",
        "b.sql",
        """
        -- @materialized: incremental
        -- @unique_key: txn_id
        SELECT * FROM {{ ref('silver.a') }} QUALIFY row_number() OVER (PARTITION BY txn_id ORDER BY _batch DESC) = 1
        """,
    )
    model(workspace, "gold", "c.sql", CHAIN_C_GOOD)
    ok(run(session))
    load_bronze(session, 2)
    before_head, before_contents, before_files = head(session), session.contents(), parquet_files(settings)
    before_rows = {k: scalar(session, f"SELECT count(*) FROM {k}") for k in ("silver.a", "silver.b", "gold.c")}
    model(workspace, "gold", "c.sql", CHAIN_C_BAD[failure])

    record = run(session)
    assert record.status == "failed" and record.commit_hash is None
    states = {m.model: m.status for m in record.models}
    assert states == {"silver_a": "success", "silver_b": "success", "gold_c": "failed"}
    assert record.error.startswith("gold_c: ")
    # Nothing moved: head, table map, rows; the files a and b wrote in this run are gone.
    assert head(session) == before_head
    assert session.contents() == before_contents
    assert {k: scalar(session, f"SELECT count(*) FROM {k}") for k in before_rows} == before_rows
    assert parquet_files(settings) == before_files

    history = RunHistory(settings.home)
    try:
        cols, rows = history.rows("runs")
        runs = {r[cols.index("run_id")]: dict(zip(cols, r, strict=False)) for r in rows}
        mcols, mrows = history.rows("run_models")
    finally:
        history.close()
    saved = runs[record.run_id]
    assert saved["status"] == "failed" and saved["commit_hash"] is None and "gold_c" in saved["error"]
    assert sum(r["status"] == "success" for r in runs.values()) == 1
    models = {r[mcols.index("model")]: dict(zip(mcols, r, strict=False)) for r in mrows if r[mcols.index("run_id")] == record.run_id}
    assert {k: v["status"] for k, v in models.items()} == states
    assert models["gold_c"]["error"]

    # Fixed, the same run lands everything in one commit.
    model(workspace, "gold", "c.sql", CHAIN_C_GOOD)
    record = ok(run(session))
    assert session.store.get_commit(head(session)).parents == (before_head,)
    assert scalar(session, "SELECT count(*) FROM silver.b") == scalar(session, "SELECT count(DISTINCT txn_id) FROM bronze.raw_sales")


def test_downstream_of_a_failure_is_skipped(session: Session, workspace: Workspace) -> None:
    model(workspace, "silver", "a.sql", "SELECT 1 AS x\n")
    model(workspace, "silver", "b.sql", "SELECT x, nope FROM {{ ref('silver.a') }}\n")
    model(workspace, "gold", "c.sql", "SELECT * FROM {{ ref('silver.b') }}\n")
    before = head(session)
    record = run(session)
    assert {m.model: m.status for m in record.models} == {"silver_a": "success", "silver_b": "failed", "gold_c": "skipped"}
    assert record.status == "failed" and head(session) == before and session.contents() == {}


# -- parallelism ------------------------------------------------------------------------------

PARALLEL_PY = """
import sys

import pyarrow as pa

from ratatouille import pipeline


@pipeline(name="bronze_left")
def left():
    sys.modules["_rat_test_parallel"].barrier.wait()
    rat.append("bronze.left", pa.table({"id": [1, 2, 3]}))


@pipeline(name="bronze_right")
def right():
    sys.modules["_rat_test_parallel"].barrier.wait()
    rat.append("bronze.right", pa.table({"id": [4, 5]}))
"""


def test_independent_models_run_in_parallel_in_one_commit(
    settings: Settings, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with reopen_with_overrides(settings, workspace, "{max_parallel_pipelines: 2}") as session:
        assert session.resources.max_parallel_pipelines == 2
        # Each pipeline waits for the other: this only finishes if both run at the same time.
        holder = types.ModuleType("_rat_test_parallel")
        holder.barrier = threading.Barrier(2, timeout=30)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "_rat_test_parallel", holder)
        model(workspace, "bronze", "two.py", PARALLEL_PY)
        model(workspace, "silver", "both.sql", "SELECT * FROM {{ ref('bronze.left') }} UNION ALL SELECT * FROM {{ ref('bronze.right') }}\n")
        base = head(session)
        record = ok(run(session))
        log = session.store.log(session.branch, limit=5)
        assert log[0].hash == record.commit_hash and log[0].parents == (base,)
        assert set(log[0].contents) == {"bronze.left", "bronze.right", "silver.both"}
        assert set(log[0].operations) == {"bronze.left", "bronze.right", "silver.both"}
        assert sorted(r[0] for r in session.sql("SELECT id FROM silver.both").relation.fetchall()) == [1, 2, 3, 4, 5]


def test_parallel_sql_models_commit_once(settings: Settings, workspace: Workspace) -> None:
    with reopen_with_overrides(settings, workspace, "{max_parallel_pipelines: 2}") as session:
        load_bronze(session, 1)
        model(workspace, "silver", "by_store.sql", "SELECT store_id, count(*) AS n FROM {{ ref('bronze.raw_sales') }} GROUP BY 1\n")
        model(workspace, "silver", "by_payment.sql", "SELECT payment_method, count(*) AS n FROM {{ ref('bronze.raw_sales') }} GROUP BY 1\n")
        base = head(session)
        record = ok(run(session))
        assert record.commit_hash is not None
        commit = session.store.get_commit(record.commit_hash)
        assert commit.parents == (base,) and set(commit.operations) == {"silver.by_store", "silver.by_payment"}
        con = plain_bronze(1)
        assert_same_rows(session, "SELECT * FROM silver.by_store", con, "SELECT store_id, count(*) FROM raw_sales GROUP BY 1")
        assert_same_rows(session, "SELECT * FROM silver.by_payment", con, "SELECT payment_method, count(*) FROM raw_sales GROUP BY 1")


# -- build (write-audit-publish) --------------------------------------------------------------


def test_build_publishes_only_when_tests_pass(session: Session, workspace: Workspace) -> None:
    pytest.importorskip("ratatouille_nb.pipeline.quality", reason="quality.py (run_tests) is not written yet")
    from ratatouille_nb.pipeline.build import build

    load_bronze(session, 1)
    model(workspace, "silver", "sales.sql", SILVER_MERGE)
    write(
        workspace,
        "pipelines/silver/sales.yaml",
        """
        columns:
          - name: txn_id
            tests: [not_null, unique]
          - name: quantity
            tests: [positive]
        """,
    )
    before = head(session)
    result = build(session)
    assert result.published, result.reason
    assert head(session) != before and "silver.sales" in session.contents()
    assert result.build_branch not in {r.name for r in session.store.list_references()}

    # A failing error-level test keeps the branch as it was.
    model(workspace, "silver", "sales.sql", SILVER_MERGE.replace("WHERE quantity > 0 AND unit_price > 0", "WHERE true"))
    load_bronze(session, 2)
    published = head(session)
    result = build(session)
    assert not result.published and result.failed_tests
    assert head(session) == published

"""dbt projects run unchanged: the bakery project in tests/fixtures/dbt_bakery (written for these
tests) built with `rat build`, every table compared with plain DuckDB computing the same result
independently from the seed CSVs; config precedence; seeds, snapshots, ephemeral models,
incremental strategies; generic, singular and dbt_utils tests with their configs; selectors and
state; `rat seed`, `rat deps`, `rat docs`, `rat sql` Jinja; and one case per dbt construct that
used to be ignored without a word, now working, warning, or refused naming itself.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.build import build
from ratatouille_nb.pipeline.dag import build_dag
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.loader import load_project
from ratatouille_nb.pipeline.quality import run_selected_tests
from ratatouille_nb.pipeline.selectors import state_oracle
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace
from ratatouille_nb.workspace.manager import find_workspace
from tests.test_pipelines import assert_same_rows

FIXTURE = Path(__file__).parent / "fixtures" / "dbt_bakery"


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    target = tmp_path / "bakery"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def dbt_session(settings: Settings, project_dir: Path) -> Iterator[Session]:
    s = Session(settings, Workspace.load(project_dir))
    yield s
    s.close()


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def plain(project_dir: Path) -> duckdb.DuckDBPyConnection:
    """Plain DuckDB over the project's CSV files: the independent computation of every expectation."""
    con = duckdb.connect()
    seeds = project_dir / "seeds"
    con.execute(f"CREATE TABLE raw_customers AS SELECT * FROM read_csv('{seeds / 'raw_customers.csv'}', header=true)")
    con.execute(f"CREATE TABLE raw_orders AS SELECT * FROM read_csv('{seeds / 'raw_orders.csv'}', header=true)")
    con.execute(
        f"CREATE TABLE raw_payments AS SELECT * FROM read_csv('{seeds / 'raw_payments.csv'}', header=true, delim=';', "
        "types={'amount_cents': 'BIGINT'})"
    )
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{project_dir / 'data' / 'shop_events.csv'}', header=true)")
    return con


def scalar(session: Session, sql: str, ref: str | None = None) -> Any:
    return session.sql(sql, ref=ref).relation.fetchone()[0]


ORDERS_SQL = """
    SELECT o.id AS order_id, o.customer_id, o.order_date, o.status,
           coalesce(sum(p.amount_cents), 0) AS amount_cents,
           coalesce(sum(p.amount_cents) FILTER (WHERE p.method = 'card'), 0) AS card_cents,
           coalesce(sum(p.amount_cents) FILTER (WHERE p.method = 'cash'), 0) AS cash_cents,
           coalesce(sum(p.amount_cents) FILTER (WHERE p.method = 'voucher'), 0) AS voucher_cents,
           md5(o.id::varchar || '-' || o.customer_id::varchar) AS order_key
    FROM raw_orders o LEFT JOIN raw_payments p ON p.order_id = o.id
    WHERE o.order_date >= DATE '2024-01-01'
    GROUP BY ALL
"""


# -- a dbt project folder is a workspace ----------------------------------------------------------


def test_dbt_project_folder_is_a_workspace(settings: Settings, project_dir: Path) -> None:
    ws = Workspace.load(project_dir)
    assert (ws.name, ws.branch, ws.prefix) == ("corner_bakery", "workspace/corner_bakery", "corner_bakery")
    nested = Settings.from_env(home=str(settings.home))
    import os

    cwd = os.getcwd()
    os.chdir(project_dir / "models" / "marts" / "core")
    try:
        assert find_workspace(nested).root == project_dir.resolve()
    finally:
        os.chdir(cwd)
    # A workspace.yaml beside dbt_project.yml takes over (isolation, resources, layers…).
    write(project_dir, "workspace.yaml", "name: bakery-ws\nisolation:\n  s3_prefix: bakery-data\n")
    ws = Workspace.load(project_dir)
    assert (ws.name, ws.prefix) == ("bakery-ws", "bakery-data")
    assert "orders" in load_project(project_dir).models


def test_models_trees_names_layers_and_config_precedence(project_dir: Path) -> None:
    project = load_project(project_dir)
    m = project.models
    assert set(m) == {
        "raw_customers", "raw_orders", "raw_payments", "stg_customers", "stg_orders", "stg_payments", "stg_events",
        "orders", "customers", "payments_by_method", "customers_snapshot", "orders_status_snapshot",
    }
    # File stem names the model; the layer comes from +layer, else the first folder under models/.
    assert (m["stg_customers"].target, m["stg_customers"].materialized) == ("staging.stg_customers", "view")
    assert m["stg_customers"].tags == ["staging"]
    # {{ config() }} in the file beats the project tree (staging is +materialized: view there).
    assert m["stg_orders"].materialized == "ephemeral"
    assert (m["orders"].target, m["orders"].materialized, m["orders"].unique_key, m["orders"].strategy) == (
        "gold.orders", "incremental", ["order_id"], "merge",
    )
    # A deeper folder inherits marts' configs and adds its own tags; the file's config() adds the strategy.
    pbm = m["payments_by_method"]
    assert (pbm.target, pbm.tags, pbm.strategy) == ("gold.payments_by_method", ["finance"], "delete+insert")
    # Seeds: the +layer of the seeds: tree, per-seed delimiter and column_types.
    assert m["raw_payments"].target == "raw.raw_payments" and m["raw_payments"].column_types == {"amount_cents": "BIGINT"}
    assert m["raw_payments"].config["delimiter"] == ";"
    # Snapshots: +target_schema.
    assert m["customers_snapshot"].target == "history.customers_snapshot" and m["customers_snapshot"].materialized == "snapshot"
    # ref('corner_bakery', 'raw_payments'): the two-argument (package) form.
    assert m["stg_payments"].refs == ["raw_payments"]
    assert m["stg_events"].sources == ["shop_files/shop_events"]
    # Descriptions with {{ doc() }} from docs/*.md.
    assert m["customers"].description == "One row per customer: The till's customer number. One per person, never reused."
    assert project.variables["payment_methods"] == ["card", "cash", "voucher"] and project.variables["min_order_cents"] == 100


def test_properties_config_sits_between_project_and_file(project_dir: Path) -> None:
    write(project_dir, "models/marts/finance/_finance.yml", """
        version: 2
        models:
          - name: payments_by_method
            config:
              tags: [money]
              materialized: view
    """)
    model = load_project(project_dir).models["payments_by_method"]
    assert model.tags == ["finance", "money"]  # tags accumulate
    assert model.materialized == "incremental"  # the file's config() wins over the .yml


# -- building the project ----------------------------------------------------------------------


def test_build_matches_plain_duckdb(dbt_session: Session, project_dir: Path) -> None:
    result = build(dbt_session)
    assert result.published, result.reason
    ops = {m.model: m.operation for m in result.run.models}
    assert ops["stg_orders"] == "ephemeral" and ops["stg_customers"] == "view" and ops["raw_orders"] == "create"
    con = plain(project_dir)
    s = dbt_session
    assert_same_rows(s, "SELECT * FROM raw.raw_payments", con, "SELECT * FROM raw_payments")
    assert s.table_stats("raw.raw_payments")["schema"][3][1] == "BIGINT"  # column_types: BIGINT
    assert_same_rows(s, "SELECT * FROM raw.raw_customers", con, "SELECT * FROM raw_customers")
    assert_same_rows(
        s, "SELECT customer_id, full_name, city FROM staging.stg_customers", con,
        "SELECT id, first_name || ' ' || last_name, city FROM raw_customers",
    )
    assert_same_rows(
        s, "SELECT payment_id, amount_euros FROM staging.stg_payments", con,
        "SELECT id, round((amount_cents / 100.0)::decimal(16, 2), 2) FROM raw_payments",
    )
    assert_same_rows(s, "SELECT * FROM gold.orders", con, ORDERS_SQL)
    assert_same_rows(
        s, "SELECT customer_id, full_name, city, orders, lifetime_cents, avg_order_cents FROM gold.customers", con,
        f"""SELECT c.id, c.first_name || ' ' || c.last_name, c.city, count(o.order_id), sum(o.amount_cents),
                   sum(o.amount_cents) / nullif(count(o.order_id), 0)
            FROM raw_customers c LEFT JOIN ({ORDERS_SQL}) o ON o.customer_id = c.id GROUP BY ALL""",
    )
    assert_same_rows(s, "SELECT * FROM gold.payments_by_method", con, "SELECT method, count(*), sum(amount_cents) FROM raw_payments GROUP BY 1")
    assert_same_rows(s, "SELECT event_id, kind FROM staging.stg_events", con, "SELECT event_id, kind FROM events")
    # The ephemeral model is no table: it was inlined as a CTE.
    assert "staging.stg_orders" not in s.contents()
    view_sql = s.contents()["gold.orders"]
    assert view_sql.view_sql is None
    assert_same_rows(
        s, "SELECT id, customer_id, status, dbt_valid_to FROM history.orders_status_snapshot", con,
        "SELECT id, customer_id, status, NULL::TIMESTAMP FROM raw_orders",
    )


def test_ephemeral_model_is_inlined_as_a_cte(dbt_session: Session) -> None:
    runner = Runner(dbt_session)
    runner.run(["+stg_payments", "raw_orders"])
    from ratatouille_nb.pipeline.executor import RunState

    txn = dbt_session.transaction("probe")
    sql = runner.render(RunState(dbt_session, txn, runner.project), runner.project.models["orders"], incremental=False)
    assert sql.startswith("WITH __dbt__cte__stg_orders AS (") and "raw.raw_orders" in sql
    assert "staging.stg_orders" not in sql


def test_second_build_incremental_strategies_and_snapshots(dbt_session: Session, project_dir: Path) -> None:
    assert build(dbt_session).published
    seeds = project_dir / "seeds"
    customers = (seeds / "raw_customers.csv").read_text().replace("2,Bo,Crumb,Paris,2024-01-02 09:00:00", "2,Bo,Crumb,Lille,2024-02-01 09:00:00")
    (seeds / "raw_customers.csv").write_text(customers)
    orders = (seeds / "raw_orders.csv").read_text().replace("13,3,2024-01-07,placed", "13,3,2024-01-07,shipped") + "16,4,2024-01-10,placed\n"
    (seeds / "raw_orders.csv").write_text(orders)
    payments = (seeds / "raw_payments.csv").read_text() + "108;16;cash;600\n"
    (seeds / "raw_payments.csv").write_text(payments)
    result = build(dbt_session)
    assert result.published, result.reason
    ops = {m.model: (m.operation, m.rows_written, m.rows_updated) for m in result.run.models}
    # orders merges the orders on or after its newest order_date (2024-01-09): 15 again and the new 16.
    assert ops["orders"] == ("merge", 2, 1)
    # delete+insert: every method's row is deleted and re-inserted (3 rows).
    assert ops["payments_by_method"] == ("delete+insert", 3, 3)
    con = plain(project_dir)
    s = dbt_session
    # Order 13's new status is older than the watermark the model filters on: an incremental run keeps it.
    assert_same_rows(s, "SELECT * FROM gold.orders", con, f"SELECT * REPLACE (if(order_id = 13, 'placed', status) AS status) FROM ({ORDERS_SQL})")
    assert_same_rows(s, "SELECT * FROM gold.payments_by_method", con, "SELECT method, count(*), sum(amount_cents) FROM raw_payments GROUP BY 1")
    # timestamp snapshot: Bo's old version is closed at the new updated_at, the new one is current.
    assert_same_rows(
        s, "SELECT id, city, dbt_valid_from, dbt_valid_to FROM history.customers_snapshot", con,
        """SELECT id, city, updated_at, NULL::TIMESTAMP FROM raw_customers
           UNION ALL SELECT 2, 'Paris', TIMESTAMP '2024-01-02 09:00:00', TIMESTAMP '2024-02-01 09:00:00'""",
    )
    assert scalar(s, "SELECT count(DISTINCT dbt_scd_id) FROM history.customers_snapshot") == 5
    # check snapshot: order 13 has two versions, the new order one.
    assert_same_rows(
        s, "SELECT id, status, dbt_valid_to IS NULL FROM history.orders_status_snapshot", con,
        "SELECT id, status, true FROM raw_orders UNION ALL SELECT 13, 'placed', false",
    )
    assert ops["customers_snapshot"] == ("snapshot", 1, 1) and ops["orders_status_snapshot"] == ("snapshot", 2, 1)


def test_snapshot_invalidates_hard_deletes(dbt_session: Session, project_dir: Path) -> None:
    path = project_dir / "snapshots" / "customers_snapshot.sql"
    path.write_text(path.read_text().replace("updated_at='updated_at')", "updated_at='updated_at', hard_deletes='invalidate')"))
    runner = Runner(dbt_session)
    assert runner.run(["+customers_snapshot"]).status == "success"
    csv = project_dir / "seeds" / "raw_customers.csv"
    csv.write_text("\n".join(line for line in csv.read_text().splitlines() if not line.startswith("4,")) + "\n")
    record = Runner(dbt_session).run(["+customers_snapshot"])
    assert record.status == "success", record.error
    closed = dbt_session.sql("SELECT id FROM history.customers_snapshot WHERE dbt_valid_to IS NOT NULL").relation.fetchall()
    assert closed == [(4,)]


# -- tests -------------------------------------------------------------------------------------


def test_generic_singular_and_dbt_utils_tests_are_counted_and_named(dbt_session: Session) -> None:
    assert build(dbt_session).published
    results = run_selected_tests(dbt_session)
    by_name = {(r.model, r.test): r for r in results}
    assert {k: r.status for k, r in by_name.items() if r.status != "pass"} == {
        ("orders", "accepted_values(status)"): "warn",  # severity: warn from the test's config:
        ("orders", "assert_few_returns"): "warn",  # {{ config(severity='warn') }} in a singular test
    }
    for key in [
        ("customers", "unique(customer_id)"), ("customers", "dbt_utils.accepted_range(orders)"),
        ("orders", "dbt_utils.unique_combination_of_columns"), ("orders", "dbt_utils.expression_is_true"),
        ("orders", "is_even(amount_cents)"), ("orders", "relationships(customer_id)"), ("orders", "not_null(customer_id)"),
        ("orders", "assert_order_totals_positive"), ("raw_customers", "unique(id)"), ("payments_by_method", "unique(method)"),
    ]:
        assert by_name[key].status == "pass", (key, by_name[key].message)
    assert by_name[("orders", "assert_order_totals_positive")].kind == "singular"
    assert by_name[("orders", "is_even(amount_cents)")].kind == "macro"
    result = CliRunner().invoke(cli, ["--home", str(dbt_session.settings.home), "--workspace", str(dbt_session.workspace.root), "test"])
    assert result.exit_code == 0, result.output
    assert f"{len(results)} test(s) on 'workspace/corner_bakery': {len(results) - 2} passed, 2 warned, 0 failed, 0 errored" in result.output


def test_test_configs_where_error_if_warn_if_store_failures(dbt_session: Session, project_dir: Path) -> None:
    write(project_dir, "models/marts/finance/_finance.yml", """
        version: 2
        models:
          - name: payments_by_method
            columns:
              - name: payments
                tests:
                  - accepted_values:
                      values: [4]
                      config:
                        where: "method = 'card'"
                  - accepted_values:
                      name: few_wrong_counts
                      values: [4]
                      config:
                        error_if: ">5"
                        warn_if: ">1"
                  - accepted_values:
                      name: stored
                      values: [4]
                      config:
                        store_failures: true
    """)
    assert Runner(dbt_session).run(["+payments_by_method"]).status == "success"
    results = {r.test: r for r in run_selected_tests(dbt_session, ["payments_by_method"])}
    assert results["accepted_values(payments)"].status == "pass"  # only card rows looked at
    assert (results["few_wrong_counts"].status, results["few_wrong_counts"].failing) == ("warn", 2)
    stored = results["stored"]
    assert stored.status == "fail" and "failures stored in dbt_test__audit.accepted_values_payments_by_method_payments" in stored.message
    assert scalar(dbt_session, "SELECT count(*) FROM dbt_test__audit.accepted_values_payments_by_method_payments") == 2


def test_relationships_to_ref_failing_blocks_the_build(dbt_session: Session, project_dir: Path) -> None:
    assert build(dbt_session).published
    published = dbt_session.store.get_reference(dbt_session.branch).hash
    csv = project_dir / "seeds" / "raw_customers.csv"
    csv.write_text("\n".join(line for line in csv.read_text().splitlines() if not line.startswith("4,")) + "\n")
    result = build(dbt_session)
    assert not result.published and [(t.model, t.test) for t in result.failed_tests] == [("orders", "relationships(customer_id)")]
    assert dbt_session.store.get_reference(dbt_session.branch).hash == published


# -- selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selectors", "exclude", "expected"),
    [
        (["orders"], [], {"orders"}),
        (["+orders"], [], {"orders", "stg_orders", "stg_payments", "raw_orders", "raw_payments"}),
        (["1+orders"], [], {"orders", "stg_orders", "stg_payments"}),
        (["stg_payments+"], [], {"stg_payments", "orders", "customers", "payments_by_method"}),
        (["stg_payments+1"], [], {"stg_payments", "orders", "payments_by_method"}),
        (["@stg_orders"], [], {"stg_orders", "raw_orders", "orders", "customers", "stg_payments", "raw_payments", "stg_customers",
                               "raw_customers"}),
        (["path:models/staging"], [], {"stg_customers", "stg_orders", "stg_payments", "stg_events"}),
        (["path:models/marts/finance/payments_by_method.sql"], [], {"payments_by_method"}),
        (["tag:finance"], [], {"payments_by_method"}),
        (["config.materialized:incremental"], [], {"orders", "payments_by_method"}),
        (["resource_type:seed"], [], {"raw_customers", "raw_orders", "raw_payments"}),
        (["resource_type:snapshot"], [], {"customers_snapshot", "orders_status_snapshot"}),
        (["source:shop_files"], [], {"stg_events"}),
        (["source:shop_files+"], [], {"stg_events"}),
        (["stg_*"], [], {"stg_customers", "stg_orders", "stg_payments", "stg_events"}),
        (["tag:staging,config.materialized:view"], [], {"stg_customers", "stg_payments", "stg_events"}),
        (["resource_type:seed resource_type:snapshot"], ["raw_orders", "orders_status_snapshot"],
         {"raw_customers", "raw_payments", "customers_snapshot"}),
        (["layer:gold"], ["tag:finance"], {"orders", "customers"}),
        (["gold.orders"], [], {"orders"}),
        (["package:corner_bakery,resource_type:snapshot"], [], {"customers_snapshot", "orders_status_snapshot"}),
    ],
)
def test_selectors_follow_dbt(project_dir: Path, selectors: list[str], exclude: list[str], expected: set[str]) -> None:
    dag = build_dag(load_project(project_dir))
    assert set(dag.select(selectors, exclude=exclude, root=project_dir)) == expected


def test_test_selectors_pick_tests_not_models(dbt_session: Session) -> None:
    assert build(dbt_session).published
    singular = run_selected_tests(dbt_session, ["test_type:singular"])
    assert sorted(r.test for r in singular) == ["assert_few_returns", "assert_order_totals_positive"]
    named = run_selected_tests(dbt_session, ["test_name:unique"])
    assert {(r.model, r.test) for r in named} == {
        ("customers", "unique(customer_id)"), ("orders", "unique(order_id)"), ("raw_customers", "unique(id)"), ("payments_by_method", "unique(method)"),
    }
    assert Runner(dbt_session).select(["test_type:singular"]) == []  # tests are no models to run


@pytest.mark.parametrize(
    ("selector", "needle"),
    [("result:error", "result"), ("exposure:x", "exposure"), ("metric:m", "metric"), ("nope_*", "matches no model"),
     ("config.materialized:", "matches no model"), ("test_type:unit", "unit tests are not supported")],
)
def test_unsupported_or_empty_selectors_name_themselves(project_dir: Path, selector: str, needle: str) -> None:
    dag = build_dag(load_project(project_dir))
    with pytest.raises(PipelineError, match=needle):
        dag.select([selector])


def test_state_modified_and_new_from_run_records(dbt_session: Session, project_dir: Path) -> None:
    assert build(dbt_session).published
    runner = Runner(dbt_session)
    oracle = state_oracle(dbt_session, runner.dag)
    assert oracle("modified") == set() and oracle("new") == set()
    # Change one model's SQL and add a new one.
    path = project_dir / "models" / "staging" / "stg_customers.sql"
    path.write_text(path.read_text().replace("city,", "upper(city) as city,"))
    write(project_dir, "models/marts/core/cities.sql", "select city, count(*) as n from {{ ref('stg_customers') }} group by 1\n")
    runner = Runner(dbt_session)
    assert runner.select(["state:new"]) == ["cities"]
    assert set(runner.select(["state:modified"])) == {"stg_customers", "cities"}
    assert set(runner.select(["state:modified+"])) == {"stg_customers", "cities", "customers"}
    # Building the modified models leaves nothing modified against the branch.
    result = build(dbt_session, ["state:modified+"])
    assert result.published, result.reason
    assert {m.model for m in result.run.models} == {"stg_customers", "cities", "customers"}
    assert Runner(dbt_session).select(["state:modified"]) == []
    # Against another ref: main has none of the tables, so everything is new there.
    assert set(Runner(dbt_session).select(["state:new"], state="main")) >= {"orders", "cities"}


def test_state_needs_a_state_and_cli_flags(dbt_session: Session) -> None:
    dag = build_dag(load_project(dbt_session.workspace.root))
    with pytest.raises(PipelineError, match="need a state"):
        dag.select(["state:modified"])
    home, ws = str(dbt_session.settings.home), str(dbt_session.workspace.root)
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", ws, "run", "-s", "+stg_payments", "--exclude", "raw_payments"])
    assert result.exit_code != 0 and "ref('raw_payments')" in result.output  # excluded upstream that was never built
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", ws, "seed"])
    assert result.exit_code == 0 and "seeded 3 table(s)" in result.output, result.output
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", ws, "run", "-s", "+stg_payments", "--exclude", "raw_payments"])
    assert result.exit_code == 0 and "running 1 model(s)" in result.output, result.output
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", ws, "build", "--select", "state:modified", "--state", "main"])
    assert result.exit_code == 0 and "building 12 model(s)" in result.output, result.output


# -- commands ----------------------------------------------------------------------------------


def test_rat_sql_accepts_the_projects_jinja(dbt_session: Session) -> None:
    assert build(dbt_session).published
    home, ws = str(dbt_session.settings.home), str(dbt_session.workspace.root)
    result = CliRunner().invoke(
        cli, ["--home", home, "--workspace", ws, "sql", "--format", "csv",
              "SELECT count(*) AS n FROM {{ ref('customers') }} WHERE city = '{{ var(\"city\", \"Lyon\") }}'"],
    )
    assert result.exit_code == 0 and result.output.splitlines()[:2] == ['"n"', "2"], result.output
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", ws, "sql", "--format", "csv",
                                      "SELECT {{ dbt_utils.safe_divide('10', '4') }} AS q, {{ var('min_order_cents') }} AS m"])
    assert result.output.splitlines()[:2] == ['"q","m"', "2.5,100"], result.output
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", ws, "sql", "SELECT * FROM {{ ref('x; drop table y') }}"])
    assert result.exit_code == 1 and "not a model or table name" in result.output


def test_rat_deps_says_what_it_cannot_fetch(project_dir: Path, settings: Settings) -> None:
    home = str(settings.home)
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", str(project_dir), "deps"])
    assert result.exit_code == 0 and "dbt_utils            shipped" in result.output
    write(project_dir, "packages.yml", """
        packages:
          - package: dbt-labs/dbt_utils
            version: 1.1.1
          - package: calogica/dbt_expectations
            version: 0.10.0
          - local: ../shared_macros
    """)
    write(project_dir.parent, "shared_macros/dbt_project.yml", "name: shared_macros\n")
    write(project_dir.parent, "shared_macros/macros/shout.sql", "{% macro shout(x) %}upper({{ x }}){% endmacro %}\n")
    result = CliRunner().invoke(cli, ["--home", home, "--workspace", str(project_dir), "deps"])
    assert result.exit_code == 1
    assert "dbt_expectations     missing   cannot be fetched here (Ratatouille does not download dbt packages)" in result.output
    assert "shared_macros        local" in result.output
    with pytest.raises(PipelineError, match="dbt package 'dbt_expectations'"):
        load_project(project_dir)
    # Copied into dbt_packages/, its macros load as they are.
    write(project_dir, "dbt_packages/dbt_expectations/dbt_project.yml", "name: dbt_expectations\n")
    write(project_dir, "dbt_packages/dbt_expectations/macros/m.sql", "{% macro twice(x) %}({{ x }}) * 2{% endmacro %}\n")
    write(project_dir, "models/staging/shout.sql", "select {{ shout(\"'a'\") }} as s, {{ dbt_expectations.twice(21) }} as n\n")
    assert load_project(project_dir).models["shout"].materialized == "view"


def test_rat_docs_writes_a_static_site(dbt_session: Session) -> None:
    assert build(dbt_session).published
    result = CliRunner().invoke(cli, ["--home", str(dbt_session.settings.home), "--workspace", str(dbt_session.workspace.root), "docs"])
    assert result.exit_code == 0, result.output
    import json

    site = dbt_session.workspace.root / "target" / "docs"
    data = json.loads((site / "site.json").read_text())
    nodes = {n["id"]: n for n in data["nodes"]}
    orders = nodes["gold.orders"]
    assert orders["description"] == "Orders with their payments, pivoted by method."
    assert {c["name"]: c["description"] for c in orders["columns"]}["status"] == "Where an order is: placed, shipped, completed or returned."
    assert {c["name"]: c["type"] for c in orders["columns"]}["amount_cents"] == "DECIMAL(38,0)"  # DuckDB type names
    assert "relationships(customer_id)" in [t["name"] for t in orders["tests"]]
    assert orders["last_run"]["status"] == "success"
    assert {"source": "seeds/raw_orders.csv", "target": "raw.raw_orders", "kind": "file"} in data["edges"]
    assert {"source": "data/shop_events.csv", "target": "staging.stg_events", "kind": "file"} in data["edges"]
    assert "<svg id=\"graph\"" in (site / "index.html").read_text()


def test_lineage_shows_descriptions(dbt_session: Session) -> None:
    assert build(dbt_session).published
    result = CliRunner().invoke(cli, ["--home", str(dbt_session.settings.home), "--workspace", str(dbt_session.workspace.root),
                                      "lineage", "orders"])
    assert "gold.orders: Orders with their payments, pivoted by method." in result.output
    assert "  status: Where an order is: placed, shipped, completed or returned." in result.output
    assert "staging.stg_orders  (model stg_orders, sql, ephemeral, inlined as a CTE)" in result.output


# -- what used to be ignored without a word ---------------------------------------------------


def test_warnings_name_file_and_line(project_dir: Path) -> None:
    write(project_dir, "models/staging/stg_flags.sql", """
        {{ config(materialized='view', grants={'select': ['bi']}, frobnicate=true, on_schema_change='ignore') }}
        select 1 as x
    """)
    write(project_dir, "models/staging/_stg.yml", "version: 2\nmodels:\n  - name: stg_orders\n    columns:\n      - name: order_id\n        tests: [unique]\n")
    write(project_dir, "models/staging/_exposures.yml", """
        version: 2
        exposures:
          - name: dashboard
        widgets: []
        models:
          - name: stg_flags
            constraints: []
            colour: blue
    """)
    dbt_project = project_dir / "dbt_project.yml"
    dbt_project.write_text(dbt_project.read_text().replace("      +tags: [staging]\n", "      +tags: [staging]\n      +persist_docs: {relation: true}\n      +colour: red\n"))
    warnings = load_project(project_dir).warnings
    stg = project_dir / "models" / "staging"
    assert f"{dbt_project}:27: config 'persist_docs' has no effect in Ratatouille (descriptions are kept in lineage and `rat docs`)" in warnings
    assert f"{dbt_project}:28: unknown config 'colour' (ignored)" in warnings
    assert sum("config 'colour'" in w for w in warnings) == 1
    assert f"{stg / '_stg.yml'}: the 1 test(s) of ephemeral model stg_orders are not run (it has no table)" in "\n".join(warnings)  # once, where it is written, not once per model
    assert f"{stg / 'stg_flags.sql'}:1: config 'grants' has no effect in Ratatouille" in "\n".join(warnings)
    assert f"{stg / 'stg_flags.sql'}:1: unknown config 'frobnicate' (ignored)" in warnings
    assert any("on_schema_change 'ignore' behaves as 'append_new_columns'" in w for w in warnings)
    assert f"{stg / '_exposures.yml'}:2: 'exposures' ignored: exposures are not modelled (products are Ratatouille's published interface)" in warnings
    assert f"{stg / '_exposures.yml'}:4: unknown properties key 'widgets' (ignored)" in warnings
    assert f"{stg / '_exposures.yml'}:7: 'constraints' has no effect in Ratatouille (constraints are not enforced)" in warnings
    assert f"{stg / '_exposures.yml'}:8: unknown model property 'colour' (ignored)" in warnings


@pytest.mark.parametrize(
    ("rel", "text", "needle"),
    [
        ("models/staging/hooked.sql", "{{ config(post_hook='grant select on {{ this }} to bi') }}\nselect 1 as x\n",
         "hooked.sql:1: config 'post_hook' is not supported"),
        ("models/staging/py_model.py", "def model(dbt, session):\n    return None\n", "py_model.py: dbt Python models are not supported"),
        ("macros/mat.sql", "{% materialization lazy, default %}{% endmaterialization %}\n",
         "mat.sql:1: template syntax error: Encountered unknown tag 'materialization'"),
        ("models/staging/micro.sql", "{{ config(materialized='incremental', incremental_strategy='microbatch', unique_key='x') }}\nselect 1 as x\n",
         "incremental_strategy 'microbatch' is not supported"),
        ("models/staging/mv.sql", "{{ config(materialized='materialized_view') }}\nselect 1 as x\n", "unknown materialization 'materialized_view'"),
        ("models/staging/_unit.yml", "version: 2\nunit_tests:\n  - name: t\n", "_unit.yml:2: top-level 'unit_tests' is not supported"),
        ("models/staging/bad_test.yml", "version: 2\nmodels:\n  - name: stg_customers\n    columns:\n      - name: city\n        tests: [nope]\n",
         "bad_test.yml:6: unknown generic test 'nope'"),
        ("models/staging/no_source.sql", "select * from {{ source('nowhere', 't') }}\n", "source('nowhere', 't') is not declared"),
        ("models/staging/graph_use.sql", "select {{ graph.nodes | length }} as n\n", "'graph' is undefined"),
        ("snapshots/_snaps.yml", "version: 2\nsnapshots:\n  - name: s\n    relation: ref('raw_orders')\n",
         "_snaps.yml:4: snapshots defined in YAML (relation:) are not supported"),
        ("models/staging/stmt.sql", "{% call statement('x', fetch_result=True) %}select 1{% endcall %}\nselect 1 as x\n",
         "'statement' is undefined"),
    ],
)
def test_unsupported_constructs_are_refused_naming_themselves(project_dir: Path, rel: str, text: str, needle: str) -> None:
    write(project_dir, rel, text)
    with pytest.raises(RatError) as info:
        load_project(project_dir)
    assert needle in str(info.value)


def test_run_hooks_in_dbt_project_are_refused(project_dir: Path) -> None:
    path = project_dir / "dbt_project.yml"
    path.write_text(path.read_text() + "on-run-end:\n  - \"select 1\"\n")
    with pytest.raises(PipelineError, match=r"dbt_project.yml:\d+: 'on-run-end' is not supported"):
        load_project(project_dir)


def test_incremental_merge_without_unique_key_is_refused(project_dir: Path) -> None:
    write(project_dir, "models/staging/inc.sql", "{{ config(materialized='incremental', incremental_strategy='delete+insert') }}\nselect 1 as x\n")
    with pytest.raises(PipelineError, match="incremental delete\\+insert needs a unique_key"):
        load_project(project_dir)


def test_jinja_context_run_query_log_exceptions_modules_this(dbt_session: Session, project_dir: Path) -> None:
    write(project_dir, "macros/ctx.sql", """
        {% macro methods_seen() %}
          {% set rows = run_query("select distinct method from " ~ ref('raw_payments') ~ " order by 1") %}
          {% if execute %}{{ return(rows.columns[0].values()) }}{% else %}{{ return([]) }}{% endif %}
        {% endmacro %}
    """)
    write(project_dir, "models/marts/core/context_probe.sql", """
        {{ log('probing ' ~ this.identifier, info=True) }}
        {% if var('explode', false) %}{{ exceptions.raise_compiler_error('exploded on purpose') }}{% endif %}
        select
          '{{ this.schema }}' as this_schema,
          '{{ target.type }}' as target_type,
          {{ target.threads }} as threads,
          '{{ methods_seen() | join("|") }}' as methods,
          '{{ modules.datetime.date(2024, 2, 29).isoformat() }}' as leap_day,
          {{ fromjson(tojson({"n": 7})).n }} as seven,
          {{ adapter.quote('odd name') }} as quoted
        from (select 1 as "odd name")
    """)
    runner = Runner(dbt_session)
    assert runner.run(["+context_probe"]).status == "success"
    row = dbt_session.sql("SELECT * FROM gold.context_probe").relation.fetchone()
    assert row == ("gold", "duckdb", 1, "card|cash|voucher", "2024-02-29", 7, 1)
    record = Runner(dbt_session).run(["context_probe"], variables={"explode": True})
    assert record.status == "failed" and "context_probe.sql:2: compilation error: exploded on purpose" in (record.error or "")


def test_sources_on_the_branch_reader_calls_and_versioned_refs(dbt_session: Session, project_dir: Path) -> None:
    dbt_session.sql("CREATE TABLE landing.visits AS SELECT * FROM (VALUES (1, 'web'), (2, 'app')) AS t(id, channel)")
    events = (project_dir / "data" / "shop_events.csv").resolve()
    write(project_dir, "models/staging/_more_sources.yml", f"""
        version: 2
        sources:
          - name: tracking
            schema: landing
            tables:
              - name: visits
          - name: raw_reader
            tables:
              - name: events
                external_location: "read_csv('{events}', header = true)"
    """)
    write(project_dir, "models/staging/visits_v1.sql", "select id from {{ source('tracking', 'visits') }}\n")
    write(project_dir, "models/staging/visits_v2.sql", "select id, channel from {{ source('tracking', 'visits') }}\n")
    write(project_dir, "models/staging/latest_visits.sql", """
        select v.*, (select count(*) from {{ source('raw_reader', 'events') }}) as events
        from {{ ref('visits', v=2) }} as v
    """)
    record = Runner(dbt_session).run(["+latest_visits"])
    assert record.status == "success", record.error
    assert sorted(dbt_session.sql("SELECT * FROM staging.latest_visits").relation.fetchall()) == [(1, "web", 4), (2, "app", 4)]
    reads = next(m.reads for m in record.models if m.model == "visits_v2")
    assert "landing.visits" in reads


def test_shipped_dbt_utils_macros(dbt_session: Session, project_dir: Path) -> None:
    write(project_dir, "models/marts/core/utils_star.sql", """
        select {{ dbt_utils.star(ref('raw_customers'), except=['updated_at', 'last_name'], relation_alias='c') }}
        from {{ ref('raw_customers') }} as c
    """)
    write(project_dir, "models/marts/core/utils_union.sql", """
        {{ dbt_utils.union_relations([ref('raw_orders'), ref('raw_customers')], include=['id']) }}
    """)
    write(project_dir, "models/marts/core/utils_spine.sql", """
        {{ dbt_utils.date_spine('day', "cast('2024-01-01' as date)", "cast('2024-01-05' as date)") }}
    """)
    write(project_dir, "models/marts/core/utils_pivot.sql", """
        select order_id,
          {{ dbt_utils.pivot('method', dbt_utils.get_column_values(ref('raw_payments'), 'method', order_by='method'),
                             agg='sum', then_value='amount_cents', prefix='m_') }}
        from {{ ref('stg_payments') }}
        group by order_id
    """)
    write(project_dir, "models/marts/core/_utils.yml", """
        version: 2
        models:
          - name: utils_spine
            columns:
              - name: date_day
                tests:
                  - dbt_utils.not_null_proportion:
                      at_least: 0.99
                  - dbt_utils.at_least_one
                  - dbt_utils.not_constant
          - name: utils_star
            tests:
              - dbt_utils.equal_rowcount:
                  compare_model: ref('raw_customers')
    """)
    record = Runner(dbt_session).run(["+utils_star", "+utils_union", "+utils_spine", "+utils_pivot"])
    assert record.status == "success", record.error
    con = plain(project_dir)
    s = dbt_session
    assert [c[0] for c in s.table_stats("gold.utils_star")["schema"]] == ["id", "first_name", "city"]
    assert_same_rows(s, "SELECT * FROM gold.utils_star", con, "SELECT id, first_name, city FROM raw_customers")
    assert_same_rows(
        s, "SELECT * FROM gold.utils_union", con,
        "SELECT id, 'raw.raw_orders' FROM raw_orders UNION ALL SELECT id, 'raw.raw_customers' FROM raw_customers",
    )
    assert_same_rows(s, "SELECT * FROM gold.utils_spine", con, "SELECT range FROM range(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-05', INTERVAL 1 DAY)")
    pivot = ", ".join(f"sum(if(method = '{m}', amount_cents, 0))" for m in ("card", "cash", "voucher"))
    assert_same_rows(s, "SELECT * FROM gold.utils_pivot", con, f"SELECT order_id, {pivot} FROM raw_payments GROUP BY 1")
    assert [c[0] for c in s.table_stats("gold.utils_pivot")["schema"]] == ["order_id", "m_card", "m_cash", "m_voucher"]
    results = {r.test: r.status for r in run_selected_tests(s, ["utils_spine", "utils_star"])}
    assert results == {
        "dbt_utils.not_null_proportion(date_day)": "pass", "dbt_utils.at_least_one(date_day)": "pass",
        "dbt_utils.not_constant(date_day)": "pass", "dbt_utils.equal_rowcount": "pass",
    }


def test_an_old_runs_db_gains_the_state_columns(tmp_path: Path) -> None:
    import sqlite3

    from ratatouille_nb.pipeline.runs import MIGRATIONS, RunHistory

    path = tmp_path / "runs.db"
    con = sqlite3.connect(path)
    con.executescript(str(MIGRATIONS[0]))
    con.execute("INSERT INTO run_models (run_id, model, target, status) VALUES ('r1', 'm', 'gold.m', 'success')")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    history = RunHistory(tmp_path)
    try:
        assert history.fingerprint("ws", "gold.m", "123") is None  # the new columns exist, old rows are NULL there
    finally:
        history.close()
    con = sqlite3.connect(path)
    assert {r[1] for r in con.execute("PRAGMA table_info(run_models)")} >= {"fingerprint", "state_key"}
    assert con.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    con.close()

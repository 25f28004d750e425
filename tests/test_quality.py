"""Data tests (`rat test`) and `rat run` from the CLI: every test kind, severities, types, freshness."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.api import Rat
from ratatouille_nb.cli.main import cli
from ratatouille_nb.cli.pipelines import parse_vars
from ratatouille_nb.engine.session import Session
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.loader import load_project
from ratatouille_nb.pipeline.model import Freshness
from ratatouille_nb.pipeline.quality import TestResult, blocking, normalize_type, run_selected_tests, run_tests, types_compatible
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

CUSTOMERS = "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) t(customer_id, name)"

# id 4 is duplicated, customer 9 does not exist, one NULL customer, two non-positive amounts, one odd status.
ORDERS = """
SELECT CAST(id AS BIGINT) AS id, customer_id, CAST(amount AS DECIMAL(10, 2)) AS amount, status,
       CAST(day AS DATE) AS day
FROM (VALUES (1, 1, 10.0, 'paid', '2024-01-01'), (2, 2, 20.0, 'paid', '2024-01-01'), (3, 9, -5.0, 'lost', '2024-01-02'),
             (4, NULL, 0.0, 'weird', '2024-01-02'), (4, 3, 7.0, 'paid', '2024-01-03')) t(id, customer_id, amount, status, day)
"""

ORDERS_YAML = """
columns:
  - name: id
    type: bigint
    tests: [not_null, unique]
  - name: customer_id
    type: integer
    tests:
      - not_null
      - relationships: {to: silver.customers, field: customer_id}
  - name: amount
    type: decimal(10,2)
    tests:
      - positive
      - expression: "< 100"
      - expression: "amount <> -5"
  - name: status
    type: varchar
    tests:
      - accepted_values: {values: [paid, lost], severity: warn}
  - name: day
    type: date
tests:
  - name: one_big_order
    sql: SELECT count(*) FROM {{ this }} WHERE amount > 15
    expect: 1
  - name: no_big_orders
    sql: SELECT count(*) FROM {{ this }} WHERE amount > 15
  - name: orders_of_a
    sql: |
      SELECT o.* FROM {{ this }} o JOIN {{ ref('silver_customers') }} c USING (customer_id)
      WHERE c.name = 'a'
    severity: warn
"""


def write(ws: Workspace, relative: str, text: str) -> Path:
    path = ws.root / "pipelines" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def build(session: Session, *selectors: str) -> None:
    record = Runner(session).run(list(selectors))
    assert record.status == "success", record.error


def by_name(results: list[TestResult]) -> dict[str, TestResult]:
    out = {r.test: r for r in results}
    assert len(out) == len(results), [r.test for r in results]
    return out


@pytest.fixture
def shop(workspace: Workspace, session: Session) -> Session:
    """silver.customers and silver.orders (with every column test), built on the workspace branch."""
    write(workspace, "silver/customers.sql", CUSTOMERS)
    write(workspace, "silver/customers.yaml", """
        columns:
          - name: customer_id
            tests: [not_null, unique, positive]
          - name: name
            tests:
              - accepted_values: [a, b, c]
              - expression: "length(name) = 1"
    """)
    write(workspace, "silver/orders.sql", ORDERS)
    write(workspace, "silver/orders.yaml", ORDERS_YAML)
    build(session)
    return session


def test_every_column_test_kind_passes_on_clean_data(shop: Session) -> None:
    project = load_project(shop.workspace.root)
    results = by_name(run_tests(shop, project, ["silver_customers"]))
    assert set(results) == {"not_null(customer_id)", "unique(customer_id)", "positive(customer_id)",
                            "accepted_values(name)", "expression(name)"}
    for r in results.values():
        assert r.status == "pass", r
        assert r.failing == 0 and r.sample == [] and r.model == "silver_customers" and r.target == "silver.customers"
        assert "silver.customers" in r.sql
    assert blocking(list(results.values())) == []


def test_column_tests_fail_with_counts_and_sample_rows(shop: Session) -> None:
    project = load_project(shop.workspace.root)
    results = by_name([r for r in run_tests(shop, project, ["silver.orders"]) if r.kind != "expression"])  # by table name

    assert results["not_null(id)"].status == "pass"

    uniq = results["unique(id)"]
    assert (uniq.status, uniq.failing, uniq.kind, uniq.column) == ("fail", 1, "unique", "id")
    assert uniq.sample == [{"id": 4, "n_records": 2}]

    nn = results["not_null(customer_id)"]
    assert (nn.status, nn.failing) == ("fail", 1)
    assert nn.sample[0]["id"] == 4 and nn.sample[0]["customer_id"] is None and nn.sample[0]["status"] == "weird"

    rel = results["relationships(customer_id)"]
    assert (rel.status, rel.failing) == ("fail", 1)
    assert [row["customer_id"] for row in rel.sample] == [9]

    pos = results["positive(amount)"]
    assert (pos.status, pos.failing) == ("fail", 2)
    assert sorted(float(row["amount"]) for row in pos.sample) == [-5.0, 0.0]

    assert uniq.severity == "error" and uniq.blocking and uniq.expected == 0


def test_two_tests_of_one_kind_on_one_column_both_run(shop: Session) -> None:
    project = load_project(shop.workspace.root)
    results = [r for r in run_tests(shop, project, ["silver_orders"]) if r.kind == "expression"]
    assert [(r.test, r.status, r.failing) for r in results] == [("expression(amount)", "pass", 0), ("expression(amount)", "fail", 1)]
    assert results[1].sample[0]["id"] == 3
    assert '"amount" < 100' in results[0].sql  # an expression starting with an operator applies to the column


def test_warn_severity_gives_warn_not_fail(shop: Session) -> None:
    project = load_project(shop.workspace.root)
    results = [r for r in run_tests(shop, project, ["silver_orders"]) if r.kind == "accepted_values"]
    (av,) = results
    assert (av.status, av.severity, av.failing) == ("warn", "warn", 1)
    assert av.sample[0]["status"] == "weird"
    assert not av.blocking


def test_custom_sql_tests_compare_the_count_with_expect(shop: Session) -> None:
    project = load_project(shop.workspace.root)
    results = {r.test: r for r in run_tests(shop, project, ["silver_orders"]) if r.kind == "sql"}
    one = results["one_big_order"]
    assert (one.status, one.failing, one.expected) == ("pass", 1, 1)
    assert one.sql == "SELECT count(*) FROM silver.orders WHERE amount > 15"
    none = results["no_big_orders"]
    assert (none.status, none.failing, none.expected) == ("fail", 1, 0)
    assert "returned 1, expected 0" in none.message
    # A custom test returning rows (not one count): the rows are the offenders; ref() resolves models.
    rows = results["orders_of_a"]
    assert (rows.status, rows.failing) == ("warn", 1)
    assert rows.sample[0]["id"] == 1 and rows.sample[0]["status"] == "paid"
    assert "silver.customers" in rows.sql


def test_custom_sql_uses_macros_and_template_errors_name_the_yaml_line(workspace: Workspace, session: Session) -> None:
    (workspace.root / "macros").mkdir(exist_ok=True)
    (workspace.root / "macros" / "checks.sql").write_text("{% macro negative(col) %}{{ col }} < 0{% endmacro %}\n")
    write(workspace, "silver/orders.sql", ORDERS)
    yaml_path = write(workspace, "silver/orders.yaml", """
        tests:
          - name: negatives
            sql: SELECT count(*) FROM {{ this }} WHERE {{ negative('amount') }}
            expect: 1
          - name: broken_template
            sql: SELECT count(*) FROM {{ no_such_macro() }}
          - name: broken_sql
            sql: SELECT count(*) FROM {{ this }} WHERE no_such_column > 0
          - name: missing_ref
            sql: SELECT count(*) FROM {{ ref('silver.nothing') }}
    """)
    build(session)
    results = by_name(run_tests(session, load_project(workspace.root), ["silver_orders"]))
    assert results["negatives"].status == "pass" and results["negatives"].failing == 1
    assert "amount < 0" in results["negatives"].sql
    broken = results["broken_template"]
    assert broken.status == "error" and broken.blocking
    assert f"{yaml_path}:5:" in broken.message and "no_such_macro" in broken.message
    sql_error = results["broken_sql"]
    assert sql_error.status == "error" and "no_such_column" in sql_error.message and "Binder Error" in sql_error.message
    assert "silver.nothing" in results["missing_ref"].message and results["missing_ref"].status == "error"


def test_a_test_on_a_missing_column_errors(workspace: Workspace, session: Session) -> None:
    write(workspace, "silver/customers.sql", CUSTOMERS)
    write(workspace, "silver/customers.yaml", """
        columns:
          - name: nope
            tests: [not_null]
          - name: name
            tests:
              - relationships: {to: silver_customers, field: missing_field}
    """)
    build(session)
    results = by_name(run_tests(session, load_project(workspace.root), ["silver_customers"]))
    nn = results["not_null(nope)"]
    assert nn.status == "error" and nn.failing == 0 and nn.blocking
    assert 'column "nope" not found' in nn.message
    assert results["relationships(name)"].status == "error" and "missing_field" in results["relationships(name)"].message


def test_declared_types(workspace: Workspace, session: Session) -> None:
    write(workspace, "silver/orders.sql", ORDERS)
    write(workspace, "silver/orders.yaml", """
        columns:
          - {name: id, type: long}
          - {name: customer_id, type: int}
          - {name: amount, type: "decimal(10, 2)"}
          - {name: status, type: text}
          - {name: day, type: date}
          - {name: ID, type: bigint}
          - {name: amount, type: decimal}
          - {name: day, type: timestamp}
          - {name: customer_id, type: bigint}
          - {name: ghost, type: string}
    """)
    build(session)
    results = run_tests(session, load_project(workspace.root), ["silver_orders"])
    assert [(r.test, r.status) for r in results] == [
        ("type(id)", "pass"), ("type(customer_id)", "pass"), ("type(amount)", "pass"), ("type(status)", "pass"),
        ("type(day)", "pass"), ("type(ID)", "pass"), ("type(amount)", "pass"),
        ("type(day)", "fail"), ("type(customer_id)", "fail"), ("type(ghost)", "fail"),
    ]
    assert all(r.kind == "type" and r.severity == "error" for r in results)
    assert results[7].message == "declared timestamp, found date"
    assert results[8].message == "declared bigint, found int"
    assert "ghost is missing" in results[9].message


@pytest.mark.parametrize(
    ("declared", "actual", "ok"),
    [
        ("string", "VARCHAR", True), ("varchar(20)", "string", True), ("text", "string", True),
        ("int", "INTEGER", True), ("integer", "int", True), ("long", "BIGINT", True), ("bigint", "long", True),
        ("int", "long", False), ("float", "FLOAT", True), ("double", "DOUBLE", True), ("float", "double", False),
        ("decimal(12,2)", "decimal(12, 2)", True), ("numeric(12, 2)", "DECIMAL(12,2)", True), ("decimal(12,2)", "decimal(38, 2)", False),
        ("decimal", "decimal(38, 2)", True), ("date", "date", True), ("timestamp", "TIMESTAMP", True),
        ("timestamptz", "TIMESTAMP WITH TIME ZONE", True), ("timestamp", "timestamptz", False), ("boolean", "BOOLEAN", True),
        ("bool", "boolean", True), ("date", "timestamp", False),
    ],
)
def test_type_compatibility(declared: str, actual: str, ok: bool) -> None:
    assert types_compatible(declared, actual) is ok
    assert normalize_type("DECIMAL(12, 2)") == "decimal(12,2)"


def test_freshness_warn_and_error(workspace: Workspace, session: Session) -> None:
    now = datetime.now(UTC)
    old = (now - timedelta(hours=30)).strftime("%Y-%m-%d %H:%M:%S")
    write(workspace, "silver/events.sql", f"SELECT i AS id, TIMESTAMP '{old}' - INTERVAL (i) MINUTE AS loaded_at FROM range(3) t(i)")
    write(workspace, "silver/events.yaml", """
        freshness:
          warn_after: {hours: 6}
          error_after: {hours: 24}
          column: loaded_at
    """)
    build(session)
    project = load_project(workspace.root)

    (fail,) = run_tests(session, project, ["silver_events"])
    assert (fail.test, fail.kind, fail.status, fail.severity) == ("freshness", "freshness", "fail", "error")
    assert fail.age_hours == pytest.approx(30, abs=0.1)
    assert "age 30.0h" in fail.message and fail.blocking

    def with_freshness(**kw: object) -> list[TestResult]:
        model = project.models["silver_events"]
        project.models["silver_events"] = model.model_copy(update={"freshness": Freshness(**kw)})
        return run_tests(session, project, ["silver_events"])

    (warn,) = with_freshness(warn_after_hours=6, error_after_hours=48, column="loaded_at")
    assert (warn.status, warn.severity) == ("warn", "error") and not warn.blocking
    (warn_only,) = with_freshness(warn_after_hours=12, column="loaded_at")
    assert (warn_only.status, warn_only.severity) == ("warn", "warn")
    (fresh,) = with_freshness(warn_after_hours=31, error_after_hours=48, column="loaded_at")
    assert fresh.status == "pass" and fresh.age_hours == pytest.approx(30, abs=0.1)
    # Without a column, the age is that of the table's current snapshot (just written).
    (snap,) = with_freshness(warn_after_hours=1, error_after_hours=2)
    assert snap.status == "pass" and snap.age_hours is not None and snap.age_hours < 0.5 and "snapshot at" in snap.message
    (late,) = run_tests(session, project, ["silver_events"], now=now + timedelta(hours=3))
    assert late.status == "fail" and late.age_hours == pytest.approx(3, abs=0.5)
    (bad,) = with_freshness(warn_after_hours=1, column="nope")
    assert bad.status == "error" and "nope" in bad.message


def test_tests_of_a_model_not_run_yet_error(workspace: Workspace, session: Session) -> None:
    write(workspace, "silver/customers.sql", CUSTOMERS)
    write(workspace, "silver/customers.yaml", "columns:\n  - {name: customer_id, type: int, tests: [not_null]}\n")
    results = run_tests(session, load_project(workspace.root), ["silver_customers"])
    assert [(r.test, r.status) for r in results] == [("not_null(customer_id)", "error"), ("type(customer_id)", "error")]
    assert all("run the model first" in r.message and "silver.customers" in r.message for r in results)


def test_view_models_and_refs(workspace: Workspace, session: Session) -> None:
    write(workspace, "silver/orders.sql", ORDERS)
    write(workspace, "gold/paid.sql", "-- @materialized: view\nSELECT id, amount FROM {{ ref('silver_orders') }} WHERE status = 'paid'")
    write(workspace, "gold/paid.yaml", """
        columns:
          - name: id
            type: bigint
            tests: [unique]
          - name: amount
            type: decimal(10,2)
            tests: [positive]
    """)
    build(session)
    tag_hash = session.store.create_reference("v1", "tag", session.branch).hash
    assert tag_hash
    results = run_tests(session, load_project(workspace.root), ["gold_paid"])
    assert [(r.test, r.status) for r in results] == [("unique(id)", "pass"), ("positive(amount)", "pass"),
                                                      ("type(id)", "pass"), ("type(amount)", "pass")]
    # Break the data on the branch: the tag still passes, the branch head fails.
    write(workspace, "silver/orders.sql", ORDERS.replace("10.0, 'paid'", "-10.0, 'paid'"))
    build(session)
    project = load_project(workspace.root)
    head = by_name(run_tests(session, project, ["gold_paid"]))
    assert head["positive(amount)"].status == "fail" and head["positive(amount)"].failing == 1
    at_tag = by_name(run_tests(session, project, ["gold_paid"], ref="v1"))
    assert at_tag["positive(amount)"].status == "pass"
    # Selection like `rat run`: upstream models come along with `+`.
    models = {r.model for r in run_selected_tests(session, ["+gold_paid"])}
    assert models == {"gold_paid"}  # silver_orders declares no tests
    api = Rat()
    api.use(session)
    assert [r.status for r in api.test("gold_paid", branch="v1")][:2] == ["pass", "pass"]
    assert len(api.test()) == 4


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def rat(settings: Settings, workspace: Workspace):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["--home", str(settings.home), "--workspace", str(workspace.root), *args], obj={})
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_cli_test_exit_codes(shop: Session, rat) -> None:
    out = rat("test", code=1)
    assert "FAIL  silver_orders     unique(id)" in out
    assert "PASS  silver_customers  not_null(customer_id)" in out
    assert "WARN  silver_orders     accepted_values(status)" in out
    assert "n_records" in out and "weird" in out  # sample rows of failures are printed
    assert "test(s) on 'workspace/acme'" in out and "failed" in out
    assert "error: " in out and "error-level test(s) failed" in out
    out = rat("test", "silver_customers")
    assert "silver_orders" not in out and "5 test(s)" in out and "5 passed" in out
    # Only a warning fails nothing.
    write(shop.workspace, "silver/orders.yaml", """
        columns:
          - name: status
            tests:
              - accepted_values: {values: [paid], severity: warn}
    """)
    out = rat("test", "silver_orders")
    assert "WARN" in out and "1 warned" in out
    out = rat("test", "nothing_here", code=1)
    assert "matches no model" in out


def test_cli_test_errors_exit_1(workspace: Workspace, rat) -> None:
    write(workspace, "silver/customers.sql", CUSTOMERS)
    write(workspace, "silver/customers.yaml", "columns:\n  - {name: customer_id, tests: [not_null]}\n")
    out = rat("test", code=1)
    assert "ERROR silver_customers  not_null(customer_id)" in out and "run the model first" in out


THREE = {
    "silver/a.sql": "SELECT CAST(i AS BIGINT) AS id, '{{ var(\"label\", \"none\") }}' AS label FROM range({{ var('n', 3) }}) t(i)",
    "silver/b.sql": "SELECT id, id * 2 AS twice, label FROM {{ ref('silver_a') }}",
    "gold/c.sql": "SELECT count(*) AS n, max(label) AS label FROM {{ ref('silver_b') }}",
}


def test_cli_run_prints_progress_and_commits(workspace: Workspace, session: Session, rat) -> None:
    for rel, text in THREE.items():
        write(workspace, rel, text)
    out = rat("run", "--vars", "n=5", "--vars", "label=x")
    lines = out.splitlines()
    assert lines[0] == "running 3 model(s) on 'workspace/acme'"
    assert lines[1].startswith("[1/3] OK    silver_a -> silver.a  create  5 rows  0 updated")
    assert lines[2].startswith("[2/3] OK    silver_b -> silver.b  create  5 rows")
    assert lines[3].startswith("[3/3] OK    gold_c -> gold.c  create  1 rows")
    assert "s  peak " in lines[1] and lines[1].endswith("MB")
    assert "3 model(s) ok, 11 rows written" in out
    head = session.store.get_reference(session.branch).hash
    assert f"committed {head[:12]} on 'workspace/acme'" in out
    assert session.sql("SELECT n, label FROM gold.c").relation.fetchall() == [(5, "x")]
    out = rat("run", "gold_c")
    assert "running 1 model(s)" in out and "[1/1] OK    gold_c" in out


def test_cli_run_failure_commits_nothing(workspace: Workspace, session: Session, rat) -> None:
    for rel, text in THREE.items():
        write(workspace, rel, text)
    rat("run")
    head = session.store.get_reference(session.branch).hash
    write(workspace, "silver/b.sql", "SELECT id, no_such_column FROM {{ ref('silver_a') }}")
    write(workspace, "silver/a.sql", THREE["silver/a.sql"].replace("range(", "range(10 + "))
    out = rat("run", code=1)
    assert "[1/3] OK    silver_a" in out
    assert "FAIL  silver_b -> silver.b" in out and "no_such_column" in out
    assert "SKIP  gold_c -> gold.c  (upstream failed)" in out
    assert "error: model silver_b failed" in out
    assert "committed nothing" in out and "'workspace/acme' is unchanged" in out
    assert session.store.get_reference(session.branch).hash == head
    assert session.sql("SELECT count(*) FROM silver.a").relation.fetchone()[0] == 3


def test_parse_vars() -> None:
    assert parse_vars(["n=3", "d=2024-01-01", "s=hello world", "empty=", "l=[1, 2]", "{a: 1, b: x}"]) == {
        "n": 3, "d": datetime(2024, 1, 1).date(), "s": "hello world", "empty": "", "l": [1, 2], "a": 1, "b": "x",
    }
    import click

    with pytest.raises(click.BadParameter):
        parse_vars(["novalue"])

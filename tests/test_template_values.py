"""Values from outside a template are SQL literals, never syntax (pipeline/literals.py): `var()`,
`env_var()` in model files and `{{ x }}` in notebook cells, rendered in Jinja's sandbox; inside a
quoted string they become escaped string content (dbt's `'{{ var("x") }}'`), outside a complete
literal; `| sqlsafe` opts out; exotic numbers, numpy scalars, dates and datetimes render exactly;
`ref()` of something that is no name is refused. Every result is executed by real DuckDB.
"""

from __future__ import annotations

import datetime as dt
import decimal
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import SqlError
from ratatouille_nb.notebook.binding import render_cell
from ratatouille_nb.pipeline.adhoc import render_adhoc
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.literals import Sentinels, sql_literal, string_content
from ratatouille_nb.workspace import Workspace


class LyingInt(int):
    def __str__(self) -> str:
        return "1; DROP TABLE x"

    __repr__ = __str__


class LyingFloat(float):
    def __repr__(self) -> str:
        return "0) OR (1=1"

    __str__ = __repr__


class LyingDecimal(decimal.Decimal):
    def __str__(self) -> str:
        return "9 UNION SELECT 1"


class LyingStr(str):
    def __str__(self) -> str:
        return "' OR '1'='1"


class LyingDate(dt.date):
    def isoformat(self) -> str:
        return "2024-01-01'); DROP TABLE x; --"


def one(sql: str) -> Any:
    rows = duckdb.connect().execute(sql).fetchall()
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (LyingInt(7), 7),
        (LyingFloat(2.5), 2.5),
        (LyingDecimal("12.340"), decimal.Decimal("12.340")),
        (decimal.Decimal("1E+2"), decimal.Decimal("100")),
        (LyingStr("plain"), "plain"),
        ("it's", "it's"),
        (np.int64(42), 42),
        (np.float32(0.5), 0.5),
        (np.bool_(True), True),
        (np.datetime64("2024-03-01T12:34:56.123456"), dt.datetime(2024, 3, 1, 12, 34, 56, 123456)),
        (LyingDate(2024, 2, 29), dt.date(2024, 2, 29)),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 678901), dt.datetime(2024, 1, 2, 3, 4, 5, 678901)),
        (dt.time(8, 30), dt.time(8, 30)),
        (None, None),
        (True, True),
    ],
)
def test_sql_literal_renders_the_exact_value(value: Any, expected: Any) -> None:
    assert one(f"SELECT {sql_literal(value)}") == expected


def test_tz_aware_datetime_keeps_its_instant() -> None:
    value = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert one(f"SELECT epoch({sql_literal(value)})") == value.timestamp()


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("SELECT {{ v }}", "O'Brien", "O'Brien"),
        ("SELECT '{{ v }}'", "O'Brien", "O'Brien"),
        ("SELECT 'name: {{ v }}!'", "x' || 'y", "name: x' || 'y!"),
        ("SELECT {{ v }}", "1; DROP TABLE t", "1; DROP TABLE t"),
        ("SELECT '{{ v }}'::DATE", dt.date(2024, 5, 6), dt.date(2024, 5, 6)),
        ("SELECT {{ v }}", dt.date(2024, 5, 6), dt.date(2024, 5, 6)),
        ("SELECT '{{ v }}'", LyingInt(3), "3"),
        ("SELECT {{ v }} + 1", LyingInt(3), 4),
        ("SELECT \"{{ v }}\" FROM (SELECT 1 AS \"a\"\"b\")", 'a"b', 1),
        ("SELECT length({{ v }}) -- {{ v }} in a comment\n", "abc", 3),
    ],
)
def test_notebook_values_are_literals_or_string_content(template: str, value: Any, expected: Any) -> None:
    sql = render_cell(template, {"v": value}, ref=lambda name: name)
    assert one(sql) == expected


def test_notebook_lists_sqlsafe_and_ref() -> None:
    sql = render_cell("SELECT 2 IN {{ ids }}, {{ col | sqlsafe }} FROM (SELECT 5 AS n)", {"ids": [1, 2, 3], "col": "n"}, ref=lambda n: n)
    assert duckdb.connect().execute(sql).fetchall() == [(True, 5)]
    assert render_cell("FROM {{ ref('silver.sales') }}", {}, ref=lambda n: f"resolved_{n}") == "FROM resolved_silver.sales"
    for bad in ("silver.sales; DROP TABLE x", "a b", "x--", 42):
        with pytest.raises(SqlError, match="not a model or table name"):
            render_cell("FROM {{ ref(name) }}", {"name": bad}, ref=lambda n: n)
    with pytest.raises(SqlError, match="cannot go inside a quoted string"):
        render_cell("SELECT '{{ v }}'", {"v": [1, 2]}, ref=lambda n: n)


def test_notebook_templates_are_sandboxed() -> None:
    with pytest.raises(SqlError, match="not allowed"):
        render_cell("{{ v.__class__.__mro__ }}", {"v": "x"}, ref=lambda n: n)
    with pytest.raises(SqlError, match="not allowed"):
        render_cell("{{ f.__globals__ }}", {"f": test_notebook_templates_are_sandboxed}, ref=lambda n: n)


def test_sentinels_cannot_be_forged() -> None:
    held = Sentinels()
    marker = held.hold("secret")
    other = Sentinels()
    assert other.resolve(marker) == marker  # another render's sentinel means nothing here
    assert string_content("a'b") == "a''b" and string_content('a"b', '"') == 'a""b'


def _model(workspace: Workspace, rel: str, text: str) -> Path:
    path = workspace.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_model_vars_and_env_vars_are_literals(session: Session, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAT_TEST_REGION", "north'; DROP TABLE x; --")
    _model(workspace, "pipelines/silver/probe.sql", """
        SELECT
          {{ var('who') }} AS bare,
          'hello {{ var('who') }}' AS quoted,
          {{ var('day') }} AS day,
          '{{ var('day') }}'::DATE AS quoted_day,
          {{ var('n') }} + 1 AS n_plus_one,
          '{{ env_var('RAT_TEST_REGION') }}' AS region,
          {{ var('col') | sqlsafe }} AS picked
        FROM (SELECT 10 AS amount)
    """)
    record = Runner(session).run(variables={"who": "O'Hara", "day": dt.date(2024, 2, 29), "n": LyingInt(41), "col": "amount"})
    assert record.status == "success", record.error
    row = session.sql("SELECT * FROM silver.probe").relation.fetchone()
    assert row == ("O'Hara", "hello O'Hara", dt.date(2024, 2, 29), dt.date(2024, 2, 29), 42, "north'; DROP TABLE x; --", 10)


def test_model_ref_of_a_non_name_is_refused(session: Session, workspace: Workspace) -> None:
    _model(workspace, "pipelines/silver/bad.sql", "SELECT * FROM {{ ref(var('t')) }}\n")
    record = Runner(session).run(variables={"t": "bronze.x) UNION SELECT 1 --"})
    assert record.status == "failed" and "bad.sql:1: ref('bronze.x) UNION SELECT 1 --'): not a model or table name" in (record.error or "")


def test_model_templates_are_sandboxed(session: Session, workspace: Workspace) -> None:
    from ratatouille_nb.pipeline.loader import load_project

    _model(workspace, "pipelines/silver/escape.sql", "SELECT '{{ ref.__globals__ }}' AS x\n")
    with pytest.raises(PipelineError, match=r"escape\.sql:1: not allowed in a template"):
        load_project(workspace.root)


def test_render_adhoc_native_workspace(session: Session, workspace: Workspace) -> None:
    _model(workspace, "macros/m.sql", "{% macro twice(x) %}({{ x }} * 2){% endmacro %}\n")
    _model(workspace, "pipelines/silver/sales.sql", "-- @name: sales\nSELECT 1 AS x\n")
    assert render_adhoc(session, "SELECT 1") == "SELECT 1"
    assert render_adhoc(session, "SELECT {{ twice(3) }} FROM {{ ref('sales') }}") == "SELECT (3 * 2) FROM silver.sales"
    assert render_adhoc(session, "SELECT {{ x }}", {"x": "a'b"}) == "SELECT 'a''b'"

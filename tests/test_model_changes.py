"""A model may change between runs — materialization (view <-> table <-> incremental), partitioning,
unique key, columns — and the next run does what the new definition says (incremental changes
that need it ask for --full-refresh). And one rule decides what blocks, for `rat test` and
`rat build` alike: error-severity tests that fail or error; warn-severity ones never.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.engine.writer import identity_partition_columns
from ratatouille_nb.pipeline.build import build
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.quality import TestResult, blocking, is_blocking
from ratatouille_nb.workspace import Workspace

ROWS = "SELECT * FROM (VALUES (1, 'a', 10), (2, 'b', 20), (3, 'a', 30)) AS t(id, grp, amount)"


def model(workspace: Workspace, header: str, body: str = "SELECT id, grp, amount FROM bronze.src") -> Path:
    path = workspace.root / "pipelines" / "silver" / "m.sql"
    path.write_text(textwrap.dedent(header).strip() + "\n" + body + "\n")
    return path


def rows(session: Session) -> list[tuple]:
    return sorted(session.sql("SELECT * FROM silver.m").relation.fetchall())


def entry_kind(session: Session) -> str:
    return "view" if session.contents()["silver.m"].view_sql is not None else "table"


@pytest.fixture
def src(session: Session) -> Session:
    session.sql(f"CREATE TABLE bronze.src AS {ROWS}")
    return session


def run_ok(session: Session, **kwargs: object) -> str:
    record = Runner(session).run(**kwargs)  # type: ignore[arg-type]
    assert record.status == "success", record.error
    return record.models[0].operation


def test_view_table_incremental_view_round_trip(src: Session, workspace: Workspace) -> None:
    expected = [(1, "a", 10), (2, "b", 20), (3, "a", 30)]
    model(workspace, "-- @materialized: view")
    assert run_ok(src) == "view" and entry_kind(src) == "view" and rows(src) == expected
    model(workspace, "-- @materialized: table")
    assert run_ok(src) == "replace" and entry_kind(src) == "table" and rows(src) == expected  # was an OSError
    model(workspace, "-- @materialized: view")
    assert run_ok(src) == "view" and entry_kind(src) == "view"
    model(workspace, "-- @materialized: incremental\n-- @unique_key: id")
    assert run_ok(src) == "replace" and entry_kind(src) == "table" and rows(src) == expected
    src.sql("INSERT INTO bronze.src VALUES (4, 'b', 40)")
    assert run_ok(src) == "merge" and rows(src) == [*expected, (4, "b", 40)]
    model(workspace, "-- @materialized: table")
    assert run_ok(src) == "replace" and len(rows(src)) == 4
    model(workspace, "-- @materialized: view")
    assert run_ok(src) == "view" and entry_kind(src) == "view" and len(rows(src)) == 4


def test_partitioning_change(src: Session, workspace: Workspace) -> None:
    model(workspace, "-- @materialized: table")
    run_ok(src)
    model(workspace, "-- @materialized: table\n-- @partition_by: grp")
    run_ok(src)
    assert identity_partition_columns(src.transaction("probe").load("silver.m")) == ["grp"]
    model(workspace, "-- @materialized: incremental\n-- @unique_key: id\n-- @partition_by: grp")
    assert run_ok(src) == "merge"
    model(workspace, "-- @materialized: incremental\n-- @unique_key: id")
    record = Runner(src).run()
    assert record.status == "failed" and "partition_by changed (grp -> none)" in (record.error or "")
    assert "rat run silver_m --full-refresh" in (record.error or "")
    assert run_ok(src, full_refresh=True) == "full-refresh"
    assert identity_partition_columns(src.transaction("probe").load("silver.m")) == []
    assert rows(src) == [(1, "a", 10), (2, "b", 20), (3, "a", 30)]


def test_unique_key_and_column_changes(src: Session, workspace: Workspace) -> None:
    model(workspace, "-- @materialized: incremental\n-- @unique_key: id")
    run_ok(src)
    # Another unique key: the next merge matches on it.
    model(workspace, "-- @materialized: incremental\n-- @unique_key: grp", "SELECT grp, max(id) AS id, CAST(sum(amount) AS INT) AS amount FROM bronze.src GROUP BY grp")
    record = Runner(src).run()
    assert record.status == "success", record.error
    assert src.sql("SELECT count(*) FROM silver.m WHERE grp = 'a'").relation.fetchone()[0] == 1
    # A new column is added; a dropped one needs --full-refresh.
    model(workspace, "-- @materialized: incremental\n-- @unique_key: id", "SELECT id, grp, amount, amount * 2 AS doubled FROM bronze.src")
    assert run_ok(src) == "merge"
    assert "doubled" in [c[0] for c in src.table_stats("silver.m")["schema"]]
    model(workspace, "-- @materialized: incremental\n-- @unique_key: id", "SELECT id, amount FROM bronze.src")
    record = Runner(src).run()
    assert record.status == "failed" and "--full-refresh" in (record.error or "")
    assert run_ok(src, full_refresh=True) == "full-refresh"
    assert [c[0] for c in src.table_stats("silver.m")["schema"]] == ["id", "amount"]
    # A table simply takes the new columns.
    model(workspace, "-- @materialized: table", "SELECT id FROM bronze.src")
    run_ok(src)
    assert [c[0] for c in src.table_stats("silver.m")["schema"]] == ["id"]


# -- one verdict -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "status", "blocks"),
    [("error", "fail", True), ("error", "error", True), ("error", "warn", False), ("error", "pass", False),
     ("warn", "warn", False), ("warn", "error", False), ("warn", "fail", False), ("warn", "pass", False)],
)
def test_the_blocking_rule(severity: str, status: str, blocks: bool) -> None:
    result = TestResult(model="m", test="t", kind="sql", column=None, severity=severity, status=status)  # type: ignore[arg-type]
    assert is_blocking(severity, status) is blocks and result.blocking is blocks and (blocking([result]) == [result]) is blocks


@pytest.mark.parametrize(("severity", "blocks"), [("warn", False), ("error", True)])
def test_a_test_that_errors_gets_one_verdict_in_test_and_build(src: Session, workspace: Workspace, severity: str, blocks: bool) -> None:
    model(workspace, "-- @materialized: table")
    (workspace.root / "pipelines" / "silver" / "m.yaml").write_text(
        f"tests:\n  - name: broken\n    sql: SELECT no_such_column FROM {{{{ this }}}}\n    severity: {severity}\n"
    )
    before = src.store.get_reference(src.branch).hash
    result = build(src)
    assert [t.status for t in result.tests] == ["error"]
    assert result.published is not blocks
    assert (src.store.get_reference(src.branch).hash == before) is blocks
    cli_result = CliRunner().invoke(cli, ["--home", str(src.settings.home), "--workspace", str(workspace.root), "test"])
    assert (cli_result.exit_code != 0) is blocks, cli_result.output
    if not blocks:
        assert "0 failed, 1 errored" in cli_result.output  # reported, never blocking

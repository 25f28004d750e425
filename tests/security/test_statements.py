"""The statement allow-list (engine/statements.py): what user SQL may run, attacked from workspace b.

Every refusal names the statement, runs nothing (also when it is stacked after allowed ones) and
changes nothing on disk, in the branch heads or in the registry.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.engine.errors import ForbiddenStatementError
from ratatouille_nb.errors import SqlError

from .sandbox_fixtures import Pair, fingerprint, pair

__all__ = ["pair"]


def _refused(pair: Pair, sql: str, match: str, error: type[Exception] = ForbiddenStatementError) -> None:
    before = fingerprint(pair.settings, pair.a.workspace.root, pair.b.workspace.root)
    with pytest.raises(error, match=match):
        pair.b.sql(sql)
    assert fingerprint(pair.settings, pair.a.workspace.root, pair.b.workspace.root) == before


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("ATTACH '{b}/x.db' AS x", "ATTACH"),
        ("ATTACH ':memory:' AS x", "ATTACH"),
        ("DETACH memory", "DETACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("FORCE INSTALL httpfs", "FORCE INSTALL"),
        ("SET threads = 64", "SET"),
        ("SET GLOBAL memory_limit = '500GB'", "SET"),
        ("SET VARIABLE x = 1", "SET"),
        ("RESET threads", "RESET"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("PRAGMA show_tables", "PRAGMA"),
        ("USE memory", "USE"),
        ("EXPORT DATABASE '{b}/exports/dump'", "EXPORT DATABASE"),
        ("IMPORT DATABASE '{home}'", "IMPORT DATABASE"),
        ("COPY FROM DATABASE memory TO memory", "COPY FROM DATABASE"),
        ("CREATE SECRET s (TYPE S3, KEY_ID 'k', SECRET 's')", "CREATE SECRET"),
        ("CREATE PERSISTENT SECRET s (TYPE S3)", "CREATE SECRET"),
        ("DROP SECRET rat_warehouse", "DROP SECRET"),
        ("CREATE VIEW silver.mine2 AS SELECT 1", "CREATE VIEW"),
        ("CREATE OR REPLACE VIEW silver.mine AS SELECT 2 AS x", "CREATE VIEW"),
        ("CREATE MACRO m(a) AS a", "CREATE MACRO"),
        ("CREATE FUNCTION f(a) AS a", "CREATE FUNCTION"),
        ("CREATE SCHEMA silver", "CREATE SCHEMA"),
        ("DROP VIEW silver.mine", "DROP VIEW"),
        ("CALL pragma_version()", "CALL"),
        ("CHECKPOINT", "CHECKPOINT"),
        ("VACUUM", "VACUUM"),
        ("BEGIN TRANSACTION", "BEGIN"),
        ("PREPARE p AS SELECT 1", "PREPARE"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{b}/exports/x.csv'", "EXPLAIN"),
        ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS"),
    ],
)
def test_refused_statements_name_themselves(pair: Pair, sql: str, named: str) -> None:
    sql = sql.format(b=pair.b.workspace.root, home=pair.settings.home)
    _refused(pair, sql, f"^{named}")


@pytest.mark.parametrize(
    "target",
    ["{home}/catalog.db", "{home}/registry.db", "{a}/pipelines/silver/evil.sql", "{b}/pipelines/silver/evil.sql", "{b}/workspace.yaml", "{wh}/b/landing/x.csv", "s3://bucket/x.csv", "/tmp/anywhere.csv"],
)
def test_copy_writes_only_into_exports(pair: Pair, target: str) -> None:
    path = target.format(home=pair.settings.home, a=pair.a.workspace.root, b=pair.b.workspace.root, wh=pair.settings.warehouse)
    _refused(pair, f"COPY (SELECT 'x' AS v) TO '{path}' (FORMAT csv, HEADER false)", "only into the workspace's exports folder")


def test_copy_over_a_released_product_file_is_refused(pair: Pair) -> None:
    _refused(pair, f"COPY (SELECT 1 AS id, 2 AS amount) TO '{pair.data_file()}' (FORMAT parquet)", "exports folder")
    with pytest.raises(ForbiddenStatementError, match="exports folder"):  # not even by the owner
        pair.a.sql(f"COPY (SELECT 1 AS id, 2 AS amount) TO '{pair.data_file()}' (FORMAT parquet)")


def test_copy_through_a_symlink_in_exports_is_refused(pair: Pair) -> None:
    exports = pair.b.workspace.root / "exports"
    exports.mkdir()
    (exports / "link").symlink_to(pair.a.workspace.root / "pipelines")
    _refused(pair, f"COPY (SELECT 1 AS v) TO '{exports}/link/evil.sql' (FORMAT csv)", "exports folder")


def test_copy_from_and_computed_targets_are_refused(pair: Pair) -> None:
    _refused(pair, f"COPY silver.mine FROM '{pair.b.workspace.root}/x.csv'", "COPY … FROM")
    _refused(pair, "COPY (SELECT 1) TO getenv('HOME') || '/x.csv'", "syntax error", SqlError)


def test_copy_into_exports_relative_to_the_current_folder(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pair.b.workspace.root)
    pair.b.sql("COPY (SELECT x FROM silver.mine) TO 'exports/mine.parquet' (FORMAT parquet)")
    assert pair.b.sql(f"SELECT x FROM read_parquet('{pair.b.workspace.root}/exports/mine.parquet')").relation.fetchone() == (1,)


def test_a_stacked_refusal_runs_nothing_before_it(pair: Pair) -> None:
    _refused(pair, "CREATE TABLE silver.t2 AS SELECT 1 AS x; ATTACH ':memory:' AS y", "^ATTACH")
    assert "silver.t2" not in pair.b.contents()
    _refused(pair, f"SELECT 1; COPY (SELECT 1) TO '{pair.settings.home}/catalog.db'", "exports folder")


def test_products_are_read_only(pair: Pair) -> None:
    _refused(pair, "CREATE TABLE products.orders AS SELECT 1 AS id", "data product")
    _refused(pair, "INSERT INTO products.orders SELECT 1, 2", "data product")


def test_a_view_body_with_stacked_statements_is_refused_when_bound(pair: Pair) -> None:
    """A commit holding a view whose SQL smuggles a COPY (written around the pipeline): no reader runs it."""
    target = pair.b.workspace.root / "exports" / "smuggled.csv"
    store, branch = pair.b.store, pair.b.branch
    head = store.get_reference(branch).hash
    body = f"SELECT 1 AS x; COPY (SELECT 1) TO '{target}'"
    store.commit(branch, head, {"silver.evil": TableEntry(metadata_location="", view_sql=body)}, {"silver.evil": "create"}, message="evil", author="x")
    _refused(pair, "SELECT * FROM silver.evil", "view silver.evil must be exactly one SELECT statement; it holds 2")
    assert not target.exists()


def test_a_view_model_with_stacked_statements_fails_naming_the_model(pair: Pair) -> None:
    from ratatouille_nb.pipeline.executor import Runner

    target = pair.b.workspace.root / "exports" / "smuggled.csv"
    path = pair.b.workspace.root / "pipelines" / "silver" / "evil.sql"
    path.write_text(textwrap.dedent(f"""\
        -- @materialized: view
        SELECT 1 AS x; COPY (SELECT 1) TO '{target}'
    """))
    head = pair.b.store.get_reference(pair.b.branch).hash
    record = Runner(pair.b).run(["silver_evil"])
    assert record.status == "failed" and record.error is not None
    assert record.error.startswith("silver_evil: this SQL must be exactly one SELECT statement; it holds 2")
    assert pair.b.store.get_reference(pair.b.branch).hash == head and not target.exists()


def test_model_sql_cannot_break_out_of_its_subquery(pair: Pair) -> None:
    from ratatouille_nb.pipeline.executor import Runner

    target = pair.b.workspace.root / "exports" / "escaped.csv"
    path = pair.b.workspace.root / "pipelines" / "silver" / "breakout.sql"
    path.write_text(f"SELECT 1 AS x) TO '{target}' (FORMAT csv); SELECT (1\n")
    record = Runner(pair.b).run(["silver_breakout"])
    assert record.status == "failed"
    assert not target.exists()


def test_scripts_still_run_allowed_statements_in_order(pair: Pair) -> None:
    r = pair.b.sql("CREATE TABLE silver.a AS SELECT 1 AS x; INSERT INTO silver.a SELECT 2; SELECT sum(x) FROM silver.a")
    assert r.relation.fetchone() == (3,)
    assert pair.b.sql("FROM silver.a SELECT count(*)").relation.fetchone() == (2,)
    assert pair.b.sql("SUMMARIZE silver.a").relation.fetchall()
    assert pair.b.sql("DESCRIBE silver.a").relation.fetchall()[0][0] == "x"
    assert pair.b.sql("PIVOT silver.a ON x USING count(*)").relation.fetchall() == [(1, 1)]
    assert pair.b.sql("EXPLAIN SELECT * FROM silver.a").relation.fetchall()
    with pytest.raises(SqlError):
        pair.b.sql("SELEC 1")


def test_exports_path_is_in_the_refusal(pair: Pair) -> None:
    with pytest.raises(ForbiddenStatementError) as caught:
        pair.b.sql("COPY (SELECT 1) TO '/tmp/x.csv'")
    assert str(Path(pair.b.workspace.root / "exports")) in str(caught.value)

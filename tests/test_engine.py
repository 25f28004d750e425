"""SQL on Iceberg tables: reads, the four write statements, atomicity, partitioning, types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import InvalidNameError, SqlError, TableExistsError, TableNotFoundError, UnsupportedStatementError
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

from .conftest import scalar


def test_round_trip_create_insert_delete_drop(session: Session) -> None:
    r = session.sql("CREATE TABLE bronze.t AS SELECT i AS id, 'n' || i AS name FROM range(1000) t(i)")
    assert r.writes[0].operation == "create" and r.writes[0].rows == 1000 and r.commit is not None
    assert scalar(session, "SELECT count(*) FROM bronze.t") == 1000

    r = session.sql("INSERT INTO bronze.t VALUES (5000, 'extra'), (5001, 'more')")
    assert r.writes[0].rows == 2
    assert scalar(session, "SELECT count(*) FROM bronze.t") == 1002

    r = session.sql("DELETE FROM bronze.t WHERE id < 100")
    assert r.writes[0].rows == 100
    assert scalar(session, "SELECT count(*) FROM bronze.t") == 902
    assert scalar(session, "SELECT min(id) FROM bronze.t") == 100

    r = session.sql("UPDATE bronze.t SET name = 'changed' WHERE id >= 5000")
    assert r.writes[0].rows == 2
    assert scalar(session, "SELECT count(*) FROM bronze.t WHERE name = 'changed'") == 2

    session.sql("DROP TABLE bronze.t")
    assert "bronze.t" not in session.contents()
    with pytest.raises(TableNotFoundError, match=re.escape("bronze.t")):
        session.sql("SELECT * FROM bronze.t")

    log = session.store.log(session.branch)
    assert [next(iter(c.operations.values())) for c in log] == ["drop", "overwrite", "delete", "append", "create"]


def test_each_write_is_readable_in_plain_duckdb(session: Session) -> None:
    import duckdb

    from ratatouille_nb.engine.extensions import load_extensions

    session.sql("CREATE TABLE silver.x AS SELECT 42 AS answer")
    meta = session.contents()["silver.x"].metadata_location
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    load_extensions(con, ("avro", "iceberg"))
    assert con.execute(f"SELECT answer FROM iceberg_scan('{meta}')").fetchone() == (42,)


def test_results_as_pandas_polars_arrow(session: Session) -> None:
    session.sql("CREATE TABLE gold.k AS SELECT i, i * 2 AS j FROM range(5) t(i)")
    result = session.sql("SELECT * FROM gold.k ORDER BY i")
    assert list(result.df()["j"]) == [0, 2, 4, 6, 8]
    assert result.pl()["j"].to_list() == [0, 2, 4, 6, 8]
    assert session.sql("SELECT * FROM gold.k ORDER BY i").arrow().column("j").to_pylist() == [0, 2, 4, 6, 8]


def test_failing_insert_leaves_table_and_files_unchanged(session: Session) -> None:
    session.sql("CREATE TABLE bronze.t AS SELECT i::INTEGER AS id FROM range(100) t(i)")
    before = session.contents()
    head = session.store.get_reference(session.branch).hash
    data_dir = Path(session.table_stats("bronze.t")["location"]) / "data"
    files_before = sorted(p for p in data_dir.rglob("*") if p.is_file())
    # The cast fails after 300k good rows have streamed into Parquet files.
    with pytest.raises(SqlError, match="Could not convert string 'oops'"):
        session.sql("INSERT INTO bronze.t SELECT CASE WHEN i < 300000 THEN i::VARCHAR ELSE 'oops' END FROM range(400000) t(i)")
    assert session.contents() == before
    assert session.store.get_reference(session.branch).hash == head
    assert scalar(session, "SELECT count(*) FROM bronze.t") == 100
    assert sorted(p for p in data_dir.rglob("*") if p.is_file()) == files_before


def test_failing_create_commits_nothing(session: Session) -> None:
    head = session.store.get_reference(session.branch).hash
    with pytest.raises(SqlError):
        session.sql("CREATE TABLE silver.bad AS SELECT 1 / 0 AS x, error('boom') AS y")
    assert session.store.get_reference(session.branch).hash == head
    assert "silver.bad" not in session.contents()


def test_create_existing_needs_or_replace(session: Session) -> None:
    session.sql("CREATE TABLE silver.s AS SELECT 1 AS a")
    with pytest.raises(TableExistsError, match="CREATE OR REPLACE"):
        session.sql("CREATE TABLE silver.s AS SELECT 2 AS a")
    assert session.sql("CREATE TABLE IF NOT EXISTS silver.s AS SELECT 3 AS a").writes[0].operation == "noop"
    session.sql("CREATE OR REPLACE TABLE silver.s AS SELECT 4 AS a UNION ALL SELECT 5")
    assert scalar(session, "SELECT sum(a) FROM silver.s") == 9
    session.sql("CREATE OR REPLACE TABLE silver.s AS SELECT 'text' AS b")
    assert session.sql("SELECT * FROM silver.s").columns == [("b", "VARCHAR")]


def test_create_with_columns_then_insert_by_name(session: Session) -> None:
    session.sql("CREATE TABLE bronze.e (id INTEGER, label VARCHAR, seen_at TIMESTAMP)")
    assert scalar(session, "SELECT count(*) FROM bronze.e") == 0
    session.sql("INSERT INTO bronze.e (label, id) VALUES ('a', 1)")
    row = session.sql("SELECT id, label, seen_at FROM bronze.e").relation.fetchall()
    assert row == [(1, "a", None)]


def test_partitioning_from_layer_config(settings: Settings, tmp_path: Path) -> None:
    from ratatouille_nb.workspace import init_workspace

    ws = init_workspace(tmp_path / "p", settings, name="p")
    path = ws.root / "workspace.yaml"
    path.write_text(path.read_text().replace("retention_days: 365\n    partition_by: []", "retention_days: 365\n    partition_by: [_date]"))
    with Session(settings, Workspace.load(ws.root)) as s:
        s.sql("CREATE TABLE silver.ev AS SELECT i, DATE '2024-01-01' + (i % 3)::INTEGER AS _date FROM range(300) t(i)")
        stats = s.table_stats("silver.ev")
        assert stats["partition_by"] == ["_date"] and stats["files"] == 3
        assert s.sql("SELECT _date, count(*) c FROM silver.ev GROUP BY 1 ORDER BY 1").relation.fetchall()[0][1] == 100
        s.sql("DELETE FROM silver.ev WHERE _date = DATE '2024-01-02'")
        assert scalar(s, "SELECT count(*) FROM silver.ev") == 200
        assert s.table_stats("silver.ev")["files"] == 2
        s.sql("INSERT INTO silver.ev SELECT 1000, DATE '2024-02-01'")
        assert scalar(s, "SELECT count(*) FROM silver.ev WHERE _date = DATE '2024-02-01'") == 1


def test_types_iceberg_cannot_hold_are_widened(session: Session) -> None:
    session.sql(
        "CREATE TABLE bronze.ty AS SELECT 1::TINYINT a, 2::SMALLINT b, 3::UBIGINT c, 4::HUGEINT d, "
        "TIMESTAMP_NS '2024-01-01 00:00:00.123456789' e, 'x'::VARCHAR f, [1, 2] g, {'k': 1} h"
    )
    types = dict(session.sql("SELECT * FROM bronze.ty").columns)
    assert types["a"] == "INTEGER" and types["b"] == "INTEGER" and types["d"].startswith("DECIMAL(38")
    assert types["e"] == "TIMESTAMP"
    with pytest.raises(SqlError, match="INTERVAL"):
        session.sql("CREATE TABLE bronze.iv AS SELECT INTERVAL 1 DAY AS i")


def test_bad_input_is_a_clear_error(session: Session) -> None:
    with pytest.raises(SqlError, match=r"syntax error|Parser Error"):
        session.sql("SELEC 1")
    with pytest.raises(InvalidNameError, match="invalid table name"):
        session.sql('CREATE TABLE "my-layer".t AS SELECT 1')
    with pytest.raises(UnsupportedStatementError, match="ALTER"):
        session.sql("ALTER TABLE silver.x ADD COLUMN y INTEGER")
    with pytest.raises(TableNotFoundError):
        session.sql("INSERT INTO silver.nope SELECT 1")
    with pytest.raises(SqlError, match="gives 2 value"):
        session.sql("CREATE TABLE silver.one AS SELECT 1 AS a")
        session.sql("INSERT INTO silver.one SELECT 1, 2")


def test_scratch_tables_stay_in_the_session(session: Session) -> None:
    session.sql("CREATE TEMP TABLE scratch AS SELECT 7 AS v")
    session.sql("CREATE TABLE notes AS SELECT 8 AS v")
    assert scalar(session, "SELECT v FROM scratch") == 7
    assert session.contents() == {}


def test_script_runs_each_statement(session: Session) -> None:
    r = session.sql("CREATE TABLE silver.a AS SELECT 1 AS x; INSERT INTO silver.a SELECT 2; SELECT sum(x) FROM silver.a")
    assert r.relation.fetchone()[0] == 3
    assert len(session.store.log(session.branch)) == 2

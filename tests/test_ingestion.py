"""Python ingestion pipelines: the demo's pipeline as written, the `_rat.ingested_files` ledger,
exactly-once ingestion across failed runs, `rat.ls` / `rat.read_file` confinement, `rat.append`
of every data frame kind, and the Excel/CSV parsers.

Landing files are generated with the demo's own helpers; expected rows come from the same
deterministic `sales_select_sql` in a separate plain DuckDB connection.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

import ratatouille_nb.demo as demo
from ratatouille_nb.api import rat
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import RatError
from ratatouille_nb.parsers import csv_parser, excel_parser
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.ingest import LEDGER
from ratatouille_nb.pipeline.runs import RunRecord
from ratatouille_nb.sampledata import sales_select_sql
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs import session as sessions
from ratatouille_nb.workspace import Workspace

FILE_ROWS = 400
CSV_ROWS = 1000  # three CSV files: 400 + 400 + 200 rows
BRONZE_COLUMNS = "txn_id, store_id, product_id, quantity, CAST(unit_price AS DECIMAL(10, 2)), payment_method, CAST(transaction_time AS TIMESTAMP)"


# -- helpers ----------------------------------------------------------------------------------


def run(session: Session, *selectors: str, **kwargs: Any) -> RunRecord:
    return Runner(session).run(list(selectors), **kwargs)


def ok(record: RunRecord) -> RunRecord:
    assert record.status == "success", record.error
    return record


def by_model(record: RunRecord) -> dict[str, Any]:
    return {m.model: m for m in record.models}


def scalar(session: Session, sql: str) -> Any:
    return session.sql(sql).relation.fetchone()[0]


def head(session: Session) -> str:
    return session.store.get_reference(session.branch).hash


def expected_landing(csv_name: str = "batch", csv_rows: int = CSV_ROWS, seed: int = 42, id_offset: int = 0, excel: bool = True) -> str:
    """Plain-DuckDB SQL for the rows `land_csv_batches` + `land_excel` wrote (bronze column order)."""
    parts = []
    for i, start in enumerate(range(0, csv_rows, FILE_ROWS), start=1):
        select = sales_select_sql(min(FILE_ROWS, csv_rows - start), id_offset=id_offset + start, seed=seed + i)
        parts.append(f"SELECT {BRONZE_COLUMNS}, 'landing/sales/sales_{csv_name}_{i:04d}.csv' AS f FROM ({select})")
    if excel:
        select = sales_select_sql(demo.EXCEL_ROWS, seed=7, id_offset=900_000_000)
        cols = BRONZE_COLUMNS.replace("store_id", "'STORE001'")
        parts.append(f"SELECT {cols}, 'landing/sales/sales_STORE001_2024-01-15.xlsx' FROM ({select})")
    return " UNION ALL ".join(f"({p})" for p in parts)


def assert_same_rows(session: Session, query: str, expected_sql: str) -> None:
    got = session.sql(query).arrow()
    con = duckdb.connect()
    con.register("got", got)
    missing = con.execute(f"SELECT count(*) FROM (({expected_sql}) EXCEPT ALL (SELECT * FROM got))").fetchone()[0]
    extra = con.execute(f"SELECT count(*) FROM ((SELECT * FROM got) EXCEPT ALL ({expected_sql}))").fetchone()[0]
    assert (missing, extra) == (0, 0), f"{missing} expected row(s) missing, {extra} unexpected row(s)"


def ledger(session: Session) -> list[tuple[str, str]]:
    return [tuple(r) for r in session.sql(f"SELECT path, pipeline FROM {LEDGER} ORDER BY path").relation.fetchall()]


LANDED = sorted(
    [f"landing/sales/sales_batch_{i:04d}.csv" for i in (1, 2, 3)] + ["landing/sales/sales_STORE001_2024-01-15.xlsx"]
)


@pytest.fixture
def demo_session(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """The demo template scaffolded into a tmp workspace, with 3 CSV files and the Excel export landed."""
    monkeypatch.setattr(demo, "FILE_ROWS", FILE_ROWS)
    assert demo.scaffold(tmp_path / "demo")
    workspace = Workspace.load(tmp_path / "demo")
    with Session(settings, workspace) as session:
        root = session.warehouse.location(workspace.prefix)
        assert len(demo.land_csv_batches(session.con, root, "batch", CSV_ROWS, seed=42)) == 3
        assert demo.land_excel(session.con, root)
        yield session


# -- the demo pipeline ------------------------------------------------------------------------


def test_demo_pipeline_ingests_landed_files_once(demo_session: Session) -> None:
    session = demo_session
    record = ok(run(session))
    models = by_model(record)
    assert [m.model for m in record.models] == ["bronze_raw_sales", "silver_sales", "gold_daily_sales_kpis"]
    assert (models["bronze_raw_sales"].operation, models["bronze_raw_sales"].rows_written) == ("python", CSV_ROWS + demo.EXCEL_ROWS)

    # Bronze holds every landed row, the Excel export's junk rows skipped and columns renamed.
    assert scalar(session, "SELECT count(*) FROM bronze.raw_sales") == CSV_ROWS + demo.EXCEL_ROWS
    assert_same_rows(session, f"SELECT {BRONZE_COLUMNS}, _source_file FROM bronze.raw_sales", expected_landing())
    assert scalar(session, "SELECT count(*) FROM bronze.raw_sales WHERE _ingested_at IS NULL") == 0
    assert ledger(session) == [(p, "bronze_raw_sales") for p in LANDED]

    # Silver: valid rows, one per txn_id; gold aggregates silver.
    con = duckdb.connect()
    valid = con.execute(
        f"SELECT count(DISTINCT txn_id) FROM ({expected_landing()}) AS t(txn_id, s, p, quantity, unit_price, m, tt, f) "
        "WHERE quantity > 0 AND unit_price > 0"
    ).fetchone()[0]
    assert scalar(session, "SELECT count(*) FROM silver.sales") == valid
    assert scalar(session, "SELECT sum(transactions) FROM gold.daily_sales_kpis") == valid

    # A second run finds nothing new to ingest.
    before = ledger(session)
    record = ok(run(session))
    models = by_model(record)
    assert models["bronze_raw_sales"].rows_written == 0
    assert (models["silver_sales"].operation, models["silver_sales"].rows_written) == ("merge", 0)
    assert scalar(session, "SELECT count(*) FROM bronze.raw_sales") == CSV_ROWS + demo.EXCEL_ROWS
    assert ledger(session) == before

    # A new landed file is the only one ingested next time; its updates merge into silver.
    root = session.warehouse.location(session.workspace.prefix)
    demo.land_csv_batches(session.con, root, "update", 300, seed=99, id_offset=10_000, update_fraction=0.2, update_pool=CSV_ROWS)
    record = ok(run(session))
    models = by_model(record)
    assert models["bronze_raw_sales"].rows_written == 300
    assert models["silver_sales"].rows_updated > 0
    assert [p for p, _ in ledger(session)] == sorted([*LANDED, "landing/sales/sales_update_0001.csv"])
    assert scalar(session, "SELECT count(*) - count(DISTINCT txn_id) FROM silver.sales") == 0
    assert scalar(session, "SELECT count(*) FROM bronze.raw_sales WHERE _source_file LIKE '%update%'") == 300


def test_failed_run_after_ingestion_commits_nothing_then_reingests_exactly_once(demo_session: Session, settings: Settings) -> None:
    session = demo_session
    silver = session.workspace.root / "pipelines" / "silver" / "sales.sql"
    good = silver.read_text()
    silver.write_text(good.replace("WHERE {{ valid_sale() }}", "WHERE {{ valid_sale() }} AND no_such_column > 0"))
    base = head(session)

    record = run(session)
    assert record.status == "failed"
    states = {m.model: m.status for m in record.models}
    assert states == {"bronze_raw_sales": "success", "silver_sales": "failed", "gold_daily_sales_kpis": "skipped"}
    assert by_model(record)["bronze_raw_sales"].rows_written == CSV_ROWS + demo.EXCEL_ROWS  # it did ingest…
    assert head(session) == base and session.contents() == {}  # …but nothing was committed, ledger included
    prefix = settings.warehouse / session.workspace.prefix
    assert not [p for p in prefix.rglob("*.parquet") if "landing" not in p.parts]

    silver.write_text(good)
    record = ok(run(session))
    assert by_model(record)["bronze_raw_sales"].rows_written == CSV_ROWS + demo.EXCEL_ROWS
    assert ledger(session) == [(p, "bronze_raw_sales") for p in LANDED]
    # Every landed row exactly once.
    assert scalar(session, "SELECT count(*) FROM bronze.raw_sales") == CSV_ROWS + demo.EXCEL_ROWS
    assert scalar(session, "SELECT count(*) FROM (SELECT DISTINCT txn_id, _source_file FROM bronze.raw_sales)") == CSV_ROWS + demo.EXCEL_ROWS
    assert_same_rows(session, f"SELECT {BRONZE_COLUMNS}, _source_file FROM bronze.raw_sales", expected_landing())


# -- rat.ls / rat.read_file -------------------------------------------------------------------

PROBE_PY = '''
import pyarrow as pa

from ratatouille import pipeline


@pipeline(name="bronze_probe")
def probe():
    outcomes = []
    calls = {
        "ls ../x": lambda: rat.ls("../x"),
        "ls /etc/*": lambda: rat.ls("/etc/*"),
        "ls nested ..": lambda: rat.ls("landing/a/../../../x"),
        "read ../x": lambda: rat.read_file("../x"),
        "read /etc/passwd": lambda: rat.read_file("/etc/passwd"),
        "read file://": lambda: rat.read_file("file:///etc/passwd"),
        "read missing": lambda: rat.read_file("landing/missing.csv"),
    }
    for label, call in calls.items():
        try:
            call()
            outcomes.append((label, "no error"))
        except Exception as exc:
            outcomes.append((label, f"{type(exc).__name__}: {exc}"))
    listed = rat.ls("landing/notes/*.txt")
    outcomes += [("listed", path) for path in listed]
    outcomes.append(("content", rat.read_file(listed[0]).decode()))
    outcomes.append(("ingested", str(rat.is_ingested(listed[0]))))
    rat.mark_ingested(listed[0])
    outcomes.append(("ingested", str(rat.is_ingested(listed[0]))))
    rat.append("bronze.probe", pa.table({"label": [o[0] for o in outcomes], "outcome": [o[1] for o in outcomes]}))
'''


def test_ls_and_read_file_stay_inside_the_storage_root(session: Session, workspace: Workspace, settings: Settings) -> None:
    notes = settings.warehouse / workspace.prefix / "landing" / "notes"
    notes.mkdir(parents=True)
    (notes / "b.txt").write_text("second")
    (notes / "a.txt").write_text("first")
    (notes / "c.csv").write_text("x\n1\n")
    (settings.warehouse / "x").write_text("outside the workspace prefix")
    (workspace.root / "pipelines" / "bronze" / "probe.py").write_text(PROBE_PY)

    ok(run(session))
    rows = session.sql("SELECT label, outcome FROM bronze.probe").relation.fetchall()
    outcomes = dict(rows)
    for label in ("ls ../x", "ls /etc/*", "ls nested ..", "read ../x", "read /etc/passwd", "read file://"):
        assert outcomes[label].startswith("PipelineError: "), (label, outcomes[label])
        assert "must be a path relative to the workspace storage root" in outcomes[label]
    assert outcomes["read missing"] == "PipelineError: no file 'landing/missing.csv' under the storage root"
    assert [o for label, o in rows if label == "listed"] == ["landing/notes/a.txt", "landing/notes/b.txt"]
    assert outcomes["content"] == "first"
    assert [o for label, o in rows if label == "ingested"] == ["False", "True"]
    assert ledger(session) == [("landing/notes/a.txt", "bronze_probe")]


def test_ls_and_read_file_outside_a_run_are_confined_too(session: Session, workspace: Workspace, settings: Settings) -> None:
    """From a notebook (no pipeline run) the same storage-root rule applies."""
    landing = settings.warehouse / workspace.prefix / "landing"
    landing.mkdir(parents=True)
    (landing / "one.csv").write_text("x\n1\n")
    rat.use(session)
    try:
        for call in (
            lambda: rat.ls("../x"),
            lambda: rat.ls("/etc/*"),
            lambda: rat.read_file("../x"),
            lambda: rat.read_file("/etc/passwd"),
            lambda: rat.read_file("landing/../../x"),
        ):
            with pytest.raises(RatError, match="must be a path relative to the workspace storage root"):
                call()
        assert rat.ls("landing/*.csv") == ["landing/one.csv"]
        assert rat.read_file("landing/one.csv") == b"x\n1\n"
    finally:
        sessions.forget()


# -- rat.append of every data frame kind ------------------------------------------------------

APPEND_PY = '''
import pandas as pd
import polars as pl
import pyarrow as pa

from ratatouille import pipeline

KINDS = {
    "bronze.from_pandas": lambda data: pd.DataFrame(data),
    "bronze.from_polars": lambda data: pl.DataFrame(data),
    "bronze.from_arrow": lambda data: pa.table(data),
    "bronze.from_reader": lambda data: pa.table(data).to_reader(max_chunksize=2),
}


@pipeline(name="bronze_kinds", outputs=list(KINDS))
def kinds():
    for table, make in KINDS.items():
        for batch in range(3):  # the first append creates the table, the next ones append
            data = {"id": [batch * 10 + i for i in range(5)], "name": [f"n{batch}-{i}" for i in range(5)], "price": [1.5 * i for i in range(5)]}
            assert rat.append(table, make(data)) == 5
'''


def test_append_lands_pandas_polars_arrow_and_streams(session: Session, workspace: Workspace) -> None:
    (workspace.root / "pipelines" / "bronze" / "kinds.py").write_text(APPEND_PY)
    record = ok(run(session))
    assert by_model(record)["bronze_kinds"].rows_written == 4 * 15
    assert record.commit_hash is not None
    commit = session.store.get_commit(record.commit_hash)
    tables = ["bronze.from_pandas", "bronze.from_polars", "bronze.from_arrow", "bronze.from_reader"]
    assert set(commit.contents) == set(tables)
    expected = sorted((b * 10 + i, f"n{b}-{i}", 1.5 * i) for b in range(3) for i in range(5))
    for table in tables:
        assert sorted(session.sql(f"SELECT id, name, price FROM {table}").relation.fetchall()) == expected, table
        assert [c[:2] for c in session.table_stats(table)["schema"]] == [("id", "BIGINT"), ("name", "VARCHAR"), ("price", "DOUBLE")]


def test_append_by_column_name_and_schema_evolution(session: Session, workspace: Workspace) -> None:
    (workspace.root / "pipelines" / "bronze" / "evolve.py").write_text(
        textwrap.dedent(
            '''
            import pandas as pd

            from ratatouille import pipeline


            @pipeline(name="bronze_events")
            def events():
                rat.append("bronze.events", pd.DataFrame({"id": [1, 2], "kind": ["a", "b"]}))
                # Other column order, one new column: matched by name, older rows get NULL.
                rat.append("bronze.events", pd.DataFrame({"extra": [9.5], "kind": ["c"], "id": [3]}))
            '''
        )
    )
    ok(run(session))
    rows = session.sql("SELECT id, kind, extra FROM bronze.events ORDER BY id").relation.fetchall()
    assert rows == [(1, "a", None), (2, "b", None), (3, "c", 9.5)]


# -- parsers ----------------------------------------------------------------------------------


def test_excel_parser_skips_junk_rows_and_renames(tmp_path: Path) -> None:
    con = duckdb.connect()
    path = Path(str(demo.land_excel(con, str(tmp_path))))
    mapping = {"Transaction ID": "txn_id", "Qty": "quantity", "Price": "unit_price"}
    df = excel_parser(path.read_bytes(), skip_rows=3, columns_map=mapping)
    assert list(df.columns) == ["txn_id", "product_id", "quantity", "unit_price", "payment_method", "transaction_time"]
    assert len(df) == demo.EXCEL_ROWS
    assert pd.api.types.is_datetime64_any_dtype(df["transaction_time"])
    con.register("parsed", df)
    expected = sales_select_sql(demo.EXCEL_ROWS, seed=7, id_offset=900_000_000)
    diff = con.execute(
        f"SELECT count(*) FROM (SELECT txn_id, product_id, quantity, CAST(unit_price AS DECIMAL(10, 2)), payment_method, transaction_time FROM parsed "
        f"EXCEPT ALL SELECT txn_id, product_id, quantity, unit_price, payment_method, transaction_time FROM ({expected}))"
    ).fetchone()[0]
    assert diff == 0
    # Only the mapped columns, when asked; a path works as well as bytes.
    only = excel_parser(path, skip_rows=3, columns_map=mapping, keep_unmapped=False)
    assert list(only.columns) == ["txn_id", "quantity", "unit_price"]
    # Without skipping the junk rows the header is not found: a clear error naming what is there.
    with pytest.raises(PipelineError, match="columns not found in the file: Transaction ID, Qty, Price"):
        excel_parser(path.read_bytes(), columns_map=mapping)


def test_csv_parser_skip_rows_columns_map_and_delimiter() -> None:
    text = (
        "exported by POS v2\n"
        "store;STORE042\n"
        "Transaction ID;Qty;Price;When;Note\n"
        "TXN1;2;3.50;2024-01-15 10:30:00;2024 promo\n"
        "TXN2;1;9.99;2024-01-16T08:00:00;\n"
    )
    df = csv_parser(text.encode(), skip_rows=2, delimiter=";", columns_map={"Transaction ID": "txn_id", "Qty": "quantity", "Price": "unit_price"})
    assert list(df.columns) == ["txn_id", "quantity", "unit_price", "When", "Note"]
    assert df["txn_id"].tolist() == ["TXN1", "TXN2"] and df["quantity"].tolist() == [2, 1]
    # ISO timestamps become datetimes (as Excel cells are); other text stays text.
    assert pd.api.types.is_datetime64_any_dtype(df["When"])
    assert df["When"].tolist() == [pd.Timestamp("2024-01-15 10:30:00"), pd.Timestamp("2024-01-16 08:00:00")]
    assert not pd.api.types.is_datetime64_any_dtype(df["Note"])
    with pytest.raises(PipelineError, match=r"columns not found in the file: Price, Qty \(found: Transaction ID, Quantity, Cost"):
        csv_parser(
            b"Transaction ID,Quantity,Cost\nTXN1,1,2\n",
            columns_map={"Transaction ID": "txn_id", "Price": "unit_price", "Qty": "quantity"},
        )


def test_csv_and_excel_of_the_same_data_have_the_same_types(tmp_path: Path) -> None:
    """The demo lands both kinds into one bronze table: their columns must agree."""
    con = duckdb.connect()
    xlsx = excel_parser(
        Path(str(demo.land_excel(con, str(tmp_path)))).read_bytes(),
        skip_rows=3,
        columns_map={"Transaction ID": "txn_id", "Qty": "quantity", "Price": "unit_price"},
    )
    csv_path = tmp_path / "same.csv"
    con.execute(
        f"COPY (SELECT txn_id, product_id, quantity, unit_price, payment_method, transaction_time "
        f"FROM ({sales_select_sql(50, seed=7)})) TO '{csv_path}' (FORMAT csv, HEADER true)"
    )
    csv = csv_parser(csv_path.read_bytes())
    assert list(csv.columns) == list(xlsx.columns)
    for name in csv.columns:
        kinds = {pd.api.types.infer_dtype(frame[name]) for frame in (csv, xlsx)}
        assert len(kinds) == 1, (name, kinds)

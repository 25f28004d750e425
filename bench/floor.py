"""Benchmark "floor": plain DuckDB doing the benchmark's work in a native database file.

Steps (each timed, with the process's peak RSS sampled every 50 ms):

a. load         bronze ``raw_sales`` = CREATE TABLE AS the deterministic seed generator
b. full_build   silver ``sales`` (valid rows + total_amount + _date), gold ``daily_sales_kpis``
c. incremental  new bronze batch (10% updates of existing ids) appended to bronze,
                upserted into silver on txn_id (MERGE INTO, or --upsert delete-insert),
                gold rebuilt

Every step ends with CHECKPOINT so its work is persisted in the database file.

Usage::

    PYTHONPATH=/work/main python bench/floor.py --rows 10000000 --incremental-rows 1000000 \
        --memory-limit 500MB --threads 2 --workdir /tmp/x --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import duckdb
import psutil

from ratatouille_nb.sampledata import sales_select_sql

SILVER_COLUMNS = (
    "txn_id, store_id, product_id, quantity, unit_price, total_amount, "
    "payment_method, transaction_time, _date"
)


def silver_select(source: str) -> str:
    """SELECT turning bronze rows from ``source`` into silver ``sales`` rows."""
    return f"""SELECT txn_id, store_id, product_id, quantity, unit_price,
       quantity * unit_price AS total_amount, payment_method, transaction_time,
       CAST(transaction_time AS DATE) AS _date
FROM {source}
WHERE quantity > 0 AND unit_price > 0"""


GOLD_SQL = """CREATE OR REPLACE TABLE daily_sales_kpis AS
SELECT _date, store_id,
       sum(total_amount) AS revenue,
       count(*) AS transactions,
       avg(total_amount) AS avg_basket,
       count(DISTINCT product_id) AS distinct_products
FROM sales
GROUP BY _date, store_id"""


class PeakRSS:
    """Context manager sampling this process's RSS every ``interval`` s; ``peak_mb`` is the max."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_mb = 0.0
        self.peak_mb = 0.0

    def _sample(self) -> None:
        rss = self._proc.memory_info().rss / 2**20
        self.peak_mb = max(self.peak_mb, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakRSS:
        self.start_mb = self.peak_mb = self._proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()


def timed(fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """Run ``fn`` and return wall seconds, peak/start RSS (MB) and whatever ``fn`` reports."""
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        extra = fn() or {}
        seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(rss.peak_mb, 1),
            "start_rss_mb": round(rss.start_mb, 1), **extra}


def connect(db_path: str, memory_limit: str, threads: int, temp_dir: str) -> duckdb.DuckDBPyConnection:
    """Open a fresh native DuckDB database file with the given limits."""
    for p in (db_path, db_path + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    shutil.rmtree(temp_dir, ignore_errors=True)
    return duckdb.connect(db_path, config={
        "memory_limit": memory_limit, "threads": int(threads), "temp_directory": temp_dir,
    })


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def step_load(con: duckdb.DuckDBPyConnection, rows: int, seed: int = 42) -> dict[str, Any]:
    """Bronze: CREATE TABLE raw_sales from the generator."""
    con.execute(f"CREATE TABLE raw_sales AS {sales_select_sql(rows, seed=seed)}")
    con.execute("CHECKPOINT")
    return {"bronze_rows": _count(con, "raw_sales")}


def step_full_build(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Silver ``sales`` from all of bronze, then gold ``daily_sales_kpis``."""
    t = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TABLE sales AS {silver_select('raw_sales')}")
    silver_s, t = round(time.perf_counter() - t, 3), time.perf_counter()
    con.execute(GOLD_SQL)
    gold_s, t = round(time.perf_counter() - t, 3), time.perf_counter()
    con.execute("CHECKPOINT")
    return {"silver_s": silver_s, "gold_s": gold_s, "checkpoint_s": round(time.perf_counter() - t, 3),
            "silver_rows": _count(con, "sales"), "gold_rows": _count(con, "daily_sales_kpis")}


def upsert_silver(con: duckdb.DuckDBPyConnection, batch: str, method: str = "merge") -> str:
    """Upsert valid rows of bronze table ``batch`` into silver on txn_id; return the method used.

    ``method`` is "merge" (MERGE INTO, falling back to delete+insert when unsupported) or
    "delete-insert" (DELETE ... USING on the valid batch keys, then INSERT). Both give the
    same result: invalid batch rows never touch silver.
    """
    source = f"({silver_select(batch)})"
    cols = [c.strip() for c in SILVER_COLUMNS.split(",")]
    if method == "merge":
        try:
            con.execute(f"""MERGE INTO sales USING {source} AS s ON sales.txn_id = s.txn_id
WHEN MATCHED THEN UPDATE SET {', '.join(f'{c} = s.{c}' for c in cols if c != 'txn_id')}
WHEN NOT MATCHED THEN INSERT ({SILVER_COLUMNS}) VALUES ({', '.join(f's.{c}' for c in cols)})""")
            return "merge"
        except (duckdb.ParserException, duckdb.NotImplementedException):
            pass
    elif method != "delete-insert":
        raise ValueError(f"unknown upsert method {method!r}")
    con.execute(f"DELETE FROM sales USING {source} AS s WHERE sales.txn_id = s.txn_id")
    con.execute(f"INSERT INTO sales {silver_select(batch)}")
    return "delete-insert"


def step_incremental(con: duckdb.DuckDBPyConnection, rows: int, incremental_rows: int,
                     seed: int = 42, upsert: str = "merge") -> dict[str, Any]:
    """New bronze batch (10% updates) appended to bronze, upserted into silver, gold rebuilt."""
    sub: dict[str, float] = {}
    t = time.perf_counter()
    con.execute(f"""CREATE OR REPLACE TABLE raw_sales_batch AS {sales_select_sql(
        incremental_rows, seed=seed, id_offset=rows, update_fraction=0.10, update_pool=rows)}""")
    con.execute("INSERT INTO raw_sales SELECT * FROM raw_sales_batch")
    sub["generate_append_s"], t = round(time.perf_counter() - t, 3), time.perf_counter()
    method = upsert_silver(con, "raw_sales_batch", upsert)
    sub["upsert_s"], t = round(time.perf_counter() - t, 3), time.perf_counter()
    con.execute(GOLD_SQL)
    sub["gold_s"], t = round(time.perf_counter() - t, 3), time.perf_counter()
    con.execute("DROP TABLE raw_sales_batch")
    con.execute("CHECKPOINT")
    sub["checkpoint_s"] = round(time.perf_counter() - t, 3)
    return {"upsert_method": method, **sub, "bronze_rows": _count(con, "raw_sales"),
            "silver_rows": _count(con, "sales"), "gold_rows": _count(con, "daily_sales_kpis")}


def run(rows: int, incremental_rows: int, memory_limit: str, threads: int, workdir: str,
        seed: int = 42, upsert: str = "merge") -> dict[str, Any]:
    """Run all steps in a fresh ``workdir/floor.duckdb``; return the results dict."""
    os.makedirs(workdir, exist_ok=True)
    db_path = os.path.join(workdir, "floor.duckdb")
    con = connect(db_path, memory_limit, threads, os.path.join(workdir, "duckdb_tmp"))
    try:
        steps = {
            "load": timed(lambda: step_load(con, rows, seed)),
            "full_build": timed(lambda: step_full_build(con)),
            "incremental": timed(lambda: step_incremental(con, rows, incremental_rows, seed, upsert)),
        }
        settings = dict(con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('memory_limit', 'threads', 'preserve_insertion_order')").fetchall())
    finally:
        con.close()
    return {
        "engine": "duckdb-floor", "rows": rows, "incremental_rows": incremental_rows,
        "memory_limit": memory_limit, "threads": threads, "upsert": upsert, "steps": steps,
        "duckdb_version": duckdb.__version__, "duckdb_settings": settings,
        "db_file_mb": round(os.path.getsize(db_path) / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: run the floor benchmark and write JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--incremental-rows", type=int, default=1_000_000)
    ap.add_argument("--memory-limit", default="500MB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/ratatouille-floor")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--upsert", choices=["merge", "delete-insert"], default="merge",
                    help="silver upsert strategy for the incremental step")
    ap.add_argument("--out", default="results.json")
    args = ap.parse_args(argv)
    result = run(args.rows, args.incremental_rows, args.memory_limit, args.threads,
                 args.workdir, args.seed, args.upsert)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

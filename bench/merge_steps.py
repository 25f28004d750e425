"""The merge benchmark's steps, each run by `bench/merge.py` in a fresh child process.

Usage (internal)::

    python bench/merge_steps.py STEP '<json args>' OUT.json

Three engines do the same incremental step — upsert a bronze batch (10 % updates of existing
keys, spread uniformly) into a silver table on `txn_id` — with the same memory budget and threads:

* Ratatouille: `Runner.run(["silver.sales"])` on an incremental merge model (merge-on-read);
* plain DuckDB on a native table: `DELETE … USING` + `INSERT`, or `MERGE INTO`, then `CHECKPOINT`;
* dbt-duckdb 1.11: `dbt run` of an incremental model with `incremental_strategy: delete+insert`.

Setup (building the base tables, appending the batch to bronze) is reported but not compared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from steps import PEAKS, Clock  # noqa: E402

# -- the silver table, narrow (10 columns) and wide (22) --------------------------------------------

NARROW = """txn_id, store_id, product_id, quantity, unit_price, quantity * unit_price AS total_amount,
       payment_method, transaction_time, CAST(transaction_time AS DATE) AS _date"""
WIDE_EXTRA = """, quantity * 2 AS q2, CAST(quantity * unit_price * 0.2 AS DOUBLE) AS tax, CAST(unit_price * 1.1 AS DOUBLE) AS price_incl,
       upper(payment_method) AS pay_upper, store_id || '-' || product_id AS store_product, hour(transaction_time) AS hour_of_day,
       dayofweek(transaction_time) AS day_of_week, month(transaction_time) AS month_of_year, CAST(transaction_time AS DATE) + 30 AS due_date,
       length(product_id) + quantity AS plen, quantity > 10 AS bulk, CAST(hash(txn_id) % 1000 AS INTEGER) AS bucket"""
VALID = "quantity > 0 AND unit_price > 0"


def silver_columns(shape: str) -> str:
    return NARROW + (WIDE_EXTRA if shape == "wide" else "")


def silver_from(source: str, shape: str) -> str:
    return f"SELECT {silver_columns(shape)}, _batch FROM {source} WHERE {VALID}"


def bronze_batch(a: dict[str, Any], n: int) -> str:
    """Batch n (1-based): fresh ids after the base and the earlier batches, 10 % updates of base ids.

    With `recent`, the updates hit the keys the previous batch added (the newest ones) instead of
    keys spread over the whole table: the usual change feed, where recent orders change.
    """
    from ratatouille_nb.sampledata import sales_select_sql

    rows, batch = a["rows"], a["batch_rows"]
    pool = batch if a.get("recent") else rows
    gen = sales_select_sql(batch, seed=a["seed"] + n, id_offset=rows + (n - 1) * batch, update_fraction=0.10, update_pool=pool)
    if a.get("recent"):
        newest = rows + (n - 2) * batch if n >= 2 else rows - batch  # the first id of the previous batch
        num = "CAST(substr(txn_id, 4) AS BIGINT)"
        gen = (f"SELECT * REPLACE (CASE WHEN {num} < {pool} THEN 'TXN' || lpad(CAST({num} + {newest} AS VARCHAR), 12, '0') "
               f"ELSE txn_id END AS txn_id) FROM ({gen}) AS r")
    return f"SELECT *, {n} AS _batch FROM ({gen}) AS g"


def base_silver(a: dict[str, Any]) -> str:
    from ratatouille_nb.sampledata import sales_select_sql

    return silver_from(f"(SELECT *, 0 AS _batch FROM ({sales_select_sql(a['rows'], seed=a['seed'])}) AS g)", a["shape"])


READ_SQL = """SELECT _date, store_id, count(*) AS transactions, sum(total_amount) AS revenue,
       avg(total_amount) AS avg_basket, sum(quantity) AS units, count(DISTINCT product_id) AS products
FROM {table} GROUP BY _date, store_id ORDER BY _date, store_id"""
CHECK_SQL = "SELECT count(*), count(DISTINCT txn_id), sum(total_amount), sum(quantity), max(_batch) FROM {table}"

MODEL_SQL = """-- @materialized: incremental
-- @unique_key: txn_id

SELECT {columns}, _batch
FROM {{{{ ref('bronze.raw_sales') }}}}
WHERE {valid}
{{% if is_incremental() %}}
  AND _batch > {{{{ watermark('_batch') }}}}
{{% endif %}}
"""


def _jsonable(row: tuple | None) -> list[Any]:
    return [float(v) if v is not None and not isinstance(v, (int, str)) else v for v in (row or ())]


# -- Ratatouille ------------------------------------------------------------------------------------


def _session(a: dict[str, Any], profile: str | None = None) -> Any:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.settings import Settings

    return Session(Settings.from_env(home=a["home"], workspace=a["workspace"], profile=profile))


def _layout(s: Any, table: str) -> dict[str, Any]:
    st = s.table_stats(table)
    return {k: st[k] for k in ("rows", "data_rows", "deleted_rows", "files", "delete_files", "snapshots")} | {
        "size_mb": round(st["size_bytes"] / 2**20, 1)}


def rat_setup(a: dict[str, Any]) -> dict[str, Any]:
    """Not compared: the workspace, silver.sales (base rows, _batch 0) and an empty bronze.raw_sales."""
    from ratatouille_nb.sampledata import sales_select_sql

    ws = Path(a["workspace"])
    (ws / "pipelines" / "silver").mkdir(parents=True, exist_ok=True)
    (ws / "workspace.yaml").write_text(
        f"name: {a['name']}\nversion: '1.0'\nresources:\n  profile: small\n  overrides: {{max_memory_mb: {a['max_memory_mb']}, "
        f"threads: {a['threads']}, compaction: {{auto: false}}}}\nlayers:\n  bronze: {{partition_by: []}}\n  silver: {{partition_by: []}}\n"
    )
    (ws / "pipelines" / "silver" / "sales.sql").write_text(MODEL_SQL.format(columns=silver_columns(a["shape"]).replace("\n", " "), valid=VALID))
    with _session(a) as s:
        clock = Clock()
        s.sql(f"CREATE TABLE silver.sales AS {base_silver(a)}")
        s.sql(f"CREATE TABLE bronze.raw_sales AS SELECT *, 0 AS _batch FROM ({sales_select_sql(0)}) AS g")
        return {**clock.stop(), "silver": _layout(s, "silver.sales"),
                "duckdb_memory_limit_mb": s.resources.duckdb_limit_mb, "target_file_size_mb": s.resources.target_file_size_mb}


def rat_append(a: dict[str, Any]) -> dict[str, Any]:
    """The bronze append of batch n (measured apart from the merge)."""
    with _session(a) as s:
        clock = Clock()
        res = s.sql(f"INSERT INTO bronze.raw_sales {bronze_batch(a, a['n'])}")
        return {**clock.stop(), "rows": res.writes[0].rows}


def rat_merge(a: dict[str, Any]) -> dict[str, Any]:
    """The incremental step alone: the silver merge model, run by the Runner."""
    from ratatouille_nb.pipeline.executor import Runner

    with _session(a) as s:
        PEAKS.reset()
        clock = Clock()
        record = Runner(s).run(["silver.sales"])
        out = clock.stop()
        if record.status != "success":
            raise RuntimeError(f"run failed: {record.error}")
        [m] = record.models
        return {**out, "operation": m.operation, "rows_written": m.rows_written, "rows_updated": m.rows_updated,
                "model_seconds": round(m.seconds, 3), "silver": _layout(s, "silver.sales")}


def rat_read(a: dict[str, Any]) -> dict[str, Any]:
    """A full read: the aggregate over every row of the table, through Session.sql."""
    with _session(a) as s:
        clock = Clock()
        rows = s.sql(READ_SQL.format(table=a["table"])).relation.fetchall()
        out = clock.stop()
        return {**out, "result_rows": len(rows), "check": [sum(r[2] for r in rows), round(float(sum(r[3] for r in rows)), 2)],
                "layout": _layout(s, a["table"])}


def rat_optimize(a: dict[str, Any]) -> dict[str, Any]:
    from ratatouille_nb.maintenance.optimize import optimize

    with _session(a) as s:
        clock = Clock()
        report = optimize(s, ["silver.sales"])
        out = clock.stop()
        [t] = report.tables
        return {**out, "files_rewritten": t.files_rewritten, "rows_rewritten": t.rows_rewritten,
                "deleted_rows_purged": t.deleted_rows_purged, "silver": _layout(s, "silver.sales")}


def rat_fresh_copy(a: dict[str, Any]) -> dict[str, Any]:
    """Not compared: the same rows written in one go (the 'compacted' baseline of a full read)."""
    with _session(a) as s:
        clock = Clock()
        s.sql("CREATE OR REPLACE TABLE silver.sales_fresh AS SELECT * FROM silver.sales")
        return {**clock.stop(), "layout": _layout(s, "silver.sales_fresh")}


def rat_check(a: dict[str, Any]) -> dict[str, Any]:
    """Not measured: the checksum, under the `large` profile (count(DISTINCT) of 100M keys needs more than 500 MB)."""
    with _session(a, profile="large") as s:
        clock = Clock()
        check = _jsonable(s.sql(CHECK_SQL.format(table="silver.sales")).relation.fetchone())
        return {**clock.stop(), "check": check}


# -- plain DuckDB, native tables --------------------------------------------------------------------


def _native(a: dict[str, Any], fresh: bool = False) -> Any:
    import duckdb

    tmp = os.path.join(os.path.dirname(a["db"]), "duckdb_tmp")
    if fresh:
        for p in (a["db"], a["db"] + ".wal"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp, exist_ok=True)
    config = {"memory_limit": a["memory_limit"], "threads": int(a["threads"])}
    if not a.get("no_temp_directory"):
        config["temp_directory"] = tmp
    return duckdb.connect(a["db"], config=config)


def native_setup(a: dict[str, Any]) -> dict[str, Any]:
    """Not compared: silver `sales` (base rows) and the bronze batch table, in a fresh database file."""
    con = _native(a, fresh=True)
    try:
        clock = Clock()
        con.execute(f"CREATE TABLE sales AS {base_silver(a)}")
        con.execute(f"CREATE TABLE raw_sales AS {bronze_batch(a, 1)}")
        con.execute("CHECKPOINT")
        return {**clock.stop(), "db_mb": round(os.path.getsize(a["db"]) / 2**20, 1)}
    finally:
        con.close()


def native_merge(a: dict[str, Any]) -> dict[str, Any]:
    """DELETE … USING + INSERT (or MERGE INTO) of the valid batch rows, then CHECKPOINT.

    An out-of-memory failure under the budget is a result too (reported, not raised).
    """
    import duckdb

    clock = Clock()
    try:
        return _native_merge(a)
    except duckdb.OutOfMemoryException as exc:
        return {**clock.stop(), "failed": f"OutOfMemoryException: {str(exc).splitlines()[0]}"}


def _native_merge(a: dict[str, Any]) -> dict[str, Any]:
    con = _native(a)
    try:
        source = f"({silver_from('raw_sales', a['shape'])})"
        cols = [c.strip().split(" AS ")[-1].strip() for c in (silver_columns(a["shape"]) + ", _batch").replace("\n", " ").split(",")]
        PEAKS.reset()
        clock = Clock()
        t = time.perf_counter()
        if a["method"] == "merge-into":
            sets = ", ".join(f"{c} = s.{c}" for c in cols if c != "txn_id")
            con.execute(f"MERGE INTO sales USING {source} AS s ON sales.txn_id = s.txn_id WHEN MATCHED THEN UPDATE SET {sets} "
                        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('s.' + c for c in cols)})")
        else:
            con.execute(f"DELETE FROM sales USING {source} AS s WHERE sales.txn_id = s.txn_id")
            con.execute(f"INSERT INTO sales {source[1:-1]}")
        upsert = time.perf_counter() - t
        con.execute("CHECKPOINT")
        out = clock.stop()
        return {**out, "upsert_s": round(upsert, 3), "checkpoint_s": round(out["seconds"] - upsert, 3)}
    finally:
        con.close()


def native_check(a: dict[str, Any]) -> dict[str, Any]:
    con = _native({**a, "memory_limit": "8GB"})
    try:
        clock = Clock()
        return {**clock.stop(), "check": _jsonable(con.execute(CHECK_SQL.format(table=a.get("table", "sales"))).fetchone())}
    finally:
        con.close()


# -- dbt-duckdb -------------------------------------------------------------------------------------

DBT_MODEL = """{{{{ config(materialized='incremental', unique_key='txn_id', incremental_strategy='delete+insert') }}}}
SELECT {columns}, _batch
FROM {{{{ source('bronze', 'raw_sales') }}}}
WHERE {valid}
{{% if is_incremental() %}}
  {{% set watermark = run_query('SELECT coalesce(max(_batch), -1) FROM ' ~ this).columns[0].values()[0] %}}
  AND _batch > {{{{ watermark }}}}
{{% endif %}}
"""


def dbt_setup(a: dict[str, Any]) -> dict[str, Any]:
    """Not compared: a dbt project whose DuckDB file holds `sales` (base rows) and the bronze batch."""
    project = Path(a["project"])
    shutil.rmtree(project, ignore_errors=True)
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: bench\nversion: '1.0'\nprofile: bench\nmodel-paths: [models]\n")
    # memory_limit and threads as the others; no temp_directory (dbt-duckdb fails after its first spill with one).
    (project / "profiles.yml").write_text(
        f"bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {a['db']}\n      threads: {a['threads']}\n"
        f"      settings:\n        memory_limit: {a['memory_limit']}\n"
    )
    (project / "models" / "sources.yml").write_text("version: 2\nsources:\n  - name: bronze\n    schema: main\n    tables:\n      - name: raw_sales\n")
    (project / "models" / "sales.sql").write_text(DBT_MODEL.format(columns=silver_columns(a["shape"]).replace("\n", " "), valid=VALID))
    return native_setup({**a, "no_temp_directory": True})


def dbt_merge(a: dict[str, Any]) -> dict[str, Any]:
    """`dbt run --select sales`: the whole command (dbt's import and parse included) and the model alone."""
    project = a["project"]
    dbt = str(Path(sys.executable).parent / "dbt")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", "DBT_PROFILES_DIR": project}
    clock = Clock()
    proc = subprocess.run([dbt, "run", "--select", "sales", "--project-dir", project], env=env, capture_output=True, text=True)
    out = clock.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"dbt run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    results = json.loads((Path(project) / "target" / "run_results.json").read_text())
    [model] = results["results"]
    children = __import__("resource").getrusage(__import__("resource").RUSAGE_CHILDREN)
    return {**out, "model_seconds": round(float(model["execution_time"]), 3), "status": model["status"],
            "cpu_seconds": round(children.ru_utime + children.ru_stime, 3), "child_maxrss_mb": round(children.ru_maxrss / 1024, 1),
            "dbt_version": results["metadata"]["dbt_version"]}


def dbt_check(a: dict[str, Any]) -> dict[str, Any]:
    return native_check(a)


STEPS = {f.__name__: f for f in (rat_setup, rat_append, rat_merge, rat_read, rat_optimize, rat_fresh_copy, rat_check,
                                  native_setup, native_merge, native_check, dbt_setup, dbt_merge, dbt_check)}


def warm(step: str) -> float:
    """Import what the step will import anyway, so its clock measures work (as bench/steps.py does)."""
    import importlib

    t0 = time.perf_counter()
    modules = ("pyarrow", "pyiceberg.io.pyarrow", "pyiceberg.table", "sqlglot", "jinja2", "ratatouille_nb.engine.session",
               "ratatouille_nb.engine.incremental", "ratatouille_nb.pipeline.executor", "ratatouille_nb.maintenance.optimize")
    for name in modules if step.startswith("rat_") else ("duckdb",):
        importlib.import_module(name)
    return round(time.perf_counter() - t0, 3)


if __name__ == "__main__":
    from steps import main

    raise SystemExit(main(sys.argv, STEPS, warm))

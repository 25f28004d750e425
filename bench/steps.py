"""The benchmark's steps, each run by `bench/run.py` in a fresh child process.

Usage (internal)::

    python bench/steps.py STEP '<json args>' OUT.json

The child times only the step's own work (imports and interpreter start are reported separately
by the parent), and reports its own peak RSS from Linux's ``VmHWM``. Sub-steps get their own
peak window (``/proc/self/clear_refs``); the step's ``vmhwm_mb`` is the maximum over all windows,
i.e. the child's lifetime peak.

Ratatouille steps use the real product: a ``Session`` on a workspace under ``RAT_HOME``, SQL
models run by ``Runner``, branches through the version store. Floor steps are plain DuckDB on a
native database file, reusing ``bench/floor.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# -- peak RSS windows ---------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


class Peaks:
    """Per-sub-step peak RSS (VmHWM windows) plus the lifetime maximum."""

    def __init__(self) -> None:
        self.lifetime = 0.0

    def reset(self) -> None:
        self.lifetime = max(self.lifetime, _status_mb("VmHWM"))
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def read(self) -> float:
        """Peak since the last reset; also folds it into the lifetime maximum."""
        peak = _status_mb("VmHWM")
        self.lifetime = max(self.lifetime, peak)
        return round(peak, 1)


PEAKS = Peaks()


class Clock:
    """Wall and CPU (user + sys, all threads) seconds since creation; CPU time is robust to a busy machine."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.c0 = sum(os.times()[:2])

    def stop(self) -> dict[str, float]:
        return {"seconds": time.perf_counter() - self.t0, "cpu_seconds": round(sum(os.times()[:2]) - self.c0, 3)}


class Substeps:
    """Collects {name: {seconds, peak_rss_mb}} for consecutive parts of a step."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, Any]] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        PEAKS.reset()
        clock = Clock()
        out = fn()
        self.parts[name] = {**clock.stop(), "peak_rss_mb": PEAKS.read()}
        return out


# -- Ratatouille ----------------------------------------------------------------------------------

AGG_SQL = """SELECT _date, store_id,
       count(*) AS transactions,
       sum(total_amount) AS revenue,
       avg(total_amount) AS avg_basket,
       sum(quantity) AS units
FROM {table}
GROUP BY _date, store_id
ORDER BY _date, store_id"""

CHECK_SQL = "SELECT count(*), sum(transactions), sum(revenue), sum(distinct_products) FROM {gold}"
SILVER_CHECK_SQL = "SELECT count(*), count(DISTINCT txn_id), sum(total_amount) FROM {silver}"


def _session(home: str, workspace: str, profile: str | None = None, branch: str | None = None) -> Any:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.settings import Settings

    return Session(Settings.from_env(home=home, workspace=workspace, profile=profile, branch=branch))


def _resources(s: Any) -> dict[str, Any]:
    r = s.resources
    return {"profile": r.name, "max_memory_mb": r.max_memory_mb, "duckdb_memory_limit_mb": r.duckdb_limit_mb,
            "threads": r.threads, "max_parallel_pipelines": r.max_parallel_pipelines,
            "target_file_size_mb": r.target_file_size_mb}


def _jsonable(row: tuple) -> list[Any]:
    return [float(v) if v is not None and not isinstance(v, (int, str)) else v for v in row]


def _runner_models(record: Any, model_parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for m in record.models:
        part = model_parts.get(m.model, {})
        out[m.target] = {"operation": m.operation, "rows_written": m.rows_written, "rows_updated": m.rows_updated,
                         "seconds": round(m.seconds, 3), "peak_rss_mb": part.get("peak_rss_mb"),
                         "status": m.status, "error": m.error}
    return out


def _run_models(s: Any, selectors: list[str] | None = None) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Runner.run with a fresh peak window per model (the DAG is linear, so models run one by one)."""
    from ratatouille_nb.pipeline.executor import Runner

    parts: dict[str, dict[str, Any]] = {}

    def on_event(kind: str, run: Any) -> None:
        if kind == "start":
            PEAKS.reset()
        elif kind in ("done", "fail"):
            parts[run.model] = {"peak_rss_mb": PEAKS.read()}

    record = Runner(s).run(selectors or [], on_event=on_event)
    if record.status != "success":
        raise RuntimeError(f"run failed: {record.error}")
    return record, parts


def rat_load(a: dict[str, Any]) -> dict[str, Any]:
    """Bronze: CREATE TABLE bronze.raw_sales AS the generator (batch 0)."""
    from ratatouille_nb.sampledata import sales_select_sql

    with _session(a["home"], a["workspace"]) as s:
        clock = Clock()
        res = s.sql(f"CREATE TABLE bronze.raw_sales AS SELECT *, 0 AS _batch FROM ({sales_select_sql(a['rows'], seed=a['seed'])}) AS g")
        return {**clock.stop(), "bronze_rows": res.writes[0].rows, "resources": _resources(s)}


def rat_full_build(a: dict[str, Any]) -> dict[str, Any]:
    """Runner: silver.sales (incremental model, first run = full build) then gold.daily_sales_kpis."""
    with _session(a["home"], a["workspace"]) as s:
        clock = Clock()
        record, parts = _run_models(s)
        return {**clock.stop(), "models": _runner_models(record, parts), "resources": _resources(s)}


def rat_incremental(a: dict[str, Any]) -> dict[str, Any]:
    """New batch (10% updates) appended to bronze, merged into silver on txn_id, gold rebuilt."""
    from ratatouille_nb.sampledata import sales_select_sql

    sub = Substeps()
    with _session(a["home"], a["workspace"]) as s:
        batch_sql = sales_select_sql(a["incremental_rows"], seed=a["seed"], id_offset=a["rows"],
                                     update_fraction=0.10, update_pool=a["rows"])
        clock = Clock()
        sub.run("bronze_append", lambda: s.sql(f"INSERT INTO bronze.raw_sales SELECT *, 1 AS _batch FROM ({batch_sql}) AS g"))
        PEAKS.reset()
        runner_clock = Clock()
        record, parts = _run_models(s)
        sub.parts["runner"] = {**runner_clock.stop(), "peak_rss_mb": PEAKS.read()}
        total = clock.stop()
        models = _runner_models(record, parts)
        for target, m in models.items():
            sub.parts[target] = {"seconds": m["seconds"], "peak_rss_mb": m["peak_rss_mb"], "operation": m["operation"]}
        return {**total, "substeps": sub.parts, "models": models, "resources": _resources(s)}


def rat_check(a: dict[str, Any]) -> dict[str, Any]:
    """Not measured: checksums of gold and silver, and table layouts, to compare with the floor."""
    with _session(a["home"], a["workspace"]) as s:
        clock = Clock()
        out: dict[str, Any] = {"gold_check": _jsonable(s.sql(CHECK_SQL.format(gold="gold.daily_sales_kpis")).relation.fetchone())}
        if a.get("silver"):
            out["silver_check"] = _jsonable(s.sql(SILVER_CHECK_SQL.format(silver="silver.sales")).relation.fetchone())
        for key in ("bronze.raw_sales", "silver.sales", "gold.daily_sales_kpis"):
            st = s.table_stats(key)
            out[key] = {"rows": st["rows"], "files": st["files"], "size_mb": round(st["size_bytes"] / 2**20, 1),
                        "snapshots": st["snapshots"]}
        return {**clock.stop(), **out}


def _silver_from_generator(n: int, seed: int, id_offset: int) -> str:
    from ratatouille_nb.sampledata import sales_select_sql

    return f"""SELECT txn_id, store_id, product_id, quantity, unit_price,
       quantity * unit_price AS total_amount, payment_method, transaction_time,
       CAST(transaction_time AS DATE) AS _date
FROM ({sales_select_sql(n, seed=seed, id_offset=id_offset)}) AS g
WHERE quantity > 0 AND unit_price > 0"""


def rat_agg_build(a: dict[str, Any]) -> dict[str, Any]:
    """Setup (not measured): silver.sales_agg_base = base_rows generated rows, or silver.sales_agg =
    that base appended `copies` times (the 100M table is the 10M one appended 10 times)."""
    with _session(a["home"], a["workspace"], profile=a.get("build_profile")) as s:
        clock = Clock()
        if a["stage"] == "base":
            table = "silver.sales_agg_base"
            s.sql(f"CREATE TABLE {table} AS {_silver_from_generator(a['base_rows'], a['seed'], 0)}")
        else:
            table = "silver.sales_agg"
            s.sql(f"CREATE TABLE {table} AS SELECT * FROM silver.sales_agg_base")
            for _ in range(a["copies"] - 1):
                s.sql(f"INSERT INTO {table} SELECT * FROM silver.sales_agg_base")
        stats = s.table_stats(table)
        return {**clock.stop(), "table": table, "rows": stats["rows"], "files": stats["files"],
                "size_mb": round(stats["size_bytes"] / 2**20, 1)}


def rat_agg_query(a: dict[str, Any]) -> dict[str, Any]:
    """Aggregate over a silver table under the workspace's profile (tiny), through Session.sql."""
    with _session(a["home"], a["workspace"]) as s:
        clock = Clock()
        rows = s.sql(AGG_SQL.format(table=a["table"])).relation.fetchall()
        out = clock.stop()
        return {**out, "result_rows": len(rows), "check": [sum(r[2] for r in rows), float(sum(r[3] for r in rows))],
                "resources": _resources(s)}


def rat_branch_setup(a: dict[str, Any]) -> dict[str, Any]:
    """Setup: n small tables in one workspace (one commit each, as a user would create them)."""
    with _session(a["home"], a["workspace"]) as s:
        clock = Clock()
        have = set(s.contents())
        for i in range(a["tables"]):
            key = f"bronze.t_{i:03d}"
            if key not in have:
                s.sql(f"CREATE TABLE {key} AS SELECT range AS id, 'v' || range AS v FROM range(100)")
        return {**clock.stop(), "tables": len(s.contents())}


def rat_branch_create(a: dict[str, Any]) -> dict[str, Any]:
    """create_reference: a branch of the workspace branch holding n tables."""
    from ratatouille_nb.catalog import open_store
    from ratatouille_nb.settings import Settings

    store = open_store(Settings.from_env(home=a["home"]))
    try:
        clock = Clock()
        ref = store.create_reference(a["branch"], "branch", a["from"])
        return {**clock.stop(), "hash": ref.hash, "tables": len(store.contents(a["branch"]))}
    finally:
        store.close()


def rat_branch_change(a: dict[str, Any]) -> dict[str, Any]:
    """Setup: change one table on the branch, and another one on the target (so the merge is three-way)."""
    clock = Clock()
    for branch, table in ((a["branch"], "bronze.t_000"), (a["from"], "bronze.t_001")):
        with _session(a["home"], a["workspace"], branch=branch) as s:
            s.sql(f"INSERT INTO {table} VALUES (1000, 'changed on {branch}')")
    return clock.stop()


def rat_branch_merge(a: dict[str, Any]) -> dict[str, Any]:
    """store.merge(branch -> workspace branch): a three-way merge commit over n tables."""
    from ratatouille_nb.catalog import open_store
    from ratatouille_nb.settings import Settings

    store = open_store(Settings.from_env(home=a["home"]))
    try:
        clock = Clock()
        result = store.merge(a["branch"], a["from"])
        return {**clock.stop(), "kind": result.kind, "tables_changed": result.tables, "tables": len(store.contents(a["from"]))}
    finally:
        store.close()


# -- the floor: plain DuckDB, native tables ------------------------------------------------------


def _floor_con(a: dict[str, Any], fresh: bool = False) -> Any:
    import duckdb
    import floor

    tmp = os.path.join(os.path.dirname(a["db"]), "duckdb_tmp")
    if fresh:
        return floor.connect(a["db"], a["memory_limit"], a["threads"], tmp)
    os.makedirs(tmp, exist_ok=True)
    return duckdb.connect(a["db"], config={"memory_limit": a["memory_limit"], "threads": int(a["threads"]),
                                           "temp_directory": tmp})


def _timed_floor(fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    clock = Clock()
    out = fn() or {}
    return {**clock.stop(), **out}


def floor_load(a: dict[str, Any]) -> dict[str, Any]:
    import floor

    con = _floor_con(a, fresh=True)
    try:
        return _timed_floor(lambda: floor.step_load(con, a["rows"], a["seed"]))
    finally:
        con.close()


def floor_full_build(a: dict[str, Any]) -> dict[str, Any]:
    import floor

    con = _floor_con(a)
    try:
        return _timed_floor(lambda: floor.step_full_build(con))
    finally:
        con.close()


def floor_incremental(a: dict[str, Any]) -> dict[str, Any]:
    import duckdb
    import floor

    con = _floor_con(a)
    clock = Clock()
    try:
        return _timed_floor(lambda: floor.step_incremental(con, a["rows"], a["incremental_rows"], a["seed"], a["upsert"]))
    except duckdb.OutOfMemoryException as exc:
        if not a.get("allow_failure"):
            raise
        return {**clock.stop(), "failed": f"OutOfMemoryException: {str(exc).splitlines()[0]}",
                "memory_limit": a["memory_limit"]}
    finally:
        con.close()


def floor_check(a: dict[str, Any]) -> dict[str, Any]:
    """Not measured: the same checksums as rat_check."""
    con = _floor_con({**a, "memory_limit": "2GB"})
    try:
        clock = Clock()
        out: dict[str, Any] = {"gold_check": _jsonable(con.execute(CHECK_SQL.format(gold="daily_sales_kpis")).fetchone())}
        if a.get("silver"):
            out["silver_check"] = _jsonable(con.execute(SILVER_CHECK_SQL.format(silver="sales")).fetchone())
        out["db_file_mb"] = round(os.path.getsize(a["db"]) / 2**20, 1)
        return {**clock.stop(), **out}
    finally:
        con.close()


def floor_agg_build(a: dict[str, Any]) -> dict[str, Any]:
    """Setup: the same tables as rat_agg_build, native."""
    con = _floor_con(a, fresh=a["stage"] == "base")
    try:
        clock = Clock()
        if a["stage"] == "base":
            table = "sales_agg_base"
            con.execute(f"CREATE TABLE {table} AS {_silver_from_generator(a['base_rows'], a['seed'], 0)}")
        else:
            table = "sales_agg"
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM sales_agg_base")
            for _ in range(a["copies"] - 1):
                con.execute(f"INSERT INTO {table} SELECT * FROM sales_agg_base")
        con.execute("CHECKPOINT")
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return {**clock.stop(), "table": table, "rows": int(rows)}
    finally:
        con.close()


def floor_agg_query(a: dict[str, Any]) -> dict[str, Any]:
    con = _floor_con(a)
    try:
        clock = Clock()
        rows = con.execute(AGG_SQL.format(table=a["table"])).fetchall()
        return {**clock.stop(), "result_rows": len(rows), "check": [sum(r[2] for r in rows), float(sum(r[3] for r in rows))]}
    finally:
        con.close()


def floor_branch_setup(a: dict[str, Any]) -> dict[str, Any]:
    con = _floor_con(a, fresh=True)
    try:
        clock = Clock()
        for i in range(a["tables"]):
            con.execute(f"CREATE TABLE t_{i:03d} AS SELECT range AS id, 'v' || range AS v FROM range(100)")
        con.execute("CHECKPOINT")
        return {**clock.stop(), "tables": a["tables"]}
    finally:
        con.close()


def floor_branch_create(a: dict[str, Any]) -> dict[str, Any]:
    """Plain DuckDB has no branches: the nearest equivalent is copying every table into a schema."""
    con = _floor_con(a)
    try:
        clock = Clock()
        con.execute("BEGIN")
        con.execute("CREATE SCHEMA branch")
        for i in range(a["tables"]):
            con.execute(f"CREATE TABLE branch.t_{i:03d} AS SELECT * FROM main.t_{i:03d}")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return {**clock.stop(), "method": "copy all tables into a schema"}
    finally:
        con.close()


def floor_branch_merge(a: dict[str, Any]) -> dict[str, Any]:
    """Copy the one table changed on the 'branch' schema back (the user must know which one)."""
    con = _floor_con(a)
    try:
        con.execute("INSERT INTO branch.t_000 VALUES (1000, 'changed on branch')")
        clock = Clock()
        con.execute("BEGIN")
        con.execute("CREATE OR REPLACE TABLE main.t_000 AS SELECT * FROM branch.t_000")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        return {**clock.stop(), "method": "replace the changed table from the schema copy"}
    finally:
        con.close()


def copy_file(a: dict[str, Any]) -> dict[str, Any]:
    """Setup helper: copy a database file (the floor's MERGE INTO variant starts from the same state)."""
    clock = Clock()
    shutil.copyfile(a["src"], a["dst"])
    return clock.stop()


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    f.__name__: f
    for f in (rat_load, rat_full_build, rat_incremental, rat_check, rat_agg_build, rat_agg_query, rat_branch_setup,
              rat_branch_create, rat_branch_change, rat_branch_merge, floor_load, floor_full_build,
              floor_incremental, floor_check, floor_agg_build, floor_agg_query, floor_branch_setup,
              floor_branch_create, floor_branch_merge, copy_file)
}


WARM_MODULES = (
    "pyarrow", "pyiceberg.io.pyarrow", "pyiceberg.table", "sqlglot", "jinja2", "yaml", "pydantic",
    "ratatouille_nb.engine.session", "ratatouille_nb.engine.incremental", "ratatouille_nb.catalog.transaction",
    "ratatouille_nb.pipeline.executor", "ratatouille_nb.pipeline.loader",
)


def warm_up(step: str) -> float:
    """Import what a step will import anyway, so its clock measures work, not module loading.

    A notebook kernel or a long-lived process pays this once; a fresh `rat` command pays it on
    every call (reported as `warmup_seconds`). The floor's `import duckdb` is excluded the same way.
    """
    import importlib

    t0 = time.perf_counter()
    if step in ("rat_branch_create", "rat_branch_merge"):
        modules: tuple[str, ...] = ("ratatouille_nb.catalog.local", "ratatouille_nb.settings")
    elif step in ("rat_agg_query", "rat_check"):
        modules = ("ratatouille_nb.engine.session",)  # reads bind iceberg_scan views: no pyiceberg/pyarrow
    elif step.startswith("rat_"):
        modules = WARM_MODULES
    else:
        modules = ("duckdb", "floor")
    for name in modules:
        importlib.import_module(name)
    return round(time.perf_counter() - t0, 3)


def main(argv: list[str], steps: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
         warm: Callable[[str], float] | None = None) -> int:
    """Run one step (`argv`: STEP JSON_ARGS OUT.json) and write its report; also bench/merge_steps.py's entry."""
    step, args, out_path = argv[1], json.loads(argv[2]), argv[3]
    warmup = (warm or warm_up)(step)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    result = (steps or STEPS)[step](args)
    result["seconds"] = round(result["seconds"], 3)
    result["child_total_seconds"] = round(time.perf_counter() - started, 3)
    result["warmup_seconds"] = warmup
    result["heavy_modules_loaded"] = [m for m in ("pyarrow", "pyiceberg", "pandas", "sqlglot", "jinja2") if m in sys.modules]
    result["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    PEAKS.read()
    result["vmhwm_mb"] = round(PEAKS.lifetime, 1)
    Path(out_path).write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

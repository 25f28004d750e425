"""Ratatouille benchmark: each step's wall time and peak RSS, against plain DuckDB (the floor).

One command (`make bench`) generates the seed's sales data deterministically and measures:

* ``load``         bronze ``raw_sales`` from the generator (``--rows``)
* ``full_build``   silver ``sales`` (filter, derived columns, ``_date``) -> gold ``daily_sales_kpis``
* ``incremental``  ``--incremental-rows`` new rows (10 % update existing txn_ids) appended to bronze,
                   merged into silver on ``txn_id``, gold rebuilt
* ``aggregate``    a GROUP BY over silver under the ``tiny`` profile at ``--agg-rows`` / 10 and
                   ``--agg-rows`` rows (how peak RSS grows with row count)
* ``branches``     ``create_reference`` and a three-way ``merge`` on a workspace of 100 tables
* ``load_ext``     ``%load_ext`` time: not measured (the notebook layer is not built yet)

Every measured step runs in a fresh child process (``bench/steps.py``); its peak RSS is the
larger of the child's own VmHWM and this process's 50 ms sampling of the child's process tree.
The floor runs the same work on native tables in a DuckDB database file, with the workspace's
memory budget (``max_memory_mb``) as DuckDB's ``memory_limit`` and the same threads
(``bench/floor.py``); Ratatouille's own DuckDB gets a smaller cap derived from that budget.

Results: ``bench/results/<date>.json`` and the table in ``bench/README.md``
(``--quick`` and ``--only`` runs write ``<date>-quick.json`` / ``<date>-partial.json`` and
leave the README alone; ``--report FILE`` regenerates the README from a results file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

STEP_NAMES = ("load", "full_build", "incremental", "aggregate", "branches", "load_ext")
DEPENDS = {"full_build": ("load",), "incremental": ("load", "full_build")}
PIPELINE_OVERRIDES = {"max_memory_mb": 500, "threads": 2}
TIME_LIMIT_S = 30 * 60

# -- child processes ----------------------------------------------------------------------------


class TreeSampler:
    """Samples the summed RSS of a process and its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        self.peak_mb = max(self.peak_mb, total / 2**20)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_child(step: str, args: dict[str, Any], workdir: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one step in a fresh interpreter; returns its report plus wall time and peak RSS."""
    out = workdir / "reports" / f"{step}-{time.time_ns()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BENCH / "steps.py"), step, json.dumps(args), str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid).start()
    output, _ = proc.communicate()
    sampler.stop()
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"bench step {step} failed (exit {proc.returncode}):\n{output}")
    report = json.loads(out.read_text())
    report["process_seconds"] = round(wall, 3)
    report["sampled_peak_rss_mb"] = round(sampler.peak_mb, 1)
    report["peak_rss_mb"] = round(max(sampler.peak_mb, report.get("vmhwm_mb", 0.0)), 1)
    log(f"  {step:<20} {report['seconds']:>8.2f} s  cpu {report.get('cpu_seconds', 0):7.2f} s  (process {wall:6.2f} s)  "
        f"peak RSS {report['peak_rss_mb']:7.1f} MB  load {report.get('loadavg_1m')}")
    return report


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


# -- workspaces -----------------------------------------------------------------------------------

WORKSPACE_YAML = """\
name: {name}
version: "1.0"
description: "benchmark workspace"
resources:
  profile: {profile}
  overrides: {overrides}
layers:
  bronze: {{partition_by: []}}
  silver: {{partition_by: []}}
  gold: {{partition_by: []}}
"""

SILVER_SQL = """\
-- @materialized: incremental
-- @unique_key: txn_id

SELECT txn_id, store_id, product_id, quantity, unit_price,
       quantity * unit_price AS total_amount, payment_method, transaction_time,
       CAST(transaction_time AS DATE) AS _date,
       _batch
FROM {{ ref('bronze.raw_sales') }}
WHERE quantity > 0 AND unit_price > 0
{% if is_incremental() %}
  AND _batch > {{ watermark('_batch') }}
{% endif %}
"""

GOLD_SQL = """\
-- @materialized: table

SELECT _date, store_id,
       sum(total_amount) AS revenue,
       count(*) AS transactions,
       avg(total_amount) AS avg_basket,
       count(DISTINCT product_id) AS distinct_products
FROM {{ ref('silver.sales') }}
GROUP BY _date, store_id
"""


def write_workspace(root: Path, name: str, profile: str, overrides: dict[str, Any], models: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    flow = "{" + ", ".join(f"{k}: {v}" for k, v in overrides.items()) + "}"
    (root / "workspace.yaml").write_text(WORKSPACE_YAML.format(name=name, profile=profile, overrides=flow))
    if models:
        (root / "pipelines" / "silver").mkdir(parents=True, exist_ok=True)
        (root / "pipelines" / "gold").mkdir(parents=True, exist_ok=True)
        (root / "pipelines" / "silver" / "sales.sql").write_text(SILVER_SQL)
        (root / "pipelines" / "gold" / "daily_sales_kpis.sql").write_text(GOLD_SQL)
    return root


def limits(profile: str, overrides: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """(max_memory_mb, DuckDB memory_limit MB Ratatouille derives from it, threads) of a profile + overrides."""
    from ratatouille_nb.resources import load_profile

    r = load_profile(profile, overrides)
    return r.max_memory_mb, r.duckdb_limit_mb, r.threads


# -- the steps ------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def compare(rat: dict[str, Any], floor: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "time_ratio": ratio(rat["seconds"], floor["seconds"]) if floor else None,
        "cpu_ratio": ratio(rat.get("cpu_seconds"), floor.get("cpu_seconds")) if floor else None,
        "rss_ratio": ratio(rat["peak_rss_mb"], floor["peak_rss_mb"]) if floor else None,
    }


def run_pipeline(cfg: argparse.Namespace, work: Path, wanted: set[str], results: dict[str, Any]) -> None:
    home = work / "rat_home"
    ws = write_workspace(work / "ws_pipeline", "bench-pipeline", "small", PIPELINE_OVERRIDES, models=True)
    max_mb, limit_mb, threads = limits("small", PIPELINE_OVERRIDES)
    base = {"home": str(home), "workspace": str(ws), "rows": cfg.rows, "incremental_rows": cfg.incremental_rows, "seed": cfg.seed}
    # The floor's memory_limit is the user's budget (max_memory_mb); Ratatouille's own DuckDB gets less.
    fl = {"db": str(work / "floor" / "floor.duckdb"), "memory_limit": f"{max_mb}MB", "threads": threads,
          "rows": cfg.rows, "incremental_rows": cfg.incremental_rows, "seed": cfg.seed}
    (work / "floor").mkdir(parents=True, exist_ok=True)
    settings = {"max_memory_mb": max_mb, "ratatouille_duckdb_memory_limit_mb": limit_mb,
                "floor_duckdb_memory_limit_mb": max_mb, "threads": threads}

    log(f"load: bronze.raw_sales, {cfg.rows:,} rows")
    rat = run_child("rat_load", base, work)
    floor = run_child("floor_load", fl, work)
    results["steps"]["load"] = {"rows": cfg.rows, "settings": settings, "ratatouille": rat, "floor": floor, **compare(rat, floor)}
    if not wanted & {"full_build", "incremental"}:
        return

    log("full_build: silver.sales -> gold.daily_sales_kpis")
    rat = run_child("rat_full_build", base, work)
    floor = run_child("floor_full_build", fl, work)
    rcheck, fcheck = run_child("rat_check", base, work), run_child("floor_check", fl, work)
    step = {"rows": cfg.rows, "settings": settings, "ratatouille": rat, "floor": floor, **compare(rat, floor),
            "checks": {"ratatouille": rcheck, "floor": fcheck},
            "results_match": rcheck["gold_check"] == fcheck["gold_check"]}
    step["target"] = "time <= 1.3x floor"
    step["met"] = step["time_ratio"] is not None and step["time_ratio"] <= 1.3
    results["steps"]["full_build"] = step
    if "incremental" not in wanted:
        return

    log(f"incremental: {cfg.incremental_rows:,} rows (10% updates) merged into silver, gold rebuilt")
    merge_db = str(work / "floor_merge" / "floor.duckdb")
    capped_db = str(work / "floor_capped" / "floor.duckdb")
    for db in (merge_db, capped_db):
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        run_child("copy_file", {"src": fl["db"], "dst": db}, work)
    rat = run_child("rat_incremental", base, work)
    floor = run_child("floor_incremental", {**fl, "upsert": "delete-insert"}, work)
    floor_merge = run_child("floor_incremental", {**fl, "db": merge_db, "upsert": "merge"}, work)
    # Plain DuckDB held to the DuckDB cap Ratatouille gives itself under the same budget.
    floor_capped = run_child("floor_incremental", {**fl, "db": capped_db, "upsert": "delete-insert",
                                                   "memory_limit": f"{limit_mb}MB", "allow_failure": True}, work)
    floor_capped["memory_limit"] = f"{limit_mb}MB"
    checks = {"ratatouille": run_child("rat_check", {**base, "silver": True}, work),
              "floor": run_child("floor_check", {**fl, "silver": True}, work),
              "floor_merge_into": run_child("floor_check", {**fl, "db": merge_db, "silver": True}, work)}
    merge_peak = rat["substeps"].get("silver.sales", {}).get("peak_rss_mb")
    step = {"rows": cfg.rows, "incremental_rows": cfg.incremental_rows, "settings": settings,
            "ratatouille": rat, "floor": floor, "floor_merge_into": floor_merge,
            "floor_at_ratatouille_duckdb_limit": floor_capped, **compare(rat, floor),
            "merge_into_time_ratio": ratio(rat["seconds"], floor_merge["seconds"]), "checks": checks,
            "results_match": len({json.dumps([c["gold_check"], c["silver_check"]]) for c in checks.values()}) == 1,
            "merge_peak_rss_mb": merge_peak}
    step["target"] = "time <= 1.5x floor; merge peak RSS < 500 MB (aim < 400)"
    step["met_time"] = step["time_ratio"] is not None and step["time_ratio"] <= 1.5
    step["met_rss"] = merge_peak is not None and merge_peak < 500
    step["met_rss_aim"] = merge_peak is not None and merge_peak < 400
    step["met"] = step["met_time"] and step["met_rss"]
    results["steps"]["incremental"] = step


def run_aggregate(cfg: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    home = work / "rat_home"
    ws = write_workspace(work / "ws_agg", "bench-agg", "tiny", {}, models=False)
    max_mb, limit_mb, threads = limits("tiny")
    copies = 10
    base_rows = max(1, cfg.agg_rows // copies)
    base = {"home": str(home), "workspace": str(ws), "seed": cfg.seed, "base_rows": base_rows, "copies": copies,
            "build_profile": "small"}
    fl = {"db": str(work / "floor_agg" / "agg.duckdb"), "seed": cfg.seed, "base_rows": base_rows, "copies": copies}
    (work / "floor_agg").mkdir(parents=True, exist_ok=True)
    tiny_floor = {**fl, "memory_limit": f"{max_mb}MB", "threads": threads}
    build_floor = {**fl, "memory_limit": "2GB", "threads": 2}
    out: dict[str, Any] = {"settings": {"profile": "tiny", "max_memory_mb": max_mb, "ratatouille_duckdb_memory_limit_mb": limit_mb,
                                        "floor_duckdb_memory_limit_mb": max_mb, "threads": threads},
                           "query": None, "points": []}
    for stage, generated in (("base", base_rows), ("copies", base_rows * copies)):
        what = "generated" if stage == "base" else f"the base appended {copies} times"
        log(f"aggregate: silver table of {generated:,} rows ({what}; setup, not measured)")
        build = run_child("rat_agg_build", {**base, "stage": stage}, work)
        fbuild = run_child("floor_agg_build", {**build_floor, "stage": stage}, work)
        log(f"aggregate: GROUP BY over {build['rows']:,} silver rows under tiny")
        rat = run_child("rat_agg_query", {**base, "table": build["table"]}, work)
        floor = run_child("floor_agg_query", {**tiny_floor, "table": fbuild["table"]}, work)
        out["points"].append({"generated_rows": generated, "silver_rows": build["rows"], "table": build["table"],
                              "ratatouille": rat, "floor": floor,
                              "setup": {"ratatouille_build_s": build["seconds"], "floor_build_s": fbuild["seconds"],
                                        "files": build["files"], "size_mb": build["size_mb"]},
                              "results_match": rat.get("check") == floor.get("check"), **compare(rat, floor)})
    from steps import AGG_SQL

    out["query"] = " ".join(AGG_SQL.format(table="silver.<table>").split())
    small, big = out["points"][0], out["points"][-1]
    out["rss_growth"] = ratio(big["ratatouille"]["peak_rss_mb"], small["ratatouille"]["peak_rss_mb"])
    out["floor_rss_growth"] = ratio(big["floor"]["peak_rss_mb"], small["floor"]["peak_rss_mb"])
    out["target"] = "peak RSS < 1.5 GB at the largest size and flat in row count (growth <= 1.2x)"
    out["met"] = big["ratatouille"]["peak_rss_mb"] < 1536 and (out["rss_growth"] or 99) <= 1.2
    out.update({k: big[k] for k in ("ratatouille", "floor", "time_ratio", "cpu_ratio", "rss_ratio")})
    out["rows"] = big["silver_rows"]
    results["steps"]["aggregate"] = out


def run_branches(cfg: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    home = work / "rat_home"
    ws = write_workspace(work / "ws_branches", "bench-branches", "small", {}, models=False)
    branch_from = "workspace/bench-branches"
    base = {"home": str(home), "workspace": str(ws), "tables": cfg.branch_tables, "branch": "bench/feature", "from": branch_from}
    fl = {"db": str(work / "floor_branches" / "branches.duckdb"), "memory_limit": "1GB", "threads": 2, "tables": cfg.branch_tables}
    (work / "floor_branches").mkdir(parents=True, exist_ok=True)
    log(f"branches: {cfg.branch_tables} tables (setup, not measured)")
    setup = run_child("rat_branch_setup", base, work)
    run_child("floor_branch_setup", fl, work)
    log("branches: create_reference")
    create = run_child("rat_branch_create", base, work)
    fcreate = run_child("floor_branch_create", fl, work)
    run_child("rat_branch_change", base, work)
    log("branches: merge (one table changed on the branch, another on the target)")
    merge = run_child("rat_branch_merge", base, work)
    fmerge = run_child("floor_branch_merge", fl, work)
    results["steps"]["branch_create"] = {"tables": setup["tables"], "ratatouille": create, "floor": fcreate, **compare(create, fcreate)}
    results["steps"]["branch_merge"] = {"tables": setup["tables"], "ratatouille": merge, "floor": fmerge, **compare(merge, fmerge)}


# -- machine and versions -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "cpu": cpu,
            "os": f"{platform.system()} {platform.release()}", "arch": platform.machine()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("duckdb", "pyiceberg", "pyarrow", "sqlglot", "ratatouille_nb", "duckdb-extension-iceberg"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


# -- report ---------------------------------------------------------------------------------------

START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"

README_HEAD = """# Benchmarks

`make bench` (= `.venv/bin/python bench/run.py`; not part of `make test`) generates the seed's
sales data deterministically (`ratatouille_nb.sampledata`) and measures, in one run, every step's
wall time and peak RSS for Ratatouille and for plain DuckDB doing the same work in native DuckDB
tables with the same memory limit and threads (the *floor*, `bench/floor.py`).
`--quick` is a 1M / 100k / 10M-row smoke run; `--only step,...` runs some steps
(`load, full_build, incremental, aggregate, branches`; dependencies are added).

How it measures:

* Every measured step runs in a **fresh child process** (`bench/steps.py STEP`), for Ratatouille
  and for the floor alike, so peak RSS is per step. Peak RSS = max(the child's own `VmHWM`,
  `run.py` sampling the RSS of the child's whole process tree every 50 ms). It includes the
  interpreter and imported libraries (duckdb + pyarrow + pyiceberg + pydantic ≈ 200 MB for
  Ratatouille; ≈ 60 MB for the floor, which imports only duckdb).
* Time is the step's own work, measured inside the child after its modules are imported (a
  notebook kernel or service pays imports once; a fresh `rat` command pays them on every call:
  `warmup_seconds` in the JSON, ≈ 1–2 s). Loading DuckDB's avro/iceberg extensions is inside the
  step. `cpu_seconds` (user + sys of the child, all threads) is recorded too: on a busy machine it
  is the steadier comparison.
* Ratatouille is the real product: `RAT_HOME` under `bench/work/` (gitignored), a workspace
  whose `workspace.yaml` sets `resources: {profile: small, overrides: {max_memory_mb: 500,
  threads: 2}}` — Ratatouille then caps its DuckDB at `memory_limit` = (500 - 270) / 1.3 = 176 MB
  to keep the *process* under 500 MB — bronze written with
  `Session.sql("CREATE TABLE bronze.raw_sales AS …")`, SQL models `pipelines/silver/sales.sql`
  (`-- @materialized: incremental`, `-- @unique_key: txn_id`,
  `{% if is_incremental() %} AND _batch > {{ watermark('_batch') }}{% endif %}`) and
  `pipelines/gold/daily_sales_kpis.sql` (table) run by `Runner(session).run()`, branches through
  the version store (`create_reference`, `merge`).
* The floor gets the user's budget as DuckDB's `memory_limit` (500 MB, 2 threads for the
  pipeline; the `tiny` profile's 1024 MB, 1 thread for the aggregate), on a database file. That
  is more buffer memory than Ratatouille's DuckDB gets, so the comparison favours the floor. The
  floor's upsert is also run at Ratatouille's 176 MB cap, for reference (it runs out of memory
  at 10M rows).

Steps:

| step | Ratatouille | floor (plain DuckDB, native tables) |
|---|---|---|
| load | `CREATE TABLE bronze.raw_sales AS <generator>` (+ `_batch` = 0) → Parquet + Iceberg commit | `CREATE TABLE raw_sales AS <generator>` + `CHECKPOINT` |
| full_build | `Runner.run()`: silver `sales` (valid rows, `total_amount`, `_date`) then gold `daily_sales_kpis` (per day × store: revenue, transactions, avg basket, distinct products), one commit | `CREATE OR REPLACE TABLE sales AS …`, gold `CREATE OR REPLACE TABLE … GROUP BY`, `CHECKPOINT` |
| incremental | `INSERT INTO bronze.raw_sales` the new batch (`_batch` = 1; 10 % of its txn_ids already exist), then `Runner.run()`: silver merges on `txn_id` (merge-on-read since the merge benchmark below; the results section here is from the copy-on-write era), gold rebuilt | batch table appended to `raw_sales`, upsert into `sales` by `DELETE … USING` + `INSERT` (fastest plain-DuckDB method; `MERGE INTO` also reported), gold rebuilt, `CHECKPOINT` |
| aggregate | GROUP BY `_date, store_id` (count, sums, avg) over silver via `Session.sql` under the `tiny` profile: on a generated N/10-row table, then on that table appended 10 times (N rows) | same query on native tables with tiny's budget and threads |
| branch_create | `store.create_reference()` of a workspace branch holding 100 tables | no branches in DuckDB: copy the 100 tables into a schema |
| branch_merge | `store.merge()` with one table changed on the branch and another on the target (three-way merge commit) | replace the one changed table from the schema copy |
| load_ext | `%load_ext` | not measured: the notebook layer is not built yet |

Silver in Ratatouille carries the extra `_batch` column (the incremental filter); otherwise both
sides compute the same tables, and the run checks that gold and silver checksums are identical.
Setup work (building the aggregate tables, creating the 100 tables) is not measured.

Results of the runs are in `bench/results/<date>.json`; the section below is regenerated by each
full run (`--report bench/results/<date>.json` rebuilds it from a results file).
"""


def fmt_s(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3f} s" if v < 1 else f"{v:.1f} s"


def fmt_mb(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f} MB"


def fmt_x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def render_results(res: dict[str, Any]) -> str:
    steps = res["steps"]
    cfg = res["config"]
    lines = [START, "", f"## Results ({res['date']}, {res['mode']} run, total {res['total_seconds'] / 60:.1f} min)", ""]
    m, v = res["machine"], res["versions"]
    lines += [
        f"Machine: {m['nproc']} cores (`nproc`), {m['ram_gb']} GB RAM, {m['cpu']}, {m['os']} {m['arch']}. "
        f"Versions: Python {v.get('python')}, DuckDB {v.get('duckdb')}, pyiceberg {v.get('pyiceberg')}, "
        f"pyarrow {v.get('pyarrow')}, ratatouille_nb {v.get('ratatouille_nb', '?')}.",
        "",
        f"Scale: {cfg['rows']:,} rows, incremental batch {cfg['incremental_rows']:,} rows, aggregate "
        f"{cfg['agg_rows']:,} generated rows, {cfg['branch_tables']} tables for branches.",
        "",
        "| step | Ratatouille time | floor time | time ratio | CPU-time ratio | Ratatouille peak RSS | floor peak RSS | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, label: str, target: str = "", met: Any = None) -> None:
        s = steps.get(name)
        if not s:
            return
        r, f = s["ratatouille"], s.get("floor")
        mark = "" if met is None else ("✅ yes" if met else "❌ no")
        lines.append(
            f"| {label} | {fmt_s(r['seconds'])} | {fmt_s(f['seconds']) if f else '–'} | {fmt_x(s.get('time_ratio'))} | {fmt_x(s.get('cpu_ratio'))} | "
            f"{fmt_mb(r['peak_rss_mb'])} | {fmt_mb(f['peak_rss_mb']) if f else '–'} | {target} | {mark} |"
        )

    row("load", f"load bronze ({cfg['rows'] / 1e6:g}M rows)")
    if "full_build" in steps:
        s = steps["full_build"]
        row("full_build", f"full build silver → gold ({cfg['rows'] / 1e6:g}M)", "≤ 1.3× floor time", s["met"])
    if "incremental" in steps:
        s = steps["incremental"]
        row("incremental", f"incremental ({cfg['incremental_rows'] / 1e6:g}M, 10 % updates) + gold", "≤ 1.5× floor time", s["met_time"])
        mp = s.get("merge_peak_rss_mb")
        aim = "(aim < 400 MB: " + ("met" if s.get("met_rss_aim") else "missed") + ")"
        lines.append(f"| ↳ silver merge model alone | {fmt_s(s['ratatouille']['substeps'].get('silver.sales', {}).get('seconds'))} | "
                     f"{fmt_s(s['floor'].get('upsert_s'))} (upsert) | – | – | {fmt_mb(mp)} | – | peak RSS < 500 MB {aim} | "
                     f"{'✅ yes' if s['met_rss'] else '❌ no'} |")
    if "aggregate" in steps:
        a = steps["aggregate"]
        for i, p in enumerate(a["points"]):
            last = i == len(a["points"]) - 1
            lines.append(
                f"| aggregate under `tiny` ({p['silver_rows'] / 1e6:.1f}M silver rows) | {fmt_s(p['ratatouille']['seconds'])} | "
                f"{fmt_s(p['floor']['seconds'])} | {fmt_x(p['time_ratio'])} | {fmt_x(p.get('cpu_ratio'))} | {fmt_mb(p['ratatouille']['peak_rss_mb'])} | "
                f"{fmt_mb(p['floor']['peak_rss_mb'])} | {'peak < 1.5 GB, flat (growth ' + fmt_x(a['rss_growth']) + ')' if last else ''} | "
                f"{('✅ yes' if a['met'] else '❌ no') if last else ''} |"
            )
    row("branch_create", f"branch create ({steps.get('branch_create', {}).get('tables', '?')} tables)")
    row("branch_merge", "branch merge (three-way, 1 table each side)")
    lines.append("| `%load_ext` | not measured | – | – | – | – | – | notebook layer not built yet | – |")
    lines += ["", f"Total wall time of the run: {res['total_seconds'] / 60:.1f} min (limit 30 min): "
              + ("✅ met" if res["total_seconds"] < TIME_LIMIT_S else "❌ missed") + "."]
    loads = [x for st in _reports(steps) for x in st.get("loadavg_1m", [])]
    if loads:
        lines += ["", f"Machine load (1-min load average seen by the steps): {min(loads):.1f}–{max(loads):.1f} on {m['nproc']} cores"
                  + (" — **the machine was busy with other work, so wall times are inflated and noisy; the CPU-time ratio "
                     "(user + sys of the step's process) is the steadier comparison.**" if max(loads) > (m["nproc"] or 1) else ".")]

    if "incremental" in steps:
        s = steps["incremental"]
        r, f, fm = s["ratatouille"], s["floor"], s["floor_merge_into"]
        lines += ["", "### Incremental step in detail", "",
                  "| part | Ratatouille | peak RSS | floor delete+insert | floor MERGE INTO |", "|---|---|---|---|---|"]
        sub = r["substeps"]
        lines.append(f"| append batch to bronze | {fmt_s(sub['bronze_append']['seconds'])} | {fmt_mb(sub['bronze_append']['peak_rss_mb'])} | "
                     f"{fmt_s(f.get('generate_append_s'))} | {fmt_s(fm.get('generate_append_s'))} |")
        lines.append(f"| silver upsert (merge model) | {fmt_s(sub.get('silver.sales', {}).get('seconds'))} | {fmt_mb(sub.get('silver.sales', {}).get('peak_rss_mb'))} | "
                     f"{fmt_s(f.get('upsert_s'))} | {fmt_s(fm.get('upsert_s'))} |")
        lines.append(f"| gold rebuild | {fmt_s(sub.get('gold.daily_sales_kpis', {}).get('seconds'))} | {fmt_mb(sub.get('gold.daily_sales_kpis', {}).get('peak_rss_mb'))} | "
                     f"{fmt_s(f.get('gold_s'))} | {fmt_s(fm.get('gold_s'))} |")
        lines.append(f"| commit / checkpoint and the rest | {fmt_s(sub['runner']['seconds'] - sub.get('silver.sales', {}).get('seconds', 0) - sub.get('gold.daily_sales_kpis', {}).get('seconds', 0))} | | "
                     f"{fmt_s(f.get('checkpoint_s'))} | {fmt_s(fm.get('checkpoint_s'))} |")
        lines.append(f"| **total** | **{fmt_s(r['seconds'])}** | {fmt_mb(r['peak_rss_mb'])} | **{fmt_s(f['seconds'])}** ({fmt_mb(f['peak_rss_mb'])}) | "
                     f"**{fmt_s(fm['seconds'])}** ({fmt_mb(fm['peak_rss_mb'])}) |")
        fc = s.get("floor_at_ratatouille_duckdb_limit")
        if fc:
            lines += ["", f"Floor upsert at Ratatouille's own DuckDB cap ({fc.get('memory_limit', '?')}): "
                      + (f"**failed** after {fmt_s(fc['seconds'])}: {fc['failed']}" if fc.get("failed")
                         else f"{fmt_s(fc['seconds'])}, peak RSS {fmt_mb(fc['peak_rss_mb'])}") + "."]
        model = r["models"].get("silver.sales", {})
        silver = s.get("checks", {}).get("ratatouille", {}).get("silver.sales", {})
        lines += ["", f"Silver merge: {model.get('rows_written', 0):,} valid batch rows, {model.get('rows_updated', 0):,} of them "
                  f"updated existing rows; silver has {silver.get('files', '?')} data files ({silver.get('size_mb', '?')} MB) after the merge. "
                  "Ratatouille vs MERGE INTO: "
                  f"{fmt_x(s.get('merge_into_time_ratio'))}. Results identical to the floor: {'yes' if s.get('results_match') else 'NO'}."]
    if "full_build" in steps:
        s = steps["full_build"]
        mods = s["ratatouille"]["models"]
        f = s["floor"]
        lines += ["", "### Full build in detail", "", "| part | Ratatouille | peak RSS | floor |", "|---|---|---|---|"]
        lines.append(f"| silver | {fmt_s(mods.get('silver.sales', {}).get('seconds'))} | {fmt_mb(mods.get('silver.sales', {}).get('peak_rss_mb'))} | {fmt_s(f.get('silver_s'))} |")
        lines.append(f"| gold | {fmt_s(mods.get('gold.daily_sales_kpis', {}).get('seconds'))} | {fmt_mb(mods.get('gold.daily_sales_kpis', {}).get('peak_rss_mb'))} | {fmt_s(f.get('gold_s'))} |")
        rest = s["ratatouille"]["seconds"] - sum(m.get("seconds", 0) for m in mods.values())
        lines.append(f"| commit / checkpoint and the rest | {fmt_s(rest)} | | {fmt_s(f.get('checkpoint_s'))} |")
        lines += ["", f"Results identical to the floor: {'yes' if s.get('results_match') else 'NO'}."]
    if "aggregate" in steps:
        a = steps["aggregate"]
        lines += ["", "### Aggregate under `tiny`", "", f"Query: `{a['query']}`", "",
                  f"Peak RSS growth from {a['points'][0]['silver_rows']:,} to {a['points'][-1]['silver_rows']:,} rows: "
                  f"Ratatouille {fmt_x(a['rss_growth'])}, floor {fmt_x(a['floor_rss_growth'])}. Results identical: "
                  f"{'yes' if all(p['results_match'] for p in a['points']) else 'NO'}."]
    lines += ["", END]
    return "\n".join(lines)


def _reports(steps: dict[str, Any]) -> list[dict[str, Any]]:
    """Every child report in a results dict (for the load-average summary)."""
    out = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "loadavg_1m" in node:
                out.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(steps)
    return out


def splice_readme(block: str, start: str = START, end: str = END) -> Path:
    """Replace the section between the `start` and `end` markers of bench/README.md (or append it)."""
    path = BENCH / "README.md"
    text = path.read_text() if path.exists() else README_HEAD
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path


def write_readme(res: dict[str, Any]) -> Path:
    return splice_readme(render_results(res))


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--incremental-rows", type=int, default=1_000_000)
    ap.add_argument("--agg-rows", type=int, default=100_000_000)
    ap.add_argument("--branch-tables", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1M rows, 100k incremental, 10M aggregate")
    ap.add_argument("--only", default="", help=f"comma-separated steps of: {', '.join(STEP_NAMES)}")
    ap.add_argument("--workdir", default=str(BENCH / "work" / "run"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (tables, databases) afterwards")
    ap.add_argument("--out", default=None, help="results JSON (default bench/results/<date>[-quick|-partial].json)")
    ap.add_argument("--report", default=None, metavar="RESULTS_JSON", help="only regenerate bench/README.md from a results file")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.incremental_rows, args.agg_rows = 1_000_000, 100_000, 10_000_000
    return args


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    if cfg.report:
        path = write_readme(json.loads(Path(cfg.report).read_text()))
        print(f"wrote {path}")
        return 0
    wanted = {s.strip() for s in cfg.only.split(",") if s.strip()} or set(STEP_NAMES)
    unknown = wanted - set(STEP_NAMES) - {"branch_create", "branch_merge"}
    if unknown:
        raise SystemExit(f"unknown step(s): {', '.join(sorted(unknown))}; choose from {', '.join(STEP_NAMES)}")
    if wanted & {"branch_create", "branch_merge"}:
        wanted |= {"branches"}
    for step in list(wanted):
        wanted |= set(DEPENDS.get(step, ()))
    work = Path(cfg.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    mode = "-".join(m for m, on in (("quick", cfg.quick), ("partial", bool(cfg.only))) if on) or "full"
    results: dict[str, Any] = {
        "date": date.today().isoformat(), "started_at": datetime.now().isoformat(timespec="seconds"), "mode": mode,
        "config": {"rows": cfg.rows, "incremental_rows": cfg.incremental_rows, "agg_rows": cfg.agg_rows,
                   "branch_tables": cfg.branch_tables, "seed": cfg.seed, "steps": sorted(wanted),
                   "pipeline_overrides": PIPELINE_OVERRIDES},
        "machine": machine(), "versions": versions(), "steps": {},
    }
    log(f"bench ({mode}): {cfg.rows:,} rows, {cfg.incremental_rows:,} incremental, {cfg.agg_rows:,} aggregate; work in {work}")
    t0 = time.perf_counter()
    try:
        if wanted & {"load", "full_build", "incremental"}:
            run_pipeline(cfg, work, wanted, results)
        if "aggregate" in wanted:
            run_aggregate(cfg, work, results)
        if "branches" in wanted:
            run_branches(cfg, work, results)
        if "load_ext" in wanted:
            results["steps"]["load_ext"] = {"status": "not measured", "reason": "the notebook layer is not built yet"}
    finally:
        results["total_seconds"] = round(time.perf_counter() - t0, 1)
        suffix = "" if mode == "full" else f"-{mode}"
        out = Path(cfg.out) if cfg.out else BENCH / "results" / f"{results['date']}{suffix}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {out}")
        if not cfg.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(render_results(results))
    if mode == "full":
        log(f"wrote {write_readme(results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

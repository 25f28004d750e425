"""Merge benchmark: Ratatouille's merge-on-read vs plain DuckDB (DELETE USING + INSERT, MERGE INTO) vs dbt-duckdb.

One command (the last part of `make bench`, in the bench venv that has the `[bench]` extra)
measures, with the same data, memory budget (500 MB) and threads (2):

* the incremental step alone (the bronze append is measured apart): a 1M-row batch with 10 %
  updates spread uniformly over the keys, upserted into a 10M-row silver table — narrow rows
  (10 columns) and wide rows (22 columns) — by Ratatouille, native DuckDB and dbt-duckdb 1.11;
* Ratatouille only: a full read after 1 and after 10 merges, `rat optimize`, a full read after
  it, and the same rows written in one go (the compacted baseline);
* the same 1M batch into a 100M-row table (Ratatouille and native DuckDB).

Each step runs in a fresh child process (`bench/merge_steps.py`); peak RSS is the larger of the
child's VmHWM and the 50 ms sampling of its process tree (dbt runs as a grandchild).
Results: `bench/results/merge-<date>.json` and the merge section of `bench/README.md`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from run import TreeSampler, log, machine, splice_readme, versions  # noqa: E402

MEMORY_MB = 500
THREADS = 2
START, END = "<!-- bench:merge:start -->", "<!-- bench:merge:end -->"


def child(step: str, args: dict[str, Any], work: Path) -> dict[str, Any]:
    out = work / "reports" / f"{step}-{time.time_ns()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BENCH / "merge_steps.py"), step, json.dumps(args), str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid).start()
    output, _ = proc.communicate()
    sampler.stop()
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"merge bench step {step} failed (exit {proc.returncode}):\n{output}")
    report = json.loads(out.read_text())
    report["process_seconds"] = round(time.perf_counter() - started, 3)
    report["peak_rss_mb"] = round(max(sampler.peak_mb, report.get("vmhwm_mb", 0.0)), 1)
    log(f"  {step:<16} {report['seconds']:>8.2f} s  cpu {report.get('cpu_seconds', 0):7.2f} s  peak RSS {report['peak_rss_mb']:7.1f} MB  "
        f"load {report.get('loadavg_1m')}")
    return report


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def scenario(name: str, shape: str, rows: int, batch: int, work: Path, cfg: argparse.Namespace, *, merges: int, dbt: bool,
             merge_into: bool = True) -> dict[str, Any]:
    """One base table size and row shape: setup all engines, then the measured steps."""
    root = work / name
    base = {"rows": rows, "batch_rows": batch, "seed": cfg.seed, "shape": shape, "threads": THREADS}
    rat = {**base, "home": str(root / "rat_home"), "workspace": str(root / "ws"), "name": f"bench-{name}", "max_memory_mb": MEMORY_MB}
    native = {**base, "db": str(root / "native" / "sales.duckdb"), "memory_limit": f"{MEMORY_MB}MB"}
    into = {**native, "db": str(root / "native_merge" / "sales.duckdb")}
    dbtp = {**base, "project": str(root / "dbt"), "db": str(root / "dbt_db" / "dbt.duckdb"), "memory_limit": f"{MEMORY_MB}MB"}
    for d in (native, into, dbtp):
        Path(d["db"]).parent.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"shape": shape, "rows": rows, "batch_rows": batch, "setup": {}}

    log(f"{name}: setup ({rows:,} base rows, {shape}; not compared)")
    out["setup"]["ratatouille"] = child("rat_setup", rat, work)
    out["setup"]["native"] = child("native_setup", native, work)
    if merge_into:
        shutil.copyfile(native["db"], into["db"])
    if dbt:
        out["setup"]["dbt"] = child("dbt_setup", dbtp, work)

    log(f"{name}: the incremental step ({batch:,} rows, 10 % updates)")
    out["bronze_append"] = child("rat_append", {**rat, "n": 1}, work)
    out["ratatouille"] = child("rat_merge", rat, work)
    out["native"] = child("native_merge", {**native, "method": "delete-insert"}, work)
    if merge_into:
        out["native_merge_into"] = child("native_merge", {**into, "method": "merge-into"}, work)
    if dbt:
        out["dbt"] = child("dbt_merge", dbtp, work)
    checks = {"ratatouille": child("rat_check", rat, work)["check"]}
    for label, step, args in (("native", "native_check", native), ("native_merge_into", "native_check", into), ("dbt", "dbt_check", dbtp)):
        if label in out and not out[label].get("failed"):
            checks[label] = child(step, args, work)["check"]
    out["checks"] = checks
    out["results_match"] = len({json.dumps(c) for c in checks.values()}) == 1 if len(checks) > 1 else None

    if merges > 1:
        log(f"{name}: full reads after 1 and {merges} merges, optimize, compacted baseline (Ratatouille)")
        out["read_after_1"] = child("rat_read", {**rat, "table": "silver.sales"}, work)
        more = []
        for n in range(2, merges + 1):
            child("rat_append", {**rat, "n": n}, work)
            more.append(child("rat_merge", rat, work))
        out["later_merges"] = more
        out[f"read_after_{merges}"] = child("rat_read", {**rat, "table": "silver.sales"}, work)
        out["optimize"] = child("rat_optimize", rat, work)
        out["read_after_optimize"] = child("rat_read", {**rat, "table": "silver.sales"}, work)
        out["fresh_copy"] = child("rat_fresh_copy", rat, work)
        out["read_compacted"] = child("rat_read", {**rat, "table": "silver.sales_fresh"}, work)
        out["reads_match"] = len({json.dumps(out[k]["check"]) for k in (f"read_after_{merges}", "read_after_optimize", "read_compacted")}) == 1
    # Last, a batch whose updates hit the previous batch's keys (the usual change feed): its key range prunes row groups.
    log(f"{name}: a batch updating recent keys (Ratatouille)")
    n = merges + 1
    child("rat_append", {**rat, "n": n, "recent": True}, work)
    out["ratatouille_recent"] = child("rat_merge", rat, work)
    shutil.rmtree(root, ignore_errors=True)  # the 100M case needs the disk
    return out


def summarize(res: dict[str, Any]) -> dict[str, Any]:
    s = res["scenarios"]
    n10, wide, n100 = s.get("narrow_10m"), s.get("wide_10m"), s.get("narrow_100m")
    t: dict[str, Any] = {}
    for key, sc in (("narrow", n10), ("wide", wide)):
        if not sc:
            continue
        r, f = sc["ratatouille"]["seconds"], sc["native"]["seconds"]
        t[f"{key}_vs_native"] = ratio(r, f)
        t[f"{key}_cpu_vs_native"] = ratio(sc["ratatouille"].get("cpu_seconds"), sc["native"].get("cpu_seconds"))
        t[f"{key}_vs_native_merge_into"] = ratio(r, sc["native_merge_into"]["seconds"])
        if "dbt" in sc:
            t[f"{key}_vs_dbt_model"] = ratio(r, sc["dbt"]["model_seconds"])
            t[f"{key}_vs_dbt_command"] = ratio(r, sc["dbt"]["seconds"])
        t[f"{key}_merge_peak_rss_mb"] = sc["ratatouille"]["peak_rss_mb"]
    if n10 and "read_after_optimize" in n10:
        m = len(n10["later_merges"]) + 1
        base = n10["read_compacted"]["seconds"]
        t["read_after_1_vs_compacted"] = ratio(n10["read_after_1"]["seconds"], base)
        t[f"read_after_{m}_vs_compacted"] = ratio(n10[f"read_after_{m}"]["seconds"], base)
        t["read_after_optimize_vs_compacted"] = ratio(n10["read_after_optimize"]["seconds"], base)
        t["later_merges_median_s"] = round(statistics.median(x["seconds"] for x in n10["later_merges"]), 3)
    if n10 and n100:
        t["table_100m_vs_10m"] = ratio(n100["ratatouille"]["seconds"], n10["ratatouille"]["seconds"])
        t["native_100m_vs_10m"] = None if n100["native"].get("failed") else ratio(n100["native"]["seconds"], n10["native"]["seconds"])
        t["recent_100m_vs_10m"] = ratio(n100["ratatouille_recent"]["seconds"], n10["ratatouille_recent"]["seconds"])
    return t


# -- report -----------------------------------------------------------------------------------------


def fmt_s(v: float | None) -> str:
    return "–" if v is None else (f"{v:.2f} s" if v < 10 else f"{v:.1f} s")


def fmt_mb(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f} MB"


def fmt_x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def mark(ok: bool | None) -> str:
    return "–" if ok is None else ("✅ yes" if ok else "❌ no")


def mark_equal(ok: bool | None) -> str:
    return "– (nothing to compare)" if ok is None else ("yes" if ok else "NO")


def _native_cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "not run"
    if r.get("failed"):
        return f"**failed** after {fmt_s(r['seconds'])} ({r['failed'].split(':')[0]})"
    return f"{fmt_s(r['seconds'])} ({fmt_mb(r['peak_rss_mb'])})"


def render(res: dict[str, Any]) -> str:
    s, t, m, v = res["scenarios"], res["summary"], res["machine"], res["versions"]
    lines = [START, "", f"## Merge-on-read vs native DuckDB vs dbt-duckdb ({res['date']}, {res['total_seconds'] / 60:.1f} min)", "",
             f"Machine: {m['nproc']} cores, {m['ram_gb']} GB RAM, {m['cpu']}. DuckDB {v.get('duckdb')}, pyiceberg {v.get('pyiceberg')}, "
             f"dbt-core {v.get('dbt-core', '–')}, dbt-duckdb {v.get('dbt-duckdb', '–')}. Every engine: {MEMORY_MB} MB, {THREADS} threads "
             f"(Ratatouille's profile `max_memory_mb: {MEMORY_MB}` gives its DuckDB "
             f"{s['narrow_10m']['setup']['ratatouille'].get('duckdb_memory_limit_mb', '?')} MB; native DuckDB and dbt-duckdb get "
             f"`memory_limit = {MEMORY_MB}MB`). Load average seen by the steps: {res['load_range'][0]:.1f}–{res['load_range'][1]:.1f}."
             + (f" Also running: {res['also_running']}." if res.get("also_running") else ""), "",
             "The incremental step alone (1M-row batch, 10 % updates spread uniformly; the bronze append is apart):", "",
             "| table | Ratatouille (merge-on-read) | peak RSS | native DELETE USING + INSERT | native MERGE INTO | dbt-duckdb delete+insert (model / whole `dbt run`) | dbt peak RSS | results equal |",
             "|---|---|---|---|---|---|---|---|"]
    for key, label in (("narrow_10m", "10M rows, narrow (10 columns)"), ("wide_10m", "10M rows, wide (22 columns)"), ("narrow_100m", "100M rows, narrow")):
        sc = s.get(key)
        if not sc:
            continue
        d = sc.get("dbt")
        lines.append(
            f"| {label} | {fmt_s(sc['ratatouille']['seconds'])} | {fmt_mb(sc['ratatouille']['peak_rss_mb'])} | "
            f"{_native_cell(sc.get('native'))} | {_native_cell(sc.get('native_merge_into'))} | "
            + (f"{fmt_s(d['model_seconds'])} / {fmt_s(d['seconds'])} | {fmt_mb(d['peak_rss_mb'])}" if d else "not run | –")
            + f" | {mark_equal(sc['results_match'])} |"
        )
    n10 = s.get("narrow_10m", {})
    app = n10.get("bronze_append", {})
    lines += ["", f"Bronze append of the batch (not in the times above): {fmt_s(app.get('seconds'))}. Native times include the `CHECKPOINT` "
              "that makes the change durable (Ratatouille's include its commit).", ""]
    merges = len(n10.get("later_merges", [])) + 1
    target_rows = [
        ("merge ≤ 1.0× native DuckDB (narrow, 10M; CPU-time ratio " + fmt_x(t.get("narrow_cpu_vs_native")) + ")", fmt_x(t.get("narrow_vs_native")), t.get("narrow_vs_native") is not None and t["narrow_vs_native"] <= 1.0),
        ("merge ≤ 1.0× native DuckDB (wide, 10M; CPU-time ratio " + fmt_x(t.get("wide_cpu_vs_native")) + ")", fmt_x(t.get("wide_vs_native")), t.get("wide_vs_native") is not None and t["wide_vs_native"] <= 1.0),
        ("merge faster than dbt-duckdb's model (narrow / wide)", f"{fmt_x(t.get('narrow_vs_dbt_model'))} / {fmt_x(t.get('wide_vs_dbt_model'))}",
         None if t.get("narrow_vs_dbt_model") is None else t["narrow_vs_dbt_model"] < 1 and (t.get("wide_vs_dbt_model") or 0) < 1),
        ("merge peak RSS < 400 MB (narrow / wide)", f"{fmt_mb(t.get('narrow_merge_peak_rss_mb'))} / {fmt_mb(t.get('wide_merge_peak_rss_mb'))}",
         None if t.get("narrow_merge_peak_rss_mb") is None else t["narrow_merge_peak_rss_mb"] < 400 and (t.get("wide_merge_peak_rss_mb") or 999) < 400),
        (f"full read after {merges} merges ≤ 1.5× compacted", fmt_x(t.get(f"read_after_{merges}_vs_compacted")),
         None if t.get(f"read_after_{merges}_vs_compacted") is None else t[f"read_after_{merges}_vs_compacted"] <= 1.5),
        ("full read after optimize ≤ 1.1× compacted", fmt_x(t.get("read_after_optimize_vs_compacted")),
         None if t.get("read_after_optimize_vs_compacted") is None else t["read_after_optimize_vs_compacted"] <= 1.1),
        ("same batch into 100M vs 10M ≤ 1.3× (updates spread over all keys)", fmt_x(t.get("table_100m_vs_10m")),
         None if t.get("table_100m_vs_10m") is None else t["table_100m_vs_10m"] <= 1.3),
        ("same batch into 100M vs 10M ≤ 1.3× (updates of recent keys)", fmt_x(t.get("recent_100m_vs_10m")),
         None if t.get("recent_100m_vs_10m") is None else t["recent_100m_vs_10m"] <= 1.3),
    ]
    lines += ["| target | measured | met |", "|---|---|---|"] + [f"| {a} | {b} | {mark(c)} |" for a, b, c in target_rows]
    if "read_after_optimize" in n10:
        lay = lambda r: f"{r['layout']['files']} data + {r['layout']['delete_files']} delete files"  # noqa: E731
        lines += ["", f"Full reads (the aggregate over every row, `Session.sql`, {MEMORY_MB} MB profile), narrow 10M:", "",
                  "| table state | read | peak RSS | layout |", "|---|---|---|---|"]
        for k, label in (("read_after_1", "after 1 merge"), (f"read_after_{merges}", f"after {merges} merges"),
                         ("read_after_optimize", "after `rat optimize`"), ("read_compacted", "compacted (same rows written in one go)")):
            r = n10[k]
            lines.append(f"| {label} | {fmt_s(r['seconds'])} | {fmt_mb(r['peak_rss_mb'])} | {lay(r)} |")
        o = n10["optimize"]
        lines += ["", f"`rat optimize` after {merges} merges: {fmt_s(o['seconds'])}, peak RSS {fmt_mb(o['peak_rss_mb'])}, "
                  f"{o['files_rewritten']} files rewritten, {o['deleted_rows_purged']:,} deleted rows purged. Merges 2–{merges}: "
                  f"median {fmt_s(t.get('later_merges_median_s'))}. Reads agree: {'yes' if n10.get('reads_match') else 'NO'}."]
    rec = [(k, s[k]["ratatouille_recent"]) for k in ("narrow_10m", "narrow_100m") if s.get(k, {}).get("ratatouille_recent")]
    if rec:
        lines += ["", "A last batch whose 10 % updates hit the keys the previous batch added (Ratatouille only; the batch's key range "
                  "lets DuckDB skip the row groups of older keys): " + "; ".join(f"{k.replace('_', ' ')}: {fmt_s(r['seconds'])}, {fmt_mb(r['peak_rss_mb'])}" for k, r in rec) + "."]
    lines += ["", END]
    return "\n".join(lines)


def write_readme(res: dict[str, Any]) -> Path:
    return splice_readme(render(res), START, END)


def _loads(node: Any) -> list[float]:
    if isinstance(node, dict):
        return [*node.get("loadavg_1m", []), *(x for v in node.values() for x in _loads(v))]
    if isinstance(node, list):
        return [x for v in node for x in _loads(v)]
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--big-rows", type=int, default=100_000_000, help="the large table (0 skips it)")
    ap.add_argument("--batch-rows", type=int, default=1_000_000)
    ap.add_argument("--merges", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-dbt", action="store_true")
    ap.add_argument("--also-running", default="", help="what else the machine was doing (goes into the README)")
    ap.add_argument("--workdir", default=str(BENCH / "work" / "merge"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--report", default=None, metavar="RESULTS_JSON", help="only regenerate the README section")
    cfg = ap.parse_args(argv)
    if cfg.report:
        print(f"wrote {write_readme(json.loads(Path(cfg.report).read_text()))}")
        return 0
    dbt = not cfg.no_dbt and (Path(sys.executable).parent / "dbt").exists()
    if not cfg.no_dbt and not dbt:
        raise SystemExit("dbt is not installed next to this Python: run `make bench` (it builds .venv-bench with the [bench] extra)")
    work = Path(cfg.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    full = cfg.rows == 10_000_000 and cfg.batch_rows == 1_000_000
    ver = versions()
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("dbt-core", "dbt-duckdb"):
        try:
            ver[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    res: dict[str, Any] = {"date": date.today().isoformat(), "started_at": datetime.now().isoformat(timespec="seconds"),
                           "config": vars(cfg) | {"memory_mb": MEMORY_MB, "threads": THREADS}, "machine": machine(), "versions": ver,
                           "also_running": cfg.also_running, "scenarios": {}}
    t0 = time.perf_counter()
    try:
        res["scenarios"]["narrow_10m"] = scenario("narrow_10m", "narrow", cfg.rows, cfg.batch_rows, work, cfg, merges=cfg.merges, dbt=dbt)
        res["scenarios"]["wide_10m"] = scenario("wide_10m", "wide", cfg.rows, cfg.batch_rows, work, cfg, merges=1, dbt=dbt)
        if cfg.big_rows:
            res["scenarios"]["narrow_100m"] = scenario("narrow_100m", "narrow", cfg.big_rows, cfg.batch_rows, work, cfg, merges=1, dbt=False,
                                                       merge_into=False)
    finally:
        res["total_seconds"] = round(time.perf_counter() - t0, 1)
        loads = _loads(res["scenarios"]) or [0.0]
        res["load_range"] = [min(loads), max(loads)]
        res["summary"] = summarize(res) if res["scenarios"].get("narrow_10m") else {}
        out = Path(cfg.out) if cfg.out else BENCH / "results" / f"merge-{res['date']}{'' if full else '-small'}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")
        log(f"wrote {out}")
        shutil.rmtree(work, ignore_errors=True)
    if full and res["scenarios"].get("narrow_10m"):
        log(f"wrote {write_readme(res)}")
    print(json.dumps(res["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

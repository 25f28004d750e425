"""Benchmark: a 20M-row `INSERT … SELECT` into an Iceberg table under the `tiny` profile.

Shows that writes stream (DuckDB COPY -> Parquet -> pyiceberg add_files): peak RSS stays near
the profile's cap whatever the row count. Run: `.venv/bin/python bench/insert_tiny.py [--rows N]`.
Writes bench/results/insert_tiny-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
from ratatouille_nb.engine.session import Session
from ratatouille_nb.sampledata import sales_select_sql
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import init_workspace


def run(rows: int, profile: str, workdir: Path) -> dict:
    settings = Settings.from_env(home=str(workdir / "home"), profile=profile)
    ws = init_workspace(workdir / "ws", settings, name="bench")
    with Session(settings, ws) as s:
        s.sql(f"CREATE TABLE bronze.raw_sales AS {sales_select_sql(0)}")
        baseline = peak_rss_mb()
        reset_peak()
        started = time.perf_counter()
        result = s.sql(f"INSERT INTO bronze.raw_sales {sales_select_sql(rows)}")
        elapsed = time.perf_counter() - started
        peak = peak_rss_mb()
        stats = s.table_stats("bronze.raw_sales")
        return {
            "benchmark": "insert_select",
            "rows": rows,
            "profile": profile,
            "max_memory_mb": s.resources.max_memory_mb,
            "duckdb_memory_limit_mb": s.resources.duckdb_limit_mb,
            "threads": s.resources.threads,
            "seconds": round(elapsed, 2),
            "rows_per_second": round(rows / elapsed),
            "peak_rss_mb": round(peak, 1),
            "rss_before_mb": round(baseline, 1),
            "rows_written": result.writes[0].rows,
            "files": stats["files"],
            "size_mb": round(stats["size_bytes"] / 2**20, 1),
            "machine": f"{platform.machine()} {platform.system()}, {__import__('os').cpu_count()} cores",
            "python": platform.python_version(),
            "duckdb": __import__("duckdb").__version__,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--profile", default="tiny")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rat-bench-") as tmp:
        out = run(args.rows, args.profile, Path(tmp))
    print(json.dumps(out, indent=2))
    target = Path(__file__).parent / "results" / f"insert_tiny-{date.today().isoformat()}.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

"""Benchmark: what the locked DuckDB sandbox costs (engine/sandbox.py).

A reader workspace may read 0, 1, 10 or 100 data products of an owner workspace (each a table of
3 data files in 3 snapshots). Measured, each as the median of `--repeat` runs:

* `open_cold_s`: a new Session's first connection — read which products the workspace may read,
  resolve each pin, list its files with pyiceberg (metadata, manifest list, manifests, data files),
  open DuckDB, load avro/iceberg/httpfs, apply and lock the sandbox; the pin-file cache is empty
  (a fresh `rat` command);
* `open_warm_s`: the same with the process's pin-file cache filled (a kernel or server opening
  another session);
* `connect_unlocked_s`: only DuckDB + the three extensions, no sandbox (what any connection costs);
* `reopen_s`: `Session._reopen()` (after a revocation, or a statement needing a pin not yet allowed);
* `statement_s`: `Session.sql("SELECT 42")` end to end (allow-list, registry check, bind), against
  `raw_statement_s`, the same on the bare connection.

Run: `.venv/bin/python bench/sandbox.py [--repeat 5]`. Writes bench/results/sandbox-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratatouille_nb.engine import sandbox
from ratatouille_nb.engine.connection import connect
from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

COUNTS = (0, 1, 10, 100)


def _median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 4)


def _publish(owner: Session, index: int) -> None:
    table = f"silver.p{index:03d}"
    owner.sql(f"CREATE TABLE {table} AS SELECT i AS id, i * 2 AS v FROM range(1000) t(i)")
    owner.sql(f"INSERT INTO {table} SELECT i AS id, i AS v FROM range(1000, 2000) t(i)")
    owner.sql(f"INSERT INTO {table} SELECT i AS id, i AS v FROM range(2000, 3000) t(i)")
    owner.products.publish(table, f"p{index:03d}", "1.0.0", access=[("reader", "read")])


def _measure(settings: Settings, reader_ws: Workspace, count: int, repeat: int) -> dict[str, Any]:
    def open_session() -> Session:
        s = Session(settings, reader_ws)
        _ = s.con
        return s

    def cold() -> None:
        sandbox._PIN_CACHE.clear()
        open_session().close()

    def warm() -> None:
        open_session().close()

    open_cold = _median(cold, repeat)
    open_warm = _median(warm, repeat)
    s = open_session()
    try:
        unlocked = _median(lambda: connect(s.resources, settings.spill_dir, warehouse=s.warehouse).close(), repeat)
        reopen = _median(s._reopen, repeat)
        def statement_run() -> None:
            s.sql("SELECT 42").relation.fetchall()  # allow-list, registry check, bind, run

        statement = _median(statement_run, repeat * 20)
        raw = _median(lambda: s.con.execute("SELECT 42").fetchall(), repeat * 20)
        if count:
            assert s.sql("SELECT count(*) FROM products.p000").relation.fetchone() == (3000,)
        return {
            "readable_products": count,
            "allowed_paths": len(s.sandbox.paths),
            "allowed_directories": len(s.sandbox.directories),
            "open_cold_s": open_cold,
            "open_warm_s": open_warm,
            "connect_unlocked_s": unlocked,
            "reopen_s": reopen,
            "statement_s": statement,
            "raw_statement_s": raw,
        }
    finally:
        s.close()


def run(repeat: int, workdir: Path) -> dict[str, Any]:
    settings = Settings.from_env(home=str(workdir / "home"))
    owner_ws = init_workspace(workdir / "owner", settings, name="owner")
    reader_ws = init_workspace(workdir / "reader", settings, name="reader")
    rows = []
    with Session(settings, owner_ws) as owner:
        published = 0
        for count in COUNTS:
            while published < count:
                _publish(owner, published)
                published += 1

            rows.append(_measure(settings, reader_ws, count, repeat))
            print(json.dumps(rows[-1]), flush=True)
    return {
        "benchmark": "sandbox",
        "repeat": repeat,
        "rows": rows,
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "duckdb": __import__("duckdb").__version__,
        "pyiceberg": __import__("pyiceberg").__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rat-bench-sandbox-") as tmp:
        result = run(args.repeat, Path(tmp))
    out = Path(__file__).parent / "results" / f"sandbox-{date.today().isoformat()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

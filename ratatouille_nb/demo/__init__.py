"""`rat demo` / `make demo`: the main job on the embedded default, end to end.

Creates (or reuses) the demo workspace from the template shipped here, lands the seed's sales
data in the landing zone (CSV batches and an Excel export with junk header rows), runs
`rat build` (ingest bronze with the Python pipeline, merge silver incrementally, rebuild gold,
test, publish by merging the build branch), then lands a second batch with 10 % updates and
builds again, printing what changed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ratatouille_nb.settings import Settings

TEMPLATE = Path(__file__).parent / "template"
FILE_ROWS = 100_000
EXCEL_ROWS = 1_000


def scaffold(path: Path) -> bool:
    """Copy the template into `path` unless a workspace is already there; True if copied."""
    if (path / "workspace.yaml").is_file():
        return False
    shutil.copytree(TEMPLATE, path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for sub in ("macros", "schemas", "notebooks"):
        (path / sub).mkdir(exist_ok=True)
    return True


def land_csv_batches(con: Any, root: str, name: str, rows: int, **data_args: Any) -> list[str]:
    """Write `rows` sales rows as CSV files of FILE_ROWS each (skipping files already there)."""
    from ratatouille_nb.sampledata import sales_select_sql

    written = []
    base_offset = data_args.pop("id_offset", 0)
    seed = data_args.pop("seed", 42)
    for i, start in enumerate(range(0, rows, FILE_ROWS), start=1):
        path = Path(root) / "landing" / "sales" / f"sales_{name}_{i:04d}.csv"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        n = min(FILE_ROWS, rows - start)
        select = sales_select_sql(n, id_offset=base_offset + start, seed=seed + i, **data_args)
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER true)")
        written.append(str(path))
    return written


def land_excel(con: Any, root: str) -> str | None:
    """A store's Excel export as the seed describes: 3 junk rows, then headers to rename."""
    from openpyxl import Workbook

    from ratatouille_nb.sampledata import sales_select_sql

    path = Path(root) / "landing" / "sales" / "sales_STORE001_2024-01-15.xlsx"
    if path.exists():
        return None
    rows = con.execute(
        f"SELECT txn_id, product_id, quantity, unit_price, payment_method, transaction_time "
        f"FROM ({sales_select_sql(EXCEL_ROWS, seed=7, id_offset=900_000_000)})"
    ).fetchall()
    book = Workbook()
    sheet = book.active
    sheet.append(["ACME POS export"])
    sheet.append(["Store: STORE001", "Date: 2024-01-15"])
    sheet.append([])
    sheet.append(["Transaction ID", "product_id", "Qty", "Price", "payment_method", "transaction_time"])
    for row in rows:
        sheet.append([row[0], row[1], row[2], float(row[3]), row[4], row[5]])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return str(path)


def _print_build(result: Any, echo: Callable[[str], None]) -> None:
    for m in result.run.models:
        extra = f", {m.rows_updated:,} updated" if m.rows_updated else ""
        echo(f"  {m.model:<24} {m.target:<24} {m.operation:<12} {m.rows_written:>10,} rows{extra}  {m.seconds:5.2f}s  peak {m.peak_rss_mb:4.0f} MB")
    failed = [t for t in result.tests if t.status != "pass"]
    echo(f"  tests: {sum(t.status == 'pass' for t in result.tests)} passed, {len(failed)} not passing")
    for t in failed:
        echo(f"    {t.status}: {t.model} {t.test} ({t.message})")
    echo(f"  {'published: merged into ' + result.branch if result.published else 'NOT published: ' + result.reason}")


def run_demo(settings: Settings, path: Path, *, rows: int = 1_000_000, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Build the demo workspace twice (initial load, then an incremental batch); returns rows per table."""
    from ratatouille_nb.engine.memory import peak_rss_mb
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.errors import RatError
    from ratatouille_nb.verbs import branches, pipelines
    from ratatouille_nb.workspace import Workspace
    from ratatouille_nb.workspace.manager import register_workspace

    started = time.perf_counter()
    path = path.resolve()
    echo(("created" if scaffold(path) else "using") + f" demo workspace in {path}")
    workspace = Workspace.load(path)
    register_workspace(workspace, settings)
    with Session(settings, workspace) as session:
        root = session.warehouse.location(workspace.prefix)
        t = time.perf_counter()
        files = land_csv_batches(session.con, root, "batch", rows, seed=42)
        excel = land_excel(session.con, root)
        echo(f"landed {len(files)} CSV file(s){' and 1 Excel export' if excel else ''} in {root}/landing/sales ({time.perf_counter() - t:.1f}s)")
        echo("build 1: ingest bronze -> silver.sales -> gold.daily_sales_kpis, test, publish")
        first = pipelines.build(session)
        _print_build(first, echo)
        if not first.published:
            raise RatError(f"demo build failed: {first.reason}")
        before = session.store.get_reference(session.branch).hash
        updates = land_csv_batches(session.con, root, "update", max(rows // 10, 1000), seed=99, id_offset=rows, update_fraction=0.10, update_pool=rows)
        echo(f"landed a second batch: {len(updates)} file(s), {max(rows // 10, 1000):,} rows, 10% of them updating earlier txn_ids")
        echo("build 2: incremental")
        second = pipelines.build(session)
        _print_build(second, echo)
        if not second.published:
            raise RatError(f"demo build failed: {second.reason}")
        for d in branches.diff(session, before, session.branch):
            echo(f"  changed {d.table:<24} +{d.rows_added:,} / -{d.rows_removed:,} rows (file-level)")
        counts = {key: session.table_stats(key)["rows"] for key in sorted(session.contents())}
        echo("tables on " + session.branch + ": " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        top = session.sql(
            "SELECT store_id, SUM(revenue) AS revenue FROM gold.daily_sales_kpis GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
        ).arrow().to_pylist()
        echo("top stores by revenue: " + ", ".join(f"{r['store_id']} {r['revenue']:,.2f}" for r in top))
        echo(
            f"done in {time.perf_counter() - started:.1f}s (profile {session.resources.name}, "
            f"DuckDB cap {session.resources.duckdb_limit_mb} MB, process peak {peak_rss_mb():.0f} MB)"
        )
        echo(f"try: rat -w {path} sql \"SELECT * FROM gold.daily_sales_kpis ORDER BY revenue DESC LIMIT 5\"")
        return counts

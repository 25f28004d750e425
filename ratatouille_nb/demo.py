"""`rat demo` / `make demo`: the main job on the embedded default, end to end, with a summary.

Scaffolds (or reuses) the demo workspace, lands the seed's sales data as a Parquet file in the
landing zone, loads bronze, and builds silver and gold with SQL — every step an atomic commit on
the workspace branch — then prints tables, rows, time and peak memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ratatouille_nb.settings import Settings

SILVER_SQL = """
CREATE OR REPLACE TABLE silver.sales AS
SELECT txn_id, store_id, product_id, quantity, unit_price,
       CAST(quantity * unit_price AS DECIMAL(12, 2)) AS total_amount,
       payment_method, transaction_time,
       CAST(transaction_time AS DATE) AS _date
FROM bronze.raw_sales
WHERE quantity > 0 AND unit_price > 0
"""

GOLD_SQL = """
CREATE OR REPLACE TABLE gold.daily_sales_kpis AS
SELECT _date, store_id,
       SUM(total_amount) AS revenue,
       COUNT(*) AS transactions,
       CAST(AVG(total_amount) AS DECIMAL(12, 2)) AS avg_basket,
       COUNT(DISTINCT product_id) AS distinct_products
FROM silver.sales
GROUP BY _date, store_id
"""


def run_demo(settings: Settings, path: Path, *, rows: int = 1_000_000, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Build the demo workspace; returns rows per table."""
    from ratatouille_nb.engine.memory import peak_rss_mb
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.sampledata import write_sales
    from ratatouille_nb.workspace import Workspace, init_workspace
    from ratatouille_nb.workspace.manager import CONFIG_NAME, register_workspace

    started = time.perf_counter()
    path = path.resolve()
    if (path / CONFIG_NAME).is_file():
        workspace = Workspace.load(path)
        register_workspace(workspace, settings)
        echo(f"using workspace '{workspace.name}' in {path}")
    else:
        workspace = init_workspace(path, settings, name="demo", description="Ratatouille demo: seed sales example")
        echo(f"created workspace '{workspace.name}' in {path}")
    session = Session(settings, workspace)
    try:
        landing = session.warehouse.location(workspace.prefix, "landing", "sales", "sales_2024.parquet")
        t = time.perf_counter()
        written = write_sales(session.con, landing, rows, seed=42)
        echo(f"landed {written:,} sales rows in {landing} ({time.perf_counter() - t:.1f}s)")
        steps = [
            ("bronze.raw_sales", f"CREATE OR REPLACE TABLE bronze.raw_sales AS SELECT * FROM read_parquet('{landing}')"),
            ("silver.sales", SILVER_SQL),
            ("gold.daily_sales_kpis", GOLD_SQL),
        ]
        counts: dict[str, int] = {}
        for table, sql in steps:
            result = session.sql(sql)
            counts[table] = result.writes[0].rows
            commit = result.commit.short if result.commit else "-"
            echo(
                f"built {table:<22} {counts[table]:>10,} rows  {result.elapsed:6.2f}s  "
                f"peak {result.peak_rss_mb:5.0f} MB  commit {commit}"
            )
        top = session.sql(
            "SELECT store_id, SUM(revenue) AS revenue FROM gold.daily_sales_kpis GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
        ).arrow().to_pylist()
        echo("top stores by revenue: " + ", ".join(f"{r['store_id']} {r['revenue']:,.2f}" for r in top))
        echo(
            f"done in {time.perf_counter() - started:.1f}s on branch '{session.branch}' "
            f"(profile {session.resources.name}, DuckDB cap {session.resources.duckdb_limit_mb} MB, "
            f"process peak {peak_rss_mb():.0f} MB)"
        )
        echo(f"try: rat --workspace {path} sql \"SELECT * FROM gold.daily_sales_kpis LIMIT 5\"")
        return counts
    finally:
        session.close()

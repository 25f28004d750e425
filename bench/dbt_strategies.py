"""Benchmark: dbt's delete+insert and snapshot strategies on an N-row source with 1 % of rows changed.

A dbt project (written here) reads `bronze.items` as a source; a first `rat run` builds
`gold.items_di` (incremental delete+insert on `id`, batch = the changed rows) and
`history.items_snap` (timestamp snapshot); then 1 % of the rows get a new `updated_at` and the
second run is timed per model, one model per run so peak RSS is its own. Under the `tiny`
profile. Run: `.venv/bin/python bench/dbt_strategies.py [--rows N]`; writes
bench/results/dbt_strategies-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import textwrap
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ratatouille_nb.engine.session import Session
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

PROJECT = {
    "dbt_project.yml": "name: bench_items\nmodels:\n  bench_items:\n    +layer: gold\n",
    "models/_sources.yml": "version: 2\nsources:\n  - name: bronze\n    tables:\n      - name: items\n",
    "models/items_di.sql": """
        {{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id') }}
        select * from {{ source('bronze', 'items') }}
        {% if is_incremental() %}where updated_at > (select max(updated_at) from {{ this }}){% endif %}
    """,
    "snapshots/items_snap.sql": """
        {% snapshot items_snap %}
        {{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', target_schema='history') }}
        select * from {{ source('bronze', 'items') }}
        {% endsnapshot %}
    """,
}


def run(rows: int, workdir: Path) -> dict:
    root = workdir / "project"
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    settings = Settings.from_env(home=str(workdir / "home"), profile="tiny")
    out: dict = {"rows": rows, "changed": rows // 100, "models": {}}
    with Session(settings, Workspace.load(root)) as s:
        s.sql(
            f"CREATE TABLE bronze.items AS SELECT range AS id, 'item ' || range AS name, range % 97 AS price, "
            f"TIMESTAMP '2024-01-01' AS updated_at FROM range({rows})"
        )
        for name in ("items_di", "items_snap"):
            first = Runner(s).run([name])
            assert first.status == "success", first.error
            out["models"][name] = {"first": {"seconds": round(first.models[0].seconds, 3), "peak_rss_mb": round(first.models[0].peak_rss_mb)}}
        s.sql("UPDATE bronze.items SET updated_at = TIMESTAMP '2024-02-01', price = price + 1 WHERE id % 100 = 0")
        for name in ("items_di", "items_snap"):
            second = Runner(s).run([name])
            assert second.status == "success", second.error
            m = second.models[0]
            out["models"][name]["second"] = {
                "seconds": round(m.seconds, 3), "peak_rss_mb": round(m.peak_rss_mb), "operation": m.operation,
                "rows_written": m.rows_written, "rows_updated": m.rows_updated,
            }
        out["check"] = {
            "snapshot_rows": s.sql("SELECT count(*) FROM history.items_snap").relation.fetchone()[0],
            "di_rows": s.sql("SELECT count(*) FROM gold.items_di").relation.fetchone()[0],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rat-bench-dbt-") as tmp:
        result = run(args.rows, Path(tmp))
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    target = Path(__file__).parent / "results" / f"dbt_strategies-{date.today().isoformat()}.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

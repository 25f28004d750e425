"""Benchmark: `%load_ext ratatouille_nb` time and `%%rat sql` overhead over plain DuckDB on a small table.

The overhead is the magic's wall time minus the same query run directly on the session's DuckDB
connection (same Iceberg view, same process), median of N runs. Part of `make bench`.
Writes bench/results/notebook-<date>.json and prints it.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUERY = "SELECT store_id, count(*) AS n, sum(revenue) AS revenue FROM gold.daily_sales_kpis GROUP BY 1 ORDER BY 1 LIMIT 20"


def _fresh_load_ext() -> float:
    """`%load_ext ratatouille_nb` in a new interpreter (IPython itself already imported, as in a kernel)."""
    import subprocess

    code = (
        "import time\nfrom IPython.core.interactiveshell import InteractiveShell as S\n"
        "from traitlets.config import Config\nc = Config(); c.HistoryManager.enabled = False\ns = S.instance(config=c)\n"
        "t = time.perf_counter(); s.run_line_magic('load_ext', 'ratatouille_nb'); print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(repeats: int = 30) -> dict:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    from ratatouille_nb.demo import run_demo
    from ratatouille_nb.settings import Settings

    with tempfile.TemporaryDirectory(prefix="rat-nb-bench-") as tmp:
        home = Path(tmp) / "home"
        run_demo(Settings.from_env(home=str(home)), Path(tmp) / "demo", rows=20_000, echo=lambda _l: None)
        os.environ["RAT_HOME"] = str(home)
        os.environ["RAT_WORKSPACE"] = str(Path(tmp) / "demo")
        config = Config()
        config.HistoryManager.enabled = False
        shell = InteractiveShell.instance(config=config)
        load_ext = _fresh_load_ext()
        shell.run_line_magic("load_ext", "ratatouille_nb")
        with capture_output():
            shell.run_cell(f"%%rat sql\n{QUERY}")  # warm: session, extensions, view binding
        magic, plain = [], []
        from ratatouille_nb.notebook.context import CONTEXT

        con = CONTEXT.session.con
        for _ in range(repeats):
            t = time.perf_counter()
            with capture_output():
                shell.run_cell(f"%%rat sql\n{QUERY}")
            magic.append(time.perf_counter() - t)
            t = time.perf_counter()
            con.sql(QUERY).to_arrow_table().to_pandas()
            plain.append(time.perf_counter() - t)
        out = {
            "benchmark": "notebook",
            "load_ext_seconds": round(load_ext, 4),
            "rat_sql_median_ms": round(statistics.median(magic) * 1000, 1),
            "plain_duckdb_median_ms": round(statistics.median(plain) * 1000, 1),
            "overhead_ms": round((statistics.median(magic) - statistics.median(plain)) * 1000, 1),
            "target_overhead_ms": 30,
            "repeats": repeats,
            "query": QUERY,
            "loadavg_1m": os.getloadavg()[0],
        }
        CONTEXT.session.close()
    target = Path(__file__).parent / "results" / f"notebook-{date.today().isoformat()}.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

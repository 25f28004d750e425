"""The notebook layer through IPython itself: magics, safe binding, widgets driven by their Python API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("IPython")

from IPython.core.interactiveshell import InteractiveShell

from ratatouille_nb.settings import Settings
from tests.kernel_shell import run, shell

__all__ = ["shell"]


def test_sql_cell_writes_reads_and_returns_a_dataframe(shell: InteractiveShell) -> None:
    import pandas as pd

    result, _ = run(shell, "%%rat sql\nCREATE TABLE silver.t AS SELECT i AS id, 'n' || i AS name FROM range(25) t(i)")
    assert result.success
    result, out = run(shell, "%%rat sql\nSELECT * FROM silver.t ORDER BY id")
    assert result.success and isinstance(result.result, pd.DataFrame) and len(result.result) == 25
    html = result.result._repr_html_()
    assert "25 rows" in html and "BIGINT" in html and "workspace/kws" in html and "peak" in html
    assert "25 rows" in out.stdout


def test_output_variable_formats_limit_and_save(shell: InteractiveShell) -> None:
    import polars as pl
    import pyarrow as pa

    run(shell, "%%rat sql\nCREATE TABLE silver.t AS SELECT i AS id FROM range(50) t(i)")
    run(shell, "%%rat sql -o small --polars --limit 5\nSELECT * FROM silver.t ORDER BY id")
    assert isinstance(shell.user_ns["small"], pl.DataFrame) and shell.user_ns["small"].height == 5
    run(shell, "%%rat sql -o arr --arrow\nSELECT * FROM silver.t")
    assert isinstance(shell.user_ns["arr"], pa.Table) and shell.user_ns["arr"].num_rows == 50
    run(shell, "%%rat sql --save gold.evens\nSELECT id FROM silver.t WHERE id % 2 = 0")
    result, _ = run(shell, "%%rat sql\nSELECT count(*) AS n FROM gold.evens")
    assert int(result.result["n"][0]) == 25


def test_python_variables_are_literals_never_sql(shell: InteractiveShell) -> None:
    run(shell, "%%rat sql\nCREATE TABLE silver.users AS SELECT * FROM (VALUES ('alice', 1), ('bob', 2)) v(name, id)")
    shell.user_ns["who"] = "alice' OR '1'='1"
    result, _ = run(shell, "%%rat sql\nSELECT * FROM silver.users WHERE name = {{ who }}")
    assert result.success and len(result.result) == 0
    shell.user_ns["who"] = "bob"
    shell.user_ns["ids"] = [1, 2]
    result, _ = run(shell, "%%rat sql\nSELECT * FROM silver.users WHERE name = {{ who }} AND id IN {{ ids }}")
    assert list(result.result["name"]) == ["bob"]
    shell.user_ns["col"] = "id"
    result, _ = run(shell, "%%rat sql\nSELECT {{ col | sqlsafe }} FROM silver.users ORDER BY 1")
    assert list(result.result["id"]) == [1, 2]
    shell.user_ns["evil"] = "1; DROP TABLE silver.users"
    result, _ = run(shell, "%%rat sql\nSELECT {{ evil }} AS v")
    assert result.result["v"][0] == "1; DROP TABLE silver.users"
    assert run(shell, "%%rat sql\nSELECT count(*) AS n FROM silver.users")[0].result["n"][0] == 2


def test_errors_render_as_a_message_not_a_traceback(shell: InteractiveShell) -> None:
    result, out = run(shell, "%%rat sql\nSELECT *\nFROM silver.nope")
    assert not result.success
    assert "silver.nope" in out.stderr + out.stdout and "Traceback" not in out.stderr + out.stdout
    result, out = run(shell, "%%rat sql\nSELECT 1 +\nFROM")
    assert not result.success and "Parser Error" in out.stderr + out.stdout and "Traceback" not in out.stderr
    result, out = run(shell, "%%rat sql\nSELECT {{ undefined_var }}")
    assert "undefined_var" in out.stderr + out.stdout
    result, out = run(shell, "%rat branch nope-branch")
    assert not result.success and "no branch or tag named 'nope-branch'" in out.stderr + out.stdout


def test_branch_magics_and_session_follow(shell: InteractiveShell) -> None:
    from ratatouille_nb.verbs import session as sessions

    run(shell, "%%rat sql\nCREATE TABLE silver.s AS SELECT i FROM range(100) t(i)")
    run(shell, "%rat branch create dev")
    assert sessions.current().branch == "dev"
    run(shell, "%%rat sql\nINSERT INTO silver.s SELECT 1000")
    _, out = run(shell, "%rat branch diff workspace/kws dev")
    assert "+1" in out.outputs[0].data["text/html"] and "≈" not in out.outputs[0].data["text/html"]  # rows, not files
    run(shell, "%rat branch workspace/kws")
    assert run(shell, "%%rat sql\nSELECT count(*) AS n FROM silver.s")[0].result["n"][0] == 100
    run(shell, "%rat branch merge dev")
    assert run(shell, "%%rat sql\nSELECT count(*) AS n FROM silver.s")[0].result["n"][0] == 101
    assert run(shell, "%%rat sql --branch workspace/kws~1\nSELECT count(*) AS n FROM silver.s")[0].result["n"][0] == 100


def test_branch_picker_widget_drives_the_session(shell: InteractiveShell) -> None:
    from ratatouille_nb.notebook.widgets.branches import BranchPicker
    from ratatouille_nb.verbs import session as sessions

    run(shell, "%%rat sql\nCREATE TABLE silver.s AS SELECT i FROM range(10) t(i)")
    picker = BranchPicker()
    picker.new_name.value = "feature"
    picker.create_button.click()
    assert sessions.current().branch == "feature" and picker.branches.value == "feature"
    run(shell, "%%rat sql\nINSERT INTO silver.s SELECT 99")
    picker.branches.value = "workspace/kws"
    assert sessions.current().branch == "workspace/kws"
    picker.compare.value = "feature"
    diffs = picker.preview()
    assert [(d.table, d.rows_added) for d in diffs] == [("silver.s", 1)]
    picker.merge_button.click()
    assert picker.confirm_button.layout.display == ""
    picker.confirm_button.click()
    assert "merged" in picker.status.value
    assert run(shell, "%%rat sql\nSELECT count(*) AS n FROM silver.s")[0].result["n"][0] == 11


def test_branch_picker_shows_conflicts_per_table(shell: InteractiveShell) -> None:
    from ratatouille_nb.notebook.widgets.branches import BranchPicker
    from ratatouille_nb.verbs import session as sessions

    run(shell, "%%rat sql\nCREATE TABLE silver.a AS SELECT 1 AS x")
    run(shell, "%rat branch create other")
    run(shell, "%%rat sql\nINSERT INTO silver.a SELECT 2")
    run(shell, "%rat branch workspace/kws")
    run(shell, "%%rat sql\nDELETE FROM silver.a WHERE x = 1")
    head = sessions.current().store.get_reference("workspace/kws").hash
    picker = BranchPicker()
    picker.compare.value = "other"
    picker.merge("other")
    assert "conflict" in picker.status.value and "silver.a" in picker.status.value
    assert sessions.current().store.get_reference("workspace/kws").hash == head


def test_product_browser_lists_only_readable_products(shell: InteractiveShell, settings: Settings, tmp_path: Path) -> None:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.notebook.widgets.products import ProductBrowser
    from ratatouille_nb.verbs import session as sessions
    from ratatouille_nb.workspace import init_workspace

    producer = init_workspace(tmp_path / "prod", settings, name="prod")
    with Session(settings, producer) as s:
        s.sql("CREATE TABLE gold.kpi AS SELECT 1 AS a")
        s.products.publish("gold.kpi", "open_kpis", "1.0.0", access=[("*", "read")], description="for everyone")
        s.products.publish("gold.kpi", "secret_kpis", "1.0.0")
    browser = ProductBrowser(shell=shell)
    assert list(browser.listing.options) == ["open_kpis"]
    assert browser.filter("everyone") == ["open_kpis"] and browser.filter("zzz") == []
    browser.filter("")
    info = browser.show("open_kpis")
    assert info["owner"] == "prod" and "a" in browser.detail.value
    browser.subscribe("open_kpis", "^1.0.0", "kpis")
    assert sessions.current().products.aliases() == {"kpis": "open_kpis"}
    text = browser.insert_query("open_kpis")
    assert "FROM products.open_kpis" in text
    result, _ = run(shell, text.split("\n", 1)[1].join(["%%rat sql\n", ""]))
    assert result.success and len(result.result) == 1


def test_run_magic_shows_progress(shell: InteractiveShell) -> None:
    from ratatouille_nb.api import rat
    from ratatouille_nb.verbs import session as sessions

    root = sessions.current().workspace.root / "pipelines"
    (root / "silver" / "nums.sql").write_text("SELECT i FROM range(10) t(i)\n")
    (root / "gold" / "total.sql").write_text("SELECT sum(i) AS s FROM {{ ref('silver.nums') }}\n")
    result, out = run(shell, "%rat run")
    assert result.success and rat.last_run.status == "success"
    progress = [o for o in out.outputs if "application/vnd.jupyter.widget-view+json" in o.data]
    assert progress
    assert run(shell, "%%rat sql\nSELECT s FROM gold.total")[0].result["s"][0] == 45


def test_jupysql_shares_the_connection(shell: InteractiveShell) -> None:
    pytest.importorskip("sql")
    run(shell, "%%rat sql\nCREATE TABLE gold.k AS SELECT 7 AS v")
    for line in ("from ratatouille_nb import rat", "conn = rat.connection()", "%load_ext sql", "%sql conn --alias rat"):
        assert run(shell, line)[0].success, line
    result, _ = run(shell, "x = %sql SELECT v FROM gold.k")
    assert result.success
    assert list(shell.user_ns["x"].DataFrame()["v"]) == [7]


def test_load_ext_is_fast() -> None:
    import subprocess
    import sys

    code = "import time; t=time.perf_counter(); from IPython.core.interactiveshell import InteractiveShell as S; s=S.instance(); t0=time.perf_counter(); s.run_line_magic('load_ext','ratatouille_nb'); print(time.perf_counter()-t0)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "RAT_HOME": "/nonexistent"}, check=True)
    assert float(out.stdout.strip().splitlines()[-1]) < 1.0

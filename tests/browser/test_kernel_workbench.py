"""The notebook as a workbench, in a real JupyterLab (Debian's Chromium): several lineage graphs on
one page all laid out, markdown descriptions rendered without HTML injection, the result grid,
SQL completion in a `%%rat sql` cell, and a failing `%rat build` that marks its cell as errored
so Run All stops; the getting-started notebook opens without being marked modified.

Screenshots (prefix `kernel-`, light and dark) go to $RAT_SCREENSHOT_DIR.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from tests.browser.conftest import Lab
from tests.browser.test_lab import code_cell, settle, wait_idle

NOTEBOOK = "notebooks/kernel-workbench.ipynb"
DESCRIBED = """from ratatouille_nb.notebook.widgets.lineage import LineageGraphWidget

LineageGraphWidget.from_graph({
    "nodes": [
        {"id": "bronze.raw", "kind": "source", "layer": "bronze", "exists": True, "columns": [{"name": "id", "type": "BIGINT"}]},
        {"id": "gold.described", "kind": "model", "layer": "gold", "exists": True, "language": "sql",
         "description": "Revenue per **store** and _day_, see [the docs](https://example.org/kpis).\\n\\n- one\\n- two\\n\\n<img src=x onerror=\\"window.__ratInjected = 1\\">",
         "columns": [{"name": "id", "type": "BIGINT"}]},
    ],
    "edges": [{"source": "bronze.raw", "target": "gold.described"}],
}, selected="gold.described", height=300)"""
RESULT = """%%rat sql
SELECT txn_id, store_id, quantity * unit_price * 1000.123456 AS revenue,
       CASE WHEN quantity > 3 THEN NULL ELSE payment_method END AS payment_method,
       CASE WHEN quantity = 1 THEN repeat('a long free-text note ', 12) ELSE 'ok' END AS note
FROM silver.sales ORDER BY txn_id LIMIT 60"""
FAILING_MODEL = """from pathlib import Path
from ratatouille_nb import rat

gold = rat.session.workspace.root / "pipelines" / "gold"
(gold / "kernel_fail.sql").write_text("SELECT 1 AS id UNION ALL SELECT 1 AS id\\n")
(gold / "kernel_fail.yaml").write_text("columns:\\n  - name: id\\n    tests: [unique, not_null]\\n")"""
CELLS = [
    "%load_ext ratatouille_nb",
    "%rat lineage gold.daily_sales_kpis",
    "%rat lineage",
    DESCRIBED,
    RESULT,
    FAILING_MODEL,
    "%rat build gold_kernel_fail",
    'print("after the failing build")',
]


def write_notebook(lab: Lab) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    path = lab.root / NOTEBOOK
    nbformat.write(nb, path)
    return path


def positions(page: Any, index: int) -> list[tuple[float, float]]:
    """Where the nodes of the index-th lineage graph on the page are (cytoscape model coordinates)."""
    found = page.evaluate(
        "i => { const cy = document.querySelectorAll('.rat-lineage-canvas')[i].__cy;"
        " return cy ? cy.nodes().map(n => [Math.round(n.position('x')), Math.round(n.position('y'))]) : []; }",
        index,
    )
    return [(x, y) for x, y in found]


def screenshot_of(page: Any, locator: Any, path: Path) -> None:
    locator.scroll_into_view_if_needed()
    settle(page, 0.8)
    locator.screenshot(path=str(path))


def test_kernel_workbench(lab: Lab, page: Any, screenshot_dir: Path) -> None:
    write_notebook(lab)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?reset")  # a fresh layout, not the last test's tabs
    wait_idle(page)
    try:
        run_all_and_check(lab, page, screenshot_dir, console)
    finally:
        for name in ("kernel_fail.sql", "kernel_fail.yaml"):
            (lab.workspace / "pipelines" / "gold" / name).unlink(missing_ok=True)


def run_all_and_check(lab: Lab, page: Any, screenshot_dir: Path, console: list[str]) -> None:
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    # -- the failing build: a red RatError line with notebook remedies; Run All stopped ----------------
    build = code_cell(page, 6)
    error = build.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    try:
        error.wait_for(timeout=180_000)
    except Exception as exc:  # say which earlier cell stopped Run All, not only "timeout"
        outputs = [code_cell(page, i).locator(".jp-OutputArea").inner_text()[:400] for i in range(len(CELLS))]
        raise AssertionError(f"no error output on the build cell; cell outputs: {outputs}") from exc
    wait_idle(page)
    build.scroll_into_view_if_needed()  # off-screen cells are not laid out (content-visibility)
    text = error.text_content() or ""
    assert text.startswith("RatError: build not published"), text
    assert "%rat branch checkout workspace/demo/build/" in text and "%rat branch delete workspace/demo/build/" in text
    assert "UsageError" not in text and "Traceback" not in text
    red = error.locator("span.ansi-red-fg, span.ansi-red-intense-fg, span[style*='color']").first
    assert red.count() == 1
    page.wait_for_timeout(1500)
    after = code_cell(page, 7)
    assert after.locator(".jp-OutputArea-output").count() == 0  # Run All stopped at the failed build
    assert after.locator(".jp-InputPrompt").inner_text().strip() == "[ ]:"
    assert build.locator(".jp-InputPrompt").inner_text().strip() == "[7]:"
    progress = build.locator(".rat-progress")
    assert progress.count() == 1 and "rat-progress-failed" in (progress.get_attribute("class") or "")
    assert build.locator(".progress-bar-danger, .widget-progress .progress-bar-danger").count() >= 1
    assert "1 failed" in progress.inner_text() and "passed" in progress.inner_text()
    screenshot_of(page, build, screenshot_dir / "kernel-failed-build.png")

    # -- three lineage graphs on one page: every one laid out by dagre ---------------------------------
    canvases = page.locator(".rat-lineage-canvas")
    page.wait_for_function("document.querySelectorAll('.rat-lineage-canvas').length >= 3")
    for i in range(3):
        page.wait_for_function(
            "i => { const c = document.querySelectorAll('.rat-lineage-canvas')[i]; return c && c.__cy && c.__cy.nodes().length > 1; }",
            arg=i,
        )
    for i in range(3):
        points = positions(page, i)
        assert len(set(points)) == len(points) > 1, (i, points)  # no two nodes piled on one spot
        xs = sorted({x for x, _ in points})
        assert len(xs) > 1, points  # left to right ranks
    assert not [m for m in console if "No such layout" in m], console
    assert canvases.count() == 3
    first = code_cell(page, 1).locator(".rat-lineage")
    second = code_cell(page, 2).locator(".rat-lineage")
    screenshot_of(page, second, screenshot_dir / "kernel-lineage-second-graph.png")

    # -- markdown in the details panel, safely ----------------------------------------------------------
    described = code_cell(page, 3).locator(".rat-lineage")
    description = described.locator(".rat-lineage-description")
    description.wait_for()
    assert description.locator("strong").inner_text() == "store"
    assert description.locator("em").inner_text() == "day"
    link = description.locator("a")
    assert link.get_attribute("href") == "https://example.org/kpis" and link.get_attribute("rel") == "noopener noreferrer"
    assert description.locator("li").count() == 2
    assert description.locator("img").count() == 0 and "<img src=x" in description.inner_text()
    assert page.evaluate("window.__ratInjected === undefined")
    screenshot_of(page, described, screenshot_dir / "kernel-lineage-markdown.png")

    # -- the result grid -------------------------------------------------------------------------------
    result = code_cell(page, 4).locator(".rat-result")
    result.wait_for()
    meta = result.locator(".rat-meta").inner_text()
    assert "60 rows · 5 columns" in meta and meta.count("workspace/demo") == 1
    assert "showing 10 of 60 rows" in result.locator(".rat-note").inner_text()
    grid = result.locator(".rat-grid")
    head = result.locator("thead th").first
    assert head.evaluate("e => getComputedStyle(e).position") == "sticky"
    assert grid.evaluate("e => getComputedStyle(e).overflow") == "auto"
    revenue = result.locator("tbody tr").first.locator("td").nth(2)
    assert revenue.evaluate("e => getComputedStyle(e).textAlign") == "right"
    assert re.fullmatch(r"[\d,]+\.\d\d", revenue.inner_text()), revenue.inner_text()
    assert len(revenue.get_attribute("title") or "") > len(revenue.inner_text()) - 3
    assert result.locator("thead th.rat-text").first.evaluate("e => getComputedStyle(e).textAlign") == "left"
    assert result.locator("thead th.rat-num").first.evaluate("e => getComputedStyle(e).textAlign") == "right"
    text_cell = result.locator("tbody td.rat-text").first
    assert text_cell.evaluate("e => getComputedStyle(e).textAlign") == "left"
    if result.locator("td.rat-null").count():
        null = result.locator("td.rat-null").first
        assert null.evaluate("e => getComputedStyle(e).fontStyle") == "italic"
    long_note = result.locator("td details").first
    if long_note.count():
        long_note.locator("summary").click()
        assert "a long free-text note a long" in long_note.inner_text()
    box = grid.bounding_box()
    assert box is not None and box["width"] < 1440
    screenshot_of(page, result, screenshot_dir / "kernel-result-table.png")

    # -- "show more rows": the next 50 rows continue the same grid -------------------------------------
    extra = result.locator("tbody.rat-extra tr")
    assert extra.count() == 50 and not extra.first.is_visible()
    summary = result.locator("details.rat-more > summary")
    assert summary.inner_text().strip() == "show 50 more rows"
    summary.click()
    extra.first.wait_for(state="visible")
    assert result.locator("details.rat-more").get_attribute("open") is not None
    assert result.locator("table").count() == 1 and result.locator("tbody tr:visible").count() == 60
    shown_cell = result.locator("tbody:not(.rat-extra) tr").first.locator("td").nth(2)
    extra_cell = extra.first.locator("td").nth(2)
    assert abs(shown_cell.evaluate("e => e.getBoundingClientRect().width") - extra_cell.evaluate("e => e.getBoundingClientRect().width")) < 0.5
    assert re.fullmatch(r"[\d,]+\.\d\d", extra_cell.inner_text()) and extra_cell.evaluate("e => getComputedStyle(e).textAlign") == "right"
    grid.evaluate("e => { e.scrollTop = e.scrollHeight }")
    settle(page, 0.3)
    head_box, grid_box = head.bounding_box(), grid.bounding_box()
    assert head_box is not None and grid_box is not None and abs(head_box["y"] - grid_box["y"]) < 3  # the header stays on top
    last = extra.last.locator("td").first
    assert last.is_visible()
    screenshot_of(page, result, screenshot_dir / "kernel-result-more-rows.png")
    summary.click()
    extra.first.wait_for(state="hidden")
    grid.evaluate("e => { e.scrollTop = 0 }")

    # -- completion: Tab after `gold.` lists the gold tables --------------------------------------------
    code_cell(page, 7).locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text("%%rat sql\nSELECT * FROM gold.")
    wait_idle(page)
    page.keyboard.press("Tab")
    completer = page.locator(".jp-Completer")
    completer.wait_for()
    items = completer.locator(".jp-Completer-item").all_inner_texts()
    assert any("gold.daily_sales_kpis" in item for item in items), items
    assert not any("%store" in item or "print" in item for item in items), items
    settle(page, 0.5)
    editor_cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell.jp-mod-active")
    shot = editor_cell.bounding_box()
    pop = completer.bounding_box()
    assert shot is not None and pop is not None
    page.screenshot(
        path=str(screenshot_dir / "kernel-completion.png"),
        clip={"x": max(0, shot["x"] - 10), "y": max(0, shot["y"] - 10), "width": min(900, shot["width"] + 20),
              "height": max(shot["height"], pop["y"] + pop["height"] - shot["y"]) + 20},
    )
    page.keyboard.press("Escape")

    # -- the remedy as written deletes the build branch ------------------------------------------------
    remedy = re.search(r"%rat branch delete (\S+)", text)
    assert remedy is not None
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(f"%rat branch delete {remedy.group(1)}")
    page.keyboard.press("Shift+Enter")
    page.locator(".jp-OutputArea-output", has_text=f"deleted branch '{remedy.group(1)}'").wait_for()

    # -- dark theme -------------------------------------------------------------------------------------
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'")
    settle(page, 2.5)
    screenshot_of(page, first, screenshot_dir / "kernel-lineage-first-graph-dark.png")
    screenshot_of(page, described, screenshot_dir / "kernel-lineage-markdown-dark.png")
    screenshot_of(page, result, screenshot_dir / "kernel-result-table-dark.png")
    summary.click()
    extra.first.wait_for(state="visible")
    grid.evaluate("e => { e.scrollTop = e.scrollHeight }")
    screenshot_of(page, result, screenshot_dir / "kernel-result-more-rows-dark.png")
    summary.click()
    grid.evaluate("e => { e.scrollTop = 0 }")
    screenshot_of(page, build, screenshot_dir / "kernel-failed-build-dark.png")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'true'")
    settle(page, 1.0)

    # -- the getting-started notebook opens unmodified (its kernelspec is ipykernel's) ---------------
    page.evaluate("window.jupyterapp.commands.execute('docmanager:open', {path: 'notebooks/getting-started.ipynb'})")
    tab = page.locator(".jp-mod-current.lm-TabBar-tab", has_text="getting-started.ipynb")
    tab.wait_for()
    page.wait_for_timeout(1000)
    wait_idle(page)
    page.wait_for_timeout(2000)
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), tab.get_attribute("class")

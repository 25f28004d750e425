"""The notebook as a workbench, in JupyterLab: `%%rat sql` cells highlighted as SQL, the Tables
sidebar (layers, tables, columns, freshness, insert query / lineage) and Promote's preview (files,
models, skipped cells with their reasons, a failing cell named by its number and skipped).

Screenshots `editor-*.png`, light and dark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from tests.browser.conftest import Lab
from tests.browser.test_lab import code_cell, settle, wait_idle

NOTEBOOK = "notebooks/editor-workbench.ipynb"
CELLS: list[tuple[str, str]] = [
    ("code", "%load_ext ratatouille_nb"),
    ("markdown", "# Store revenue"),
    ("code", "%%rat sql\nSELECT store_id, SUM(revenue) AS revenue\nFROM gold.daily_sales_kpis\nGROUP BY store_id\nORDER BY revenue DESC"),
    ("code", "%%rat sql --save silver.store_revenue\nSELECT store_id, SUM(revenue) AS revenue\nFROM gold.daily_sales_kpis\nGROUP BY ALL"),
    ("code", "%%rat sql --save gold.broken\nSELEC store_id FROM silver.store_revenue"),
    ("code", "rows = 3\nprint(rows)"),
]


def write_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    for kind, source in CELLS:
        nb.cells.append(nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def set_theme(page: Any, dark: bool) -> None:
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{name}'}})")
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{'false' if dark else 'true'}'")
    page.wait_for_timeout(800)


def test_sql_cells_tables_sidebar_and_promote_preview(lab: Lab, page: Any, screenshot_dir: Path) -> None:
    write_notebook(lab.root / NOTEBOOK)
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?reset")  # a fresh layout, not the last test's tabs
    wait_idle(page)

    # -- %%rat sql cells are SQL: DuckDB keywords get SQL token classes; the magic line is apart ---------
    sql_cell = code_cell(page, 1)
    content = sql_cell.locator(".cm-content")
    content.and_(page.locator('[data-rat-language="sql"]')).wait_for()
    keywords = sql_cell.locator(".cm-content .tok-keyword")
    keywords.first.wait_for()
    texts = [t.strip().upper() for t in keywords.all_inner_texts()]
    assert "SELECT" in texts and "FROM" in texts and "GROUP" in texts, texts
    magic = sql_cell.locator(".cm-line.jp-RatSql-magicLine")
    assert magic.count() == 1 and magic.inner_text().startswith("%%rat sql")
    assert "".join(magic.locator(".jp-RatSql-magic").all_inner_texts()).strip() == "%%rat sql"
    # DuckDB's GROUP BY ALL: ALL is a keyword too
    assert "ALL" in [t.strip().upper() for t in code_cell(page, 2).locator(".tok-keyword").all_inner_texts()]
    # a Python cell stays Python (no SQL marker)
    python_cell = code_cell(page, 4)
    assert python_cell.locator('.cm-content[data-rat-language="sql"]').count() == 0
    # typing the magic into a Python cell turns it into SQL; removing it turns it back
    python_cell.locator(".cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.insert_text("%%rat sql\n")
    python_cell.locator('.cm-content[data-rat-language="sql"]').wait_for()
    for _ in range(len("%%rat sql\n")):
        page.keyboard.press("Backspace")
    page.wait_for_function(
        "el => !el.querySelector('.cm-content[data-rat-language=\"sql\"]')", arg=python_cell.element_handle()
    )
    page.keyboard.press("Escape")
    settle(page)

    def shoot_sql_cells(name: str) -> None:
        top, bottom = sql_cell.bounding_box(), code_cell(page, 3).bounding_box()
        assert top is not None and bottom is not None
        clip = {"x": top["x"], "y": top["y"], "width": top["width"], "height": bottom["y"] + bottom["height"] - top["y"]}
        page.screenshot(path=str(screenshot_dir / name), clip=clip)

    shoot_sql_cells("editor-sql-cell.png")
    set_theme(page, dark=True)
    shoot_sql_cells("editor-sql-cell-dark.png")
    set_theme(page, dark=False)

    # -- the Tables sidebar: layers, gold.daily_sales_kpis with its columns and types ---------------------
    page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="ratatouille-tables"]').click()
    sidebar = page.locator("#ratatouille-tables")
    kpis = sidebar.locator('.jp-RatTable[data-table="gold.daily_sales_kpis"]')
    kpis.wait_for()
    layers = sidebar.locator(".jp-RatTables-layer").evaluate_all("els => els.map(e => e.dataset.layer)")
    assert layers[:3] == ["bronze", "silver", "gold"], layers
    assert "rows" in kpis.locator(".jp-RatTable-rows").inner_text()
    kpis.locator(".jp-RatTable-head").click()
    columns = kpis.locator(".jp-RatTable-column")
    columns.first.wait_for()
    named = dict(
        zip(
            kpis.locator(".jp-RatTable-columnName").all_inner_texts(),
            kpis.locator(".jp-RatTable-columnType").all_inner_texts(),
            strict=True,
        )
    )
    assert named.get("store_id") == "VARCHAR" and "revenue" in named, named
    assert "old" in kpis.locator(".jp-RatTable-freshness").inner_text()
    assert "gold_daily_sales_kpis" in kpis.locator(".jp-RatTable-facts").inner_text()
    settle(page)
    sidebar.screenshot(path=str(screenshot_dir / "editor-tables-layers.png"))
    # the filter finds tables by column name
    sidebar.locator(".jp-RatTables-filter").fill("transactions")
    sidebar.locator('.jp-RatTable.jp-mod-expanded[data-table="gold.daily_sales_kpis"]').wait_for()
    sidebar.locator(".jp-RatTables-filter").fill("no_such_column_anywhere")
    sidebar.get_by_text("No table or column matches").wait_for()
    sidebar.locator(".jp-RatTables-filter").fill("daily_sales")
    kpis.locator(".jp-RatTable-columns").wait_for()
    settle(page)
    page.screenshot(path=str(screenshot_dir / "editor-tables-sidebar.png"))
    set_theme(page, dark=True)
    sidebar.screenshot(path=str(screenshot_dir / "editor-tables-sidebar-dark.png"))
    set_theme(page, dark=False)

    # -- "Show lineage" and "Insert query" put cells into the notebook -----------------------------------
    code_cell(page, 4).locator(".jp-InputPrompt").click()
    before = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").count()
    kpis.get_by_role("button", name="Show lineage").click()
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length > n", arg=before
    )
    active = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell.jp-mod-active")
    assert "%rat lineage gold.daily_sales_kpis" in active.locator(".jp-InputArea-editor").inner_text()
    kpis.get_by_role("button", name="Insert query").click()
    active.locator(".jp-InputArea-editor", has_text="FROM gold.daily_sales_kpis").wait_for()
    active.locator('.cm-content[data-rat-language="sql"]').wait_for()

    # -- Promote: a preview first (files, models, the failing cell 5 named and to be skipped) ------------
    (lab.root / "demo").symlink_to(lab.workspace, target_is_directory=True)  # so Lab can open the files
    page.keyboard.press("Escape")
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-command="ratatouille:promote-notebook"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.get_by_text("Promote to pipeline?").wait_for()
    files = dialog.locator(".jp-RatDialog-files").inner_text()
    assert "pipelines/silver/store_revenue.sql" in files and "pipelines/silver/store_revenue.yaml" in files, files
    models = dialog.locator(".jp-RatDialog-models li")
    assert models.count() == 1 and "silver_store_revenue" in models.inner_text() and "table" in models.inner_text()
    failing = dialog.locator('.jp-RatDialog-skipped li.jp-mod-failed[data-cell="5"]')
    assert "cell 5" in failing.inner_text() and "SELEC" in failing.inner_text()
    skipped = dialog.locator(".jp-RatDialog-skipped li:not(.jp-mod-failed)").evaluate_all("els => els.map(e => e.dataset.cell)")
    assert {"1", "3", "6"} <= set(skipped), skipped
    assert not (lab.workspace / "pipelines" / "silver" / "store_revenue.sql").exists()
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "editor-promote-preview.png"))
    set_theme(page, dark=True)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "editor-promote-preview-dark.png"))
    set_theme(page, dark=False)
    dialog.get_by_role("button", name="Promote, skipping cell 5").click()
    dialog.get_by_text("Promoted to pipeline").wait_for()
    sql_file = lab.workspace / "pipelines" / "silver" / "store_revenue.sql"
    assert sql_file.read_text().startswith("-- Promoted from editor-workbench.ipynb, cell 4\n")
    assert not (lab.workspace / "pipelines" / "gold" / "broken.sql").exists()
    result = dialog.locator(".jp-RatDialog-files")
    assert "created" in result.inner_text()
    assert "cell 5" in dialog.locator(".jp-RatDialog-skipped").inner_text()
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "editor-promote-result.png"))
    # a written file opens in Lab from the dialog
    dialog.locator("a.jp-RatDialog-link", has_text="pipelines/silver/store_revenue.sql").click()
    dialog.wait_for(state="detached")
    page.locator(".lm-TabBar-tab", has_text="store_revenue.sql").wait_for()
    editor = page.locator(".jp-FileEditor:not(.lm-mod-hidden) .cm-content")
    editor.get_by_text("Promoted from editor-workbench.ipynb, cell 4").wait_for()

    # -- the Tables sidebar follows the notebook kernel's branch -------------------------------------------
    page.locator(".lm-TabBar-tab", has_text="editor-workbench.ipynb").click()
    wait_idle(page)
    first = code_cell(page, 0)
    first.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")  # %load_ext ratatouille_nb
    wait_idle(page)
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # a new cell above the active one
    page.keyboard.press("Enter")
    page.keyboard.insert_text("%rat branch create editor-review")
    page.keyboard.press("Shift+Enter")
    wait_idle(page)
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    page.keyboard.insert_text("%%rat sql\nCREATE TABLE gold.review_only AS SELECT 1 AS one")
    page.keyboard.press("Shift+Enter")
    wait_idle(page)
    sidebar.locator(".jp-RatTables-filter").fill("")
    sidebar.locator(".jp-RatTables-ref", has_text="editor-review").wait_for()
    sidebar.locator('.jp-RatTable[data-table="gold.review_only"]').wait_for()

    # -- %rat tables in the notebook: the same listing as HTML ---------------------------------------------
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    page.keyboard.insert_text("%rat tables")
    page.keyboard.press("Shift+Enter")
    listing = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .rat-tables')
    listing.wait_for()
    assert listing.locator('tr[data-table="gold.review_only"]').count() == 1
    assert "editor-review" in listing.inner_text() and "VARCHAR" in listing.inner_text()
    wait_idle(page)
    settle(page)
    listing.screenshot(path=str(screenshot_dir / "editor-rat-tables.png"))
    set_theme(page, dark=True)
    listing.screenshot(path=str(screenshot_dir / "editor-rat-tables-dark.png"))
    set_theme(page, dark=False)

"""End to end in JupyterLab: run a `%%rat sql` cell, find a product in the Data Products sidebar,
insert its query cell, promote the notebook and see the pipeline files on disk (and the conflict
dialog on a second promotion), with the workspace and branch in the status bar.

Screenshots (light theme; the sidebar also in the dark theme) are written as the test goes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.browser.conftest import Lab

NOTEBOOK = "notebooks/getting-started.ipynb"
IDLE = re.compile(r"\(ipykernel\) \| Idle")
SAVE_CELL = (
    "%%rat sql --save gold.top_stores\n"
    "SELECT store_id, SUM(revenue) AS revenue, SUM(transactions) AS transactions\n"
    "FROM products.sales_kpis\n"
    "GROUP BY store_id\n"
    "ORDER BY revenue DESC\n"
    "LIMIT 10"
)


def wait_idle(page: Any) -> None:
    """The kernel status in the status bar: the only reliable sign the kernel takes keystrokes."""
    page.locator("#jp-main-statusbar").get_by_text(IDLE).wait_for()


def cells(page: Any) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def code_cell(page: Any, index: int) -> Any:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell").nth(index)


def run_cell(page: Any, cell: Any) -> None:
    """Select a cell (command mode) and run it with Shift+Enter, once the kernel is idle."""
    wait_idle(page)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")


def settle(page: Any, seconds: float = 1.0) -> None:
    """Toasts and dialogs slide in: give them a moment before a screenshot (mouse parked off the notebook)."""
    page.mouse.move(150, 700)
    page.wait_for_timeout(int(seconds * 1000))


def test_sidebar_status_bar_insert_and_promote(lab: Lab, page: Any, screenshot_dir: Path) -> None:
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?reset")  # a fresh layout, not the last test's tabs
    wait_idle(page)

    # -- the status bar shows the workspace and its branch --------------------------------------------
    status = page.locator(".jp-RatStatus")
    status.get_by_text("demo · workspace/demo").wait_for()
    assert "workspace demo" in (status.get_attribute("title") or "")

    # -- run the first %%rat sql cell and see its table -------------------------------------------------
    run_cell(page, code_cell(page, 0))  # %load_ext ratatouille_nb / %rat workspace
    wait_idle(page)
    query = code_cell(page, 1)
    assert "%%rat sql" in query.locator(".jp-InputArea-editor").inner_text()
    run_cell(page, query)
    table = query.locator(".jp-OutputArea-output .rat-result table")
    table.wait_for()
    headers = [h.split("\n")[0] for h in table.locator("thead th").all_inner_texts()]
    assert headers[:3] == ["store_id", "sales", "revenue"]
    assert table.locator("tbody tr").count() == 5
    assert "STORE" in table.locator("tbody tr").first.inner_text()
    settle(page)
    bar = page.locator("#jp-main-statusbar").bounding_box()
    assert bar is not None
    page.screenshot(
        path=str(screenshot_dir / "status-bar.png"),
        clip={"x": 0, "y": bar["y"] - 2, "width": 640, "height": bar["height"] + 4},
    )
    page.screenshot(path=str(screenshot_dir / "notebook-rat-sql.png"))

    # -- open the Data Products sidebar and find the product -------------------------------------------
    page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="ratatouille-products"]').click()
    sidebar = page.locator("#ratatouille-products")
    card = sidebar.locator('.jp-RatProduct[data-product="sales_kpis"]')
    card.wait_for()
    search = sidebar.locator(".jp-RatProducts-search")
    search.fill("no such thing")
    sidebar.get_by_text("No product matches").wait_for()
    assert card.count() == 0
    search.fill("kpis")
    card.wait_for()
    assert "v1.0.0" in card.locator(".jp-RatProduct-version").inner_text()
    assert "owner demo" in card.locator(".jp-RatProduct-meta").inner_text()
    assert "refreshed" in card.locator(".jp-RatProduct-freshness").inner_text()
    card.locator(".jp-RatProduct-head").click()
    details = card.locator(".jp-RatProduct-details")
    details.wait_for()
    assert "store_id" in details.locator(".jp-RatProduct-schema").inner_text()
    assert "1.0.0" in details.locator(".jp-RatProduct-versions").inner_text()
    settle(page)
    page.screenshot(path=str(screenshot_dir / "sidebar-data-products.png"))

    # -- insert the product's query cell into the notebook and run it ------------------------------------
    count_before = cells(page).count()
    card.get_by_role("button", name="Insert query").click()
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length > n",
        arg=count_before,
    )
    active = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell.jp-mod-active")
    assert "FROM products.sales_kpis" in active.locator(".jp-InputArea-editor").inner_text()
    inserted = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text="FROM products.sales_kpis")
    )
    assert inserted.count() == 1
    run_cell(page, inserted)
    inserted_table = inserted.locator(".jp-OutputArea-output .rat-result table")
    inserted_table.wait_for()
    assert "revenue" in inserted_table.locator("thead").inner_text()
    inserted.locator(".jp-InputArea").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer').scrollBy(0, -60)")
    settle(page)
    page.screenshot(path=str(screenshot_dir / "sidebar-inserted-query.png"))

    # -- a cell that saves a table: what "Promote to pipeline" turns into pipeline files ------------------
    wait_idle(page)
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # new cell below the active one
    page.keyboard.press("Enter")  # edit mode
    page.keyboard.insert_text(SAVE_CELL)
    page.keyboard.press("Shift+Enter")
    saved = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text="--save gold.top_stores")
    )
    saved.locator(".jp-OutputArea-output .rat-result").wait_for()
    assert "gold.top_stores" in saved.locator(".jp-OutputArea-output").inner_text()
    wait_idle(page)

    # -- promote: the dialog lists the files; they are on disk ---------------------------------------------
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-command="ratatouille:promote-notebook"]').click()
    dialog = page.locator(".jp-Dialog")
    # a preview first: nothing is written until it is confirmed
    dialog.get_by_text("Promote to pipeline?").wait_for()
    assert "gold_top_stores" in dialog.locator(".jp-RatDialog-models").inner_text()
    assert not (lab.workspace / "pipelines" / "gold" / "top_stores.sql").exists()
    dialog.get_by_role("button", name=re.compile(r"^Promote")).click()
    dialog.get_by_text("Promoted to pipeline").wait_for()
    files = dialog.locator(".jp-RatDialog-files li")
    listed = {line.split("\n")[0] for line in files.all_inner_texts()}
    assert any("pipelines/gold/top_stores.sql" in text for text in files.all_inner_texts()), listed
    sql_file = lab.workspace / "pipelines" / "gold" / "top_stores.sql"
    yaml_file = sql_file.with_suffix(".yaml")
    assert sql_file.is_file() and yaml_file.is_file()
    assert "-- @name: gold_top_stores" in sql_file.read_text() and "products.sales_kpis" in sql_file.read_text()
    assert "name: store_id" in yaml_file.read_text()  # the cell ran, so the columns are known
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "promote-dialog.png"))
    page.screenshot(path=str(screenshot_dir / "promote-dialog-window.png"))
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")

    # -- promote again after a hand edit: asked before overwriting; Cancel keeps the edit ------------------
    sql_file.write_text(sql_file.read_text() + "-- a hand edit\n")
    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-command="ratatouille:promote-notebook"]').click()
    dialog.get_by_text("Overwrite pipeline files?").wait_for()
    assert "differs" in dialog.locator(".jp-RatDialog-files").inner_text()
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "promote-conflict-dialog.png"))
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert sql_file.read_text().endswith("-- a hand edit\n")

    page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-command="ratatouille:promote-notebook"]').click()
    dialog.get_by_text("Overwrite pipeline files?").wait_for()
    dialog.get_by_role("button", name="Overwrite").click()
    dialog.get_by_text("Promoted to pipeline").wait_for()
    assert "overwritten" in dialog.locator(".jp-RatDialog-files").inner_text()
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")
    assert "-- a hand edit" not in sql_file.read_text()

    # -- the status bar follows the notebook kernel's branch, and lists the branches ----------------------
    wait_idle(page)
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text("%rat branch create ui-review")
    page.keyboard.press("Shift+Enter")
    status.get_by_text("demo · ui-review").wait_for()
    assert "New kernels start on workspace/demo" in (status.get_attribute("title") or "")
    settle(page)
    page.screenshot(
        path=str(screenshot_dir / "status-bar-kernel-branch.png"),
        clip={"x": 0, "y": bar["y"] - 2, "width": 640, "height": bar["height"] + 4},
    )
    status.click()
    dialog.get_by_text("Workspace demo: branches").wait_for()
    refs = dialog.locator(".jp-RatDialog-refs").inner_text()
    assert "workspace/demo" in refs and "ui-review" in refs and "this notebook" in refs
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "branches-dialog.png"))
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")

    # -- the sidebar in the dark theme ------------------------------------------------------------------
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'")
    deadline = time.monotonic() + 30
    while page.locator(".jp-Dialog").count() and time.monotonic() < deadline:
        settle(page, 0.2)
    settle(page, 1.5)
    page.screenshot(path=str(screenshot_dir / "sidebar-data-products-dark.png"))
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'true'")

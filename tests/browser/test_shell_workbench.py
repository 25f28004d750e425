"""The branch and workspace menu and one branch everywhere, in JupyterLab (issue #17, items 1, 2, 4).

- `%rat branch …` in a cell changes the status bar at once (the `ratatouille.link` comm);
- the status-bar menu switches the notebook kernel's branch, and `!rat branch list` / `!rat sql`
  in the same notebook then act on that branch; the menu previews a merge with row counts
  (−4,672 rows, not file sizes), merges after a confirmation, and deletes the branch;
- a notebook inside a workspace folder, opened from a Lab started WITHOUT RAT_WORKSPACE, shows
  that workspace in the status bar and the sidebar before any cell runs.

Screenshots: shell-*.png (light, and the menu in dark).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser.conftest import VIEWPORT, Lab, lab_env, running_lab
from tests.browser.test_lab import code_cell, wait_idle

NOTEBOOK = "notebooks/shell-branches.ipynb"
CELLS = [
    "%load_ext ratatouille_nb",
    "%%rat sql\nCREATE OR REPLACE TABLE silver.menu_demo AS SELECT i AS id, i % 10 AS bucket FROM range(20000) t(i)",
    "%rat branch create cleanup",
    "%%rat sql\nDELETE FROM silver.menu_demo WHERE id < 4672",
    "%rat branch workspace/demo",
    "!rat branch list",
    "!rat sql \"SELECT count(*) AS n FROM silver.menu_demo\"",
    "%rat branch",
    "%rat branch create workspace/demo/build/20261201-120000-abc123\n%rat branch workspace/demo",
]


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def run_cell(page: Any, index: int) -> Any:
    wait_idle(page)
    cell = code_cell(page, index)
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    # the prompt shows a number once the cell ran ("[*]" while it runs)
    cell.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[\d+\]")).wait_for(timeout=120_000)
    return cell


def output_text(cell: Any) -> str:
    return str(cell.locator(".jp-OutputArea").inner_text())


def settle(page: Any, ms: int = 800) -> None:
    page.mouse.move(150, 700)
    page.wait_for_timeout(ms)


def status_bar_clip(page: Any) -> dict[str, float]:
    bar = page.locator("#jp-main-statusbar").bounding_box()
    assert bar is not None
    return {"x": 0, "y": bar["y"] - 2, "width": 720, "height": bar["height"] + 4}


def open_menu(page: Any) -> Any:
    page.locator(".jp-RatStatus").click()
    dialog = page.locator(".jp-Dialog.jp-RatMenu-dialog")
    dialog.wait_for()
    dialog.locator(".jp-RatMenu-item").first.wait_for()
    return dialog


def set_theme(page: Any, dark: bool) -> None:
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{name}'}})")
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{'false' if dark else 'true'}'")
    settle(page, 1500)


def test_menu_switch_status_bar_and_bang_rat_agree(lab: Lab, page: Any, screenshot_dir: Path) -> None:
    write_notebook(lab.root / NOTEBOOK, CELLS)
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?reset")  # a fresh layout, not the last test's tabs
    wait_idle(page)
    status = page.locator(".jp-RatStatus")
    status.get_by_text("demo · workspace/demo").wait_for()

    # -- %rat branch in a cell: the status bar follows at once (kernel -> frontend event) -----------
    run_cell(page, 0)
    run_cell(page, 1)
    run_cell(page, 2)
    status.get_by_text("demo · cleanup").wait_for(timeout=10_000)
    run_cell(page, 3)
    run_cell(page, 4)
    status.get_by_text("demo · workspace/demo").wait_for(timeout=10_000)

    run_cell(page, 8)  # a build branch a failed build would have left
    status.get_by_text("demo · workspace/demo").wait_for(timeout=10_000)

    # -- the branch picker widget: row-level diff since the fork point, both directions ---------------
    picker = run_cell(page, 7).locator(".rat-branch-picker")
    picker.locator(".rat-diff").first.wait_for(timeout=60_000)
    text = picker.inner_text()
    assert "fork point" in text and "since then" in text and "−4,672" in text, text
    picker.locator("details.rat-diff-sample summary").first.click()
    picker.locator("table.rat-diff-rows").first.wait_for()
    settle(page)
    picker.screenshot(path=str(screenshot_dir / "shell-picker-row-diff.png"))

    # -- the menu: own branches, filter, the current one marked -------------------------------------
    dialog = open_menu(page)
    dialog.get_by_text("Workspace demo: branches").wait_for()
    items = dialog.locator(".jp-RatMenu-list > .jp-RatMenu-item")
    names = [items.nth(i).get_attribute("data-branch") for i in range(items.count())]
    assert names[0] == "workspace/demo" and "cleanup" in names and "main" in names
    assert "this notebook" in items.first.inner_text()
    assert not any("/build/" in (n or "") for n in names)  # build branches are grouped apart
    builds = dialog.locator(".jp-RatMenu-builds")
    assert "build branches (1)" in builds.locator("summary").inner_text().lower()
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "shell-branch-menu.png"))
    builds.locator("summary").click(position={"x": 10, "y": 8})
    builds.locator(".jp-RatMenu-item").first.wait_for()
    assert "from workspace/demo" in builds.inner_text()
    builds.locator(".jp-RatMenu-prune").click()
    dialog.locator(".jp-RatMenu-status").get_by_text("Deleted 1 build branch.").wait_for(timeout=30_000)
    assert dialog.locator(".jp-RatMenu-builds").count() == 0

    # -- merge preview: row counts since the fork point, then cancel ---------------------------------
    dialog.locator(".jp-RatMenu-item[data-branch='cleanup'] .jp-RatMenu-merge").click()
    diff = dialog.locator(".jp-RatMenu-diffTable")
    diff.wait_for(timeout=60_000)
    row = diff.locator("tbody tr").filter(has_text="silver.menu_demo")
    assert "−4,672" in row.inner_text() and "+0" in row.inner_text(), row.inner_text()
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "shell-merge-preview.png"))
    dialog.locator(".jp-RatMenu-cancel").click()

    # -- switch in the menu (filter, then click): the kernel session moves ---------------------------
    dialog.locator(".jp-RatMenu-filter").fill("clean")
    assert dialog.locator(".jp-RatMenu-item").count() == 1
    dialog.locator(".jp-RatMenu-item[data-branch='cleanup']").click()
    dialog.wait_for(state="detached")
    status.get_by_text("demo · cleanup").wait_for(timeout=15_000)
    settle(page)
    page.screenshot(path=str(screenshot_dir / "shell-status-bar-after-switch.png"), clip=status_bar_clip(page))

    # -- !rat in the same notebook acts on the same branch ------------------------------------------
    listed = output_text(run_cell(page, 5))
    current = [line for line in listed.splitlines() if line.startswith("*")]
    assert current and "cleanup" in current[0], listed
    counted = output_text(run_cell(page, 6))
    assert "15,328" in counted or "15328" in counted, counted
    assert "cleanup" in counted, counted

    # -- back, merge with the confirmation, delete ---------------------------------------------------
    dialog = open_menu(page)
    dialog.locator(".jp-RatMenu-item[data-branch='workspace/demo']").click()
    dialog.wait_for(state="detached")
    status.get_by_text("demo · workspace/demo").wait_for(timeout=15_000)
    dialog = open_menu(page)
    dialog.locator(".jp-RatMenu-item[data-branch='cleanup'] .jp-RatMenu-merge").click()
    dialog.locator(".jp-RatMenu-confirm").click()
    dialog.locator(".jp-RatMenu-status").get_by_text(re.compile(r"Merged cleanup into workspace/demo")).wait_for(timeout=60_000)
    dialog.locator(".jp-RatMenu-item[data-branch='cleanup'] .jp-RatMenu-delete").click()
    dialog.locator(".jp-RatMenu-confirmDelete").click()
    dialog.locator(".jp-RatMenu-status").get_by_text("Deleted cleanup.").wait_for(timeout=30_000)
    assert dialog.locator(".jp-RatMenu-item[data-branch='cleanup']").count() == 0
    # the current and the default branch offer no delete
    assert dialog.locator(".jp-RatMenu-item[data-branch='workspace/demo'] .jp-RatMenu-delete").count() == 0
    assert dialog.locator(".jp-RatMenu-item[data-branch='main'] .jp-RatMenu-delete").count() == 0
    counted = output_text(run_cell_after_close(page, dialog, 6))
    assert "15,328" in counted or "15328" in counted, counted
    assert "workspace/demo" in counted, counted

    # -- the menu in the dark theme -----------------------------------------------------------------
    set_theme(page, dark=True)
    dialog = open_menu(page)
    dialog.locator(".jp-RatMenu-item[data-branch='workspace/demo']").wait_for()
    settle(page)
    dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "shell-branch-menu-dark.png"))
    dialog.get_by_role("button", name="Close", exact=True).click()
    dialog.wait_for(state="detached")
    settle(page)
    page.screenshot(path=str(screenshot_dir / "shell-status-bar-dark.png"), clip=status_bar_clip(page))
    set_theme(page, dark=False)


def run_cell_after_close(page: Any, dialog: Any, index: int) -> Any:
    dialog.get_by_role("button", name="Close", exact=True).click()
    dialog.wait_for(state="detached")
    return run_cell(page, index)


def test_palette_lists_the_branch_commands(lab: Lab, page: Any) -> None:
    commands = page.evaluate("window.jupyterapp.commands.listCommands().filter(c => c.startsWith('ratatouille:'))")
    for wanted in ("branch-menu", "switch-branch", "create-branch", "merge-branch", "delete-branch", "prune-build-branches", "switch-workspace"):
        assert f"ratatouille:{wanted}" in commands


# -- a Lab started without RAT_WORKSPACE --------------------------------------------------------


@pytest.fixture(scope="module")
def bare_lab(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab started in a folder holding `myws` (made with `rat init myws`), no RAT_WORKSPACE."""
    base = tmp_path_factory.mktemp("bare-lab")
    root, cfg, home = base / "root", base / "jupyter", lab.home
    root.mkdir()
    env = lab_env(base, home, cfg)
    rat = Path(sys.executable).with_name("rat")
    made = subprocess.run([str(rat), "init", "myws"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    write_notebook(root / "myws" / "notebooks" / "explore.ipynb", ["%load_ext ratatouille_nb", "%rat branch create explore-dev"])
    with running_lab(base, root, home, root / "myws", env) as server:
        yield server


def test_notebook_in_a_workspace_folder_without_rat_workspace(bare_lab: Lab, browser: Any, screenshot_dir: Path) -> None:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{bare_lab.url}lab/tree/myws/notebooks/explore.ipynb")
        wait_idle(page)
        status = page.locator(".jp-RatStatus")
        # before any cell ran: the server found the workspace from the notebook's path
        status.get_by_text("myws · workspace/myws").wait_for(timeout=30_000)
        assert "no workspace" not in status.inner_text()
        # the sidebar follows the notebook too
        page.evaluate("window.jupyterapp.commands.execute('ratatouille:open-products')")
        sidebar = page.locator("#ratatouille-products")
        sidebar.get_by_text("workspace myws").wait_for(timeout=30_000)
        assert not sidebar.locator(".jp-RatProducts-error").count()
        settle(page)
        page.screenshot(path=str(screenshot_dir / "shell-no-rat-workspace.png"))
        # "New branch" in the menu before any cell ran: the kernel loads ratatouille_nb and switches
        dialog = open_menu(page)
        dialog.locator(".jp-RatMenu-filter").fill("menu-made")
        dialog.get_by_text("No branch matches").wait_for()
        page.keyboard.press("Enter")
        dialog.wait_for(state="detached", timeout=60_000)
        status.get_by_text("myws · menu-made").wait_for(timeout=30_000)
        # the kernel found the workspace as well, and a branch made in a cell shows at once
        run_cell(page, 0)
        run_cell(page, 1)
        status.get_by_text("myws · explore-dev").wait_for(timeout=15_000)
        dialog = open_menu(page)
        dialog.get_by_text("Workspace myws: branches").wait_for()
        names = [n for n in dialog.locator(".jp-RatMenu-item").evaluate_all("els => els.map(e => e.dataset.branch)")]
        assert "explore-dev" in names and "workspace/myws" in names and "menu-made" in names
        assert not any(n.startswith("workspace/demo") for n in names), names  # only this workspace's branches
        workspaces = dialog.locator(".jp-RatMenu-workspaces option").all_inner_texts()
        assert any(w.startswith("myws") for w in workspaces) and any(w.startswith("demo") for w in workspaces), workspaces
        settle(page)
        dialog.locator(".jp-Dialog-content").screenshot(path=str(screenshot_dir / "shell-branch-menu-myws.png"))
        dialog.get_by_role("button", name="Close", exact=True).click()
        set_theme(page, dark=True)
        page.screenshot(path=str(screenshot_dir / "shell-no-rat-workspace-dark.png"))
        set_theme(page, dark=False)
    finally:
        context.close()

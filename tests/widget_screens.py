"""Screenshots of every notebook widget rendered in a real JupyterLab (a script, not a pytest module).

    .venv/bin/python tests/widget_screens.py [--out docs/widgets] [--keep]

Builds the demo in a temporary RAT_HOME, publishes a product, adds a branch with changes,
writes a notebook with one cell per widget, starts `jupyter lab` (its own process group) on a
free port, drives Debian's /usr/bin/chromium with PyPI playwright (never `playwright install`),
runs the cells one by one and saves each widget's output as a PNG. It also clicks a lineage node
and the "Columns" toggle and checks, in the kernel, that both reached Python. Everything it
started is stopped at the end; exit status 0 means every screenshot was taken and every check held.

Needs: jupyterlab (4.6), playwright (PyPI) and chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("RAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOK = "widgets.ipynb"

# (cell source, screenshot name or None)
CELLS: list[tuple[str, str | None]] = [
    ("%load_ext ratatouille_nb", None),
    ("%rat branch", "branch-picker"),
    ("%rat products", "product-browser"),
    ("%rat run", "run-progress"),
    (
        "%%rat sql\nSELECT _date, store_id, revenue, transactions, avg_basket\nFROM gold.daily_sales_kpis\nORDER BY revenue DESC\nLIMIT 20",
        "sql-result",
    ),
    ("lin = %rat lineage\nlin", "lineage-table"),
    ('cols = %rat lineage --columns\ncols.select("gold.daily_sales_kpis", column="revenue")\ncols', "lineage-columns"),
    ('print("selected:", lin.selected, "| mode:", lin.mode, "| column edges:", len(lin.graph["column_edges"]))', None),
]


def log(msg: str) -> None:
    print(f"[screens {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the demo data ------------------------------------------------------------------------------


def build_demo(tmp: Path) -> tuple[Path, Path]:
    from ratatouille_nb.demo import run_demo
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace import Workspace

    home, path = tmp / "rat-home", tmp / "demo"
    settings = Settings.from_env(home=str(home))
    run_demo(settings, path, rows=20000, echo=lambda m: log(f"demo: {m}"))
    with Session(settings, Workspace.load(path)) as session:
        session.products.publish("gold.daily_sales_kpis", "sales_kpis", "1.0.0", access=[("*", "read")])
        # a branch with changes, so the branch picker has a diff to preview
        main = session.branch
        session.store.create_reference("dev/price-fix", "branch", main)
        session.use_branch("dev/price-fix")
        session.sql("DELETE FROM gold.daily_sales_kpis WHERE store_id = 'STORE001'")
        session.sql("CREATE TABLE silver.store_targets AS SELECT DISTINCT store_id, 1000.0 AS daily_target FROM silver.sales")
        session.use_branch(main)
    return home, path


def write_notebook(path: Path) -> None:
    cells: list[dict[str, Any]] = [
        {"cell_type": "code", "id": f"cell-{i}", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
        for i, (src, _) in enumerate(CELLS)
    ]
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


def jupyter_config(tmp: Path) -> dict[str, str]:
    """A private config/settings dir: no news toasts, no notebook windowing, jupysql-plugin off."""
    config = tmp / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": {"jupysql-plugin": True}}))
    settings = tmp / "lab-settings"
    overrides = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, value in overrides.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    return {
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
    }


# -- JupyterLab ---------------------------------------------------------------------------------


class Lab:
    def __init__(self, root: Path, env: dict[str, str], logfile: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logfile.open("w")
        cmd = [
            str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root", "--IdentityProvider.token=",
            "--ServerApp.password=", "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0", f"--ServerApp.root_dir={root}",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=root, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; see {logfile}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        log(f"jupyter lab up on {self.url} (pid {self.proc.pid})")
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer on {self.url}; see {logfile}")

    def stop(self) -> None:
        # Kernels run in their own sessions: shut them down through the API, then the server's group.
        try:
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            opener.open(f"{self.url}/lab", timeout=10).close()  # sets the _xsrf cookie
            xsrf = next((c.value or "" for c in jar if c.name == "_xsrf"), "")
            with opener.open(f"{self.url}/api/kernels", timeout=5) as r:
                kernels = json.load(r)
            for k in kernels:
                req = urllib.request.Request(f"{self.url}/api/kernels/{k['id']}", method="DELETE", headers={"X-XSRFToken": xsrf})
                opener.open(req, timeout=20).close()
                log(f"kernel {k['id'][:8]} shut down")
        except OSError as exc:
            log(f"could not shut kernels down through the API: {exc}")
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()
        log("jupyter lab stopped")


# -- the browser --------------------------------------------------------------------------------


def wait_idle(page, timeout: float = 120) -> None:
    """The status bar's kernel status; the cell prompt says idle too early (dropped Shift+Enter)."""
    page.wait_for_function(
        "() => (document.querySelector('#jp-main-statusbar')?.innerText || '').includes('(ipykernel) | Idle')",
        timeout=timeout * 1000,
    )


def run_cell(page, index: int, timeout: float = 240):
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    wait_idle(page)
    cell.locator(".jp-InputArea-editor").click()
    time.sleep(0.3)
    wait_idle(page)
    page.keyboard.press("Shift+Enter")
    # the prompt goes from [ ] through [*] to [n]; then the kernel is idle again
    page.wait_for_function(
        "(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];"
        " const p = c && c.querySelector('.jp-InputPrompt'); return p && /\\[\\d+\\]/.test(p.innerText); }",
        arg=index,
        timeout=timeout * 1000,
    )
    wait_idle(page, timeout)
    stderr = cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    stderr_text = "\n".join(stderr.all_inner_texts())
    if cell.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").count() or "Error" in stderr_text:
        raise RuntimeError(f"cell {index} failed:\n{cell.locator('.jp-OutputArea').inner_text()}")
    if stderr_text:
        log(f"cell {index} wrote to stderr: {stderr_text[:300]}")
    return cell


def shoot(page, cell, name: str, out: Path) -> Path:
    area = cell.locator(".jp-OutputArea")
    area.scroll_into_view_if_needed()
    page.mouse.move(2, 2)  # no hover highlight on the shot
    time.sleep(1.0)  # toasts slide in; cytoscape fits on its first resize
    path = out / f"{name}.png"
    area.screenshot(path=str(path))
    log(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def drive(url: str, out: Path, debug_dir: Path | None = None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000}, device_scale_factor=1)
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.goto(f"{url}/lab/tree/{NOTEBOOK}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
            wait_idle(page, 180)
            for index, (src, name) in enumerate(CELLS):
                log(f"running cell {index}: {src.splitlines()[0]}")
                cell = run_cell(page, index)
                if name is None:
                    continue
                if name.startswith("lineage"):
                    cell.locator(".rat-lineage-canvas canvas").first.wait_for(timeout=30_000)
                else:
                    cell.locator(".jp-OutputArea-output").first.wait_for(timeout=30_000)
                    if name in ("branch-picker", "product-browser", "run-progress"):
                        cell.locator(".widget-box, .jupyter-widgets").first.wait_for(timeout=30_000)
                if name == "lineage-table":
                    click_node(page, cell, "silver.sales")
                    cell.locator(".rat-lineage-panel").filter(has_text="rows written").wait_for(timeout=30_000)
                if name == "lineage-columns":
                    cell.locator(".rat-lineage-panel").filter(has_text="rows written").wait_for(timeout=30_000)
                shots.append(shoot(page, cell, name, out))
                if name == "lineage-table":
                    # the toolbar toggle reaches Python too (checked by the last cell's output)
                    cell.locator(".rat-lineage-toolbar button", has_text="Columns").click()
                    page.wait_for_function(
                        "(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];"
                        " const cy = c.querySelector('.rat-lineage-canvas').__cy; return cy && cy.nodes('.col').length > 0; }",
                        arg=index,
                        timeout=30_000,
                    )
            text = page.locator(".jp-Notebook .jp-Cell").nth(len(CELLS) - 1).locator(".jp-OutputArea").inner_text()
            log(f"kernel says: {text.strip()}")
            if "selected: silver.sales" not in text or "mode: column" not in text or "column edges: 0" in text:
                raise RuntimeError(f"the clicks did not reach Python: {text!r}")
            # the same widget in the dark theme
            page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            time.sleep(1.5)
            cell = page.locator(".jp-Notebook .jp-Cell").nth(5)
            shots.append(shoot(page, cell, "lineage-dark", out))
            problems = [c for c in console if "lineage" in c.lower() or "anywidget" in c.lower() or "cytoscape" in c.lower()]
            if problems:
                log("browser console:\n  " + "\n  ".join(problems[:20]))
        except Exception:
            if debug_dir is not None:
                page.screenshot(path=str(debug_dir / "failure.png"), full_page=True)
                log(f"page at the failure: {debug_dir / 'failure.png'}")
            raise
        finally:
            browser.close()
    return shots


def click_node(page, cell, node_id: str) -> None:
    """A real mouse click on a node of the cytoscape canvas."""
    canvas = cell.locator(".rat-lineage-canvas")
    canvas.scroll_into_view_if_needed()
    time.sleep(0.5)
    point = canvas.evaluate(
        "(el, id) => { const n = el.__cy.getElementById(id); const p = n.renderedPosition();"
        " const r = el.getBoundingClientRect(); return {x: r.left + p.x, y: r.top + p.y}; }",
        node_id,
    )
    page.mouse.click(point["x"], point["y"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "widgets")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (demo, logs)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rat-screens-"))
    log(f"working in {tmp}")
    lab = None
    try:
        home, demo = build_demo(tmp)
        write_notebook(demo / NOTEBOOK)
        env = {"RAT_HOME": str(home), "RAT_WORKSPACE": str(demo), **jupyter_config(tmp)}
        lab = Lab(demo, env, tmp / "jupyter.log")
        shots = drive(lab.url, args.out, tmp)
        log(f"{len(shots)} screenshots in {args.out}")
        return 0
    finally:
        if lab is not None:
            lab.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""A real JupyterLab in a real browser: Playwright (PyPI) driving Debian's /usr/bin/chromium.

Session fixtures build a small demo lakehouse in a temporary RAT_HOME, publish a product, copy
the getting-started notebook into a temporary server root, start `jupyter lab` on 127.0.0.1 in
its own process group (stopped by its PID at the end), and open one browser page.

Run apart from the other tests (`make test` does): Playwright's sync API and pytest-jupyter's
event loops do not mix in one process. Never `playwright install`: the browser is Debian's.
Screenshots go to $RAT_SCREENSHOT_DIR when set (`make screenshots` sets docs/screenshots),
otherwise to a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("RAT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}

SEED = """
import sys
from pathlib import Path
from ratatouille_nb.demo import run_demo
from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

home, path = sys.argv[1], Path(sys.argv[2])
settings = Settings.from_env(home=home)
run_demo(settings, path, rows=20000, echo=lambda line: None)
with Session(settings, Workspace.load(path)) as session:
    session.products.publish("gold.daily_sales_kpis", "sales_kpis", "1.0.0", access=[("*", "read")])
"""

# JupyterLab user settings for a quiet, reproducible UI: no news/update prompts.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class Lab:
    url: str
    root: Path
    home: Path
    workspace: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_status(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "api/status", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer on {url} within {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and its kernels: they share the process group we created for it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`); .ci/run does"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("RAT_SCREENSHOT_DIR")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lab_env(base: Path, home: Path, cfg: Path, **extra: str) -> dict[str, str]:
    """Write USER_SETTINGS under `cfg` and return the environment of a JupyterLab kept inside `base`:
    no RAT_* / JUPYTER* variable from outside, HOME `base/user-home`, RAT_HOME `home`, plus `extra`."""
    for rel, content in USER_SETTINGS.items():
        target = cfg / "lab-settings" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAT_", "JUPYTER"))}
    env.update(
        HOME=str(base / "user-home"),
        RAT_HOME=str(home),
        JUPYTER_CONFIG_DIR=str(cfg / "config"),
        JUPYTER_RUNTIME_DIR=str(cfg / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(cfg / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(cfg / "lab-workspaces"),
        IPYTHONDIR=str(cfg / "ipython"),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    (base / "user-home").mkdir()
    return env


@contextmanager
def running_lab(base: Path, root: Path, home: Path, workspace: Path, env: dict[str, str]) -> Iterator[Lab]:
    """`jupyter lab` on a free port serving `root` (log in `base/jupyter-lab.log`), stopped on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = base / "jupyter-lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab",
                "--no-browser", "--allow-root",
                "--IdentityProvider.token=", "--ServerApp.password=",
                "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.news_url=None",
            ],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Lab(url=url, root=root, home=home, workspace=workspace, log=log, process=process)
    try:
        _wait_for_status(url, process)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def lab(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    home, workspace, root, cfg = base / "rat-home", base / "demo", base / "root", base / "jupyter"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / "getting-started.ipynb", root / "notebooks" / "getting-started.ipynb")
    env = lab_env(base, home, cfg, RAT_WORKSPACE=str(workspace))
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, str(home), str(workspace)], env=env, capture_output=True, text=True, timeout=600
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    with running_lab(base, root, home, workspace, env) as server:
        yield server


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def page(browser: Any, lab: Lab) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed browser test, attach the server log tail and a screenshot path to the report."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    lab_fixture = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
    page_fixture = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if page_fixture is not None and lab_fixture is not None:
        shot = lab_fixture.log.parent / f"failure-{item.name}.png"
        try:
            page_fixture.screenshot(path=str(shot))
            report.sections.append(("browser", f"screenshot of the failure: {shot}"))
        except Exception as exc:
            report.sections.append(("browser", f"no screenshot: {exc}"))
    if lab_fixture is not None:
        report.sections.append(("jupyter lab log (tail)", lab_fixture.log_tail()))

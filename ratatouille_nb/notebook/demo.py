"""The tutorial's workspace, from any JupyterLab: `open_demo()` in the getting-started notebook.

With RAT_WORKSPACE set (`make lab` sets it) the kernel's workspace is used as it is. Without it,
the demo workspace is found by its name (`make demo` registers `demo`; a folder under
RAT_HOME/workspaces), and built small there the first time if it has no tables yet. The kernel's
environment then names it (RAT_WORKSPACE), so `!rat …` in the notebook acts on the same workspace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ratatouille_nb.errors import WorkspaceError

DEMO = "demo"
#: Rows of the demo built from the notebook: enough to show every step, built in seconds.
SMALL_ROWS = 20_000


def demo_path() -> Path | None:
    """The demo workspace's folder if one exists (by name: RAT_HOME/workspaces/demo or the registered `demo`)."""
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace.manager import find_workspace

    settings = Settings.from_env(workspace=DEMO)
    try:
        return find_workspace(settings).root
    except WorkspaceError:
        return None


def open_demo(*, rows: int = SMALL_ROWS, echo: Callable[[str], None] = print) -> str:
    """Make the kernel's session the tutorial's workspace; returns its folder.

    RAT_WORKSPACE set: that workspace. Else the demo workspace, built (`rows` sales rows) the
    first time if it is missing or has no tables."""
    from ratatouille_nb.verbs import session as sessions

    if os.environ.get("RAT_WORKSPACE"):
        session = sessions.current()
        echo(f"workspace '{session.workspace.name}' from RAT_WORKSPACE ({session.workspace.root})")
        return str(session.workspace.root)
    from ratatouille_nb.settings import Settings

    settings = Settings.from_env()
    found = demo_path()
    if found is None or not _has_tables(found):
        from ratatouille_nb.demo import run_demo

        target = found or settings.workspaces_dir / DEMO
        echo(f"no demo workspace with data yet: building a small one in {target} (about a minute at most) …")
        run_demo(settings, target, rows=rows, echo=lambda _line: None)
        found = target.resolve()
    os.environ["RAT_WORKSPACE"] = str(found)  # `!rat …` in this notebook uses the same workspace
    current = sessions.current() if sessions.has_current() else None
    if current is None or current.closed or current.workspace.root != found:
        session = sessions.switch_workspace(str(found))
    else:
        session = current
    echo(f"workspace '{session.workspace.name}' ({found}) · branch {session.branch}")
    return str(found)


def _has_tables(root: Path) -> bool:
    from ratatouille_nb.verbs import session as sessions

    with sessions.open_session(workspace=str(root)) as probe:
        return bool(probe.contents())

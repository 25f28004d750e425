"""A real IPython InteractiveShell with `%load_ext ratatouille_nb` on a fresh workspace (the kernel tests' fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from traitlets.config import Config

from ratatouille_nb.settings import Settings

_NO_HISTORY = Config()
_NO_HISTORY.HistoryManager.enabled = False


@pytest.fixture
def shell(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    from ratatouille_nb.verbs import session as sessions
    from ratatouille_nb.workspace import init_workspace

    ws = init_workspace(tmp_path / "kws", settings, name="kws")
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(ws.root))
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance(config=_NO_HISTORY)
    with capture_output():
        sh.run_cell("%load_ext ratatouille_nb")
    yield sh
    sessions.reset()
    InteractiveShell.clear_instance()


def run(sh: InteractiveShell, source: str) -> tuple[Any, CapturedIO]:
    with capture_output() as out:
        result = sh.run_cell(source)
    return result, out


def pipelines_dir() -> Path:
    from ratatouille_nb.verbs import session as sessions

    return sessions.current().workspace.root / "pipelines"

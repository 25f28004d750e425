"""The `ratatouille.link` comm (notebook/link.py) in a real IPython shell, with a fake comm and comm manager."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

_NO_HISTORY = Config()
_NO_HISTORY.HistoryManager.enabled = False


class FakeComm:
    """What ipykernel's comm offers us: send, on_msg, on_close; `receive` plays the frontend."""

    def __init__(self, data: Any = None) -> None:
        self.opened_with = data
        self.sent: list[dict[str, Any]] = []
        self._on_msg: Callable[[dict[str, Any]], None] | None = None
        self._on_close: Callable[[dict[str, Any]], None] | None = None

    def send(self, data: Any = None) -> None:
        self.sent.append(data)

    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._on_msg = callback

    def on_close(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._on_close = callback

    def receive(self, data: dict[str, Any]) -> None:
        assert self._on_msg is not None
        self._on_msg({"content": {"data": data}})

    def close(self) -> None:
        assert self._on_close is not None
        self._on_close({})

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("event") == "state"]


class FakeManager:
    def __init__(self) -> None:
        self.targets: dict[str, Callable[..., None]] = {}

    def register_target(self, name: str, callback: Callable[..., None]) -> None:
        self.targets[name] = callback

    def open_from_frontend(self) -> FakeComm:
        comm = FakeComm()
        self.targets["ratatouille.link"](comm, {"content": {"data": {}}})
        return comm


@pytest.fixture
def ws(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    workspace = init_workspace(tmp_path / "linkws", settings, name="linkws")
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(workspace.root))
    return workspace


@pytest.fixture
def shell(ws: Workspace) -> Iterator[tuple[InteractiveShell, FakeManager, list[FakeComm]]]:
    """A real InteractiveShell with the extension loaded and the link registered on a fake kernel."""
    from ratatouille_nb.notebook import link
    from ratatouille_nb.verbs import session as sessions

    link.reset()
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance(config=_NO_HISTORY)
    manager = FakeManager()
    opened: list[FakeComm] = []

    def opener(*, target_name: str, data: Any) -> FakeComm:
        assert target_name == "ratatouille.link"
        comm = FakeComm(data)
        opened.append(comm)
        return comm

    with capture_output():
        sh.run_cell("%load_ext ratatouille_nb")  # no kernel here: the listener only
    assert link.register(sh, manager=manager, opener=opener)
    yield sh, manager, opened
    link.reset()
    sessions.reset()
    InteractiveShell.clear_instance()


def run(sh: InteractiveShell, source: str) -> Any:
    with capture_output() as out:
        result = sh.run_cell(source)
    assert result.success, (result.error_in_exec, out.stdout)
    return out


def test_register_opens_a_kernel_side_comm_and_the_target(shell: Any) -> None:
    _sh, manager, opened = shell
    assert "ratatouille.link" in manager.targets
    [comm] = opened
    assert comm.opened_with == {"event": "hello"}  # no session yet: the frontend answers with hello


def test_hello_answers_state_and_sets_the_environment(shell: Any, ws: Workspace) -> None:
    _sh, manager, _opened = shell
    comm = manager.open_from_frontend()
    comm.receive({"action": "hello"})
    assert comm.states == [{"event": "state", "workspace": "linkws", "path": str(ws.root), "branch": "workspace/linkws"}]
    assert os.environ["RAT_WORKSPACE"] == str(ws.root) and os.environ["RAT_BRANCH"] == "workspace/linkws"


def test_magic_switch_sends_state_at_once_to_every_comm(shell: Any) -> None:
    sh, manager, opened = shell
    comm = manager.open_from_frontend()
    run(sh, "%rat branch create dev")
    assert comm.states[-1]["branch"] == "dev" and opened[0].states[-1]["branch"] == "dev"
    run(sh, "%rat branch workspace/linkws")
    assert comm.states[-1]["branch"] == "workspace/linkws"
    assert os.environ["RAT_BRANCH"] == "workspace/linkws"


def test_menu_switch_changes_the_kernel_session(shell: Any) -> None:
    from ratatouille_nb.verbs import session as sessions

    sh, manager, _opened = shell
    run(sh, "%rat branch create feature")
    run(sh, "%rat branch workspace/linkws")
    comm = manager.open_from_frontend()
    comm.receive({"action": "switch", "branch": "feature"})
    assert sessions.current().branch == "feature"
    assert comm.states[-1]["branch"] == "feature" and os.environ["RAT_BRANCH"] == "feature"
    run(sh, "%%rat sql\nCREATE TABLE silver.on_feature AS SELECT 1 AS x")
    assert "silver.on_feature" in sessions.current().store.contents("feature")
    assert "silver.on_feature" not in sessions.current().store.contents("workspace/linkws")


def test_switch_to_a_missing_branch_is_an_error_event(shell: Any) -> None:
    from ratatouille_nb.verbs import session as sessions

    _sh, manager, _opened = shell
    comm = manager.open_from_frontend()
    comm.receive({"action": "switch", "branch": "nope"})
    assert comm.sent[-1]["event"] == "error" and "nope" in comm.sent[-1]["message"]
    assert sessions.current().branch == "workspace/linkws"
    comm.receive({"action": "bogus"})
    assert comm.sent[-1]["event"] == "error"


def test_workspace_action_switches_the_kernel_workspace(shell: Any, settings: Settings, tmp_path: Path) -> None:
    from ratatouille_nb.verbs import session as sessions

    other = init_workspace(tmp_path / "second", settings, name="second")
    _sh, manager, _opened = shell
    comm = manager.open_from_frontend()
    comm.receive({"action": "workspace", "path": str(other.root)})
    assert sessions.current().workspace.name == "second"
    assert comm.states[-1] == {"event": "state", "workspace": "second", "path": str(other.root), "branch": "workspace/second"}
    assert os.environ["RAT_WORKSPACE"] == str(other.root)


def test_closed_comms_hear_nothing(shell: Any) -> None:
    sh, manager, _opened = shell
    comm = manager.open_from_frontend()
    comm.close()
    run(sh, "%rat branch create later")
    assert comm.states == []


def test_widget_switch_notifies(shell: Any) -> None:
    from ratatouille_nb.notebook.widgets.branches import BranchPicker

    _sh, manager, _opened = shell
    comm = manager.open_from_frontend()
    picker = BranchPicker()
    picker.create("w1")
    assert comm.states[-1]["branch"] == "w1"
    picker.switch("workspace/linkws")
    assert comm.states[-1]["branch"] == "workspace/linkws"


def test_bang_rat_uses_the_notebooks_branch(shell: Any, ws: Workspace) -> None:
    """`!rat …` runs with the kernel's environment: after a switch it sees the notebook's branch."""
    sh, _manager, _opened = shell
    run(sh, "%rat branch create bang")
    run(sh, "%%rat sql\nCREATE TABLE silver.only_here AS SELECT 1 AS x")
    rat = Path(sys.executable).with_name("rat")
    if not rat.exists():
        pytest.skip("the rat script is not installed next to this python")
    out = subprocess.run([str(rat), "sql", "SELECT count(*) AS n FROM silver.only_here"], capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr  # the table exists on `bang` only
    listed = subprocess.run([str(rat), "branch", "list"], capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    current = [line for line in listed.stdout.splitlines() if "*" in line]
    assert current and "bang" in current[0], listed.stdout


def test_notify_state_without_a_session_is_a_no_op(ws: Workspace) -> None:
    from ratatouille_nb.notebook import link
    from ratatouille_nb.verbs import session as sessions

    sessions.reset()
    link.reset()
    assert link.notify_state() is None
    assert "RAT_BRANCH" not in os.environ

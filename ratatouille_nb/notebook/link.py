"""One branch everywhere: the kernel end of the `ratatouille.link` comm (labextension/src/kernellink.ts).

frontend → kernel: `{"action": "hello"}` (answered with the state), `{"action": "switch", "branch": B}`,
`{"action": "workspace", "path": P}`.
kernel → frontend: `{"event": "state", "workspace": NAME, "path": FOLDER, "branch": B}` after hello
and after every branch or workspace change, whatever made it (`%rat branch`, the branch picker,
the menu, `rat.use(...)`); `{"event": "error", "message": …, "hint": …}` when an action fails.

On every change the kernel's environment follows too (RAT_WORKSPACE=FOLDER, RAT_BRANCH=B), so
`!rat …` in the notebook acts on the notebook's branch.

`register()` runs when the magics load: it registers the comm target (the frontend opens the comm
on kernel start) and, as the frontend cannot know when the magics load, opens a comm from the
kernel side as well (kernellink.ts registers the same target name). `notify_state()` is what other
notebook code calls after a change; the session's change listener calls it too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ratatouille_nb.errors import RatError
from ratatouille_nb.verbs import session as sessions

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session

TARGET = "ratatouille.link"


class Comm(Protocol):
    """What we use of an ipykernel comm (comm.base_comm.BaseComm)."""

    def send(self, data: Any = None) -> None: ...

    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None: ...

    def on_close(self, callback: Callable[[dict[str, Any]], None]) -> None: ...


class _Link:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.comms: list[Comm] = []
        self.registered = False
        self.last: dict[str, Any] | None = None

    def add(self, comm: Comm) -> None:
        with self.lock:
            if comm not in self.comms:
                self.comms.append(comm)
        comm.on_msg(lambda msg: handle(msg.get("content", {}).get("data", {}) or {}, comm))
        comm.on_close(lambda _msg: self.drop(comm))

    def drop(self, comm: Comm) -> None:
        with self.lock:
            if comm in self.comms:
                self.comms.remove(comm)


_link = _Link()


def state(session: Session | None = None) -> dict[str, Any]:
    """The state event for `session` (default: the kernel's, opened on first use)."""
    s = session or sessions.current()
    return {"event": "state", "workspace": s.workspace.name, "path": str(s.workspace.root), "branch": s.branch}


def _environment(event: dict[str, Any]) -> None:
    os.environ["RAT_WORKSPACE"] = event["path"]
    os.environ["RAT_BRANCH"] = event["branch"]
    _rat_on_path()


def _rat_on_path() -> None:
    """Make `!rat` find this kernel's `rat` when Jupyter was started from a venv not activated."""
    import shutil
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("rat")
    if shutil.which("rat") is None and script.is_file():
        os.environ["PATH"] = os.pathsep.join([str(script.parent), os.environ.get("PATH", "")])


def _send(event: dict[str, Any], only: Comm | None = None) -> None:
    with _link.lock:
        targets = [only] if only is not None else list(_link.comms)
    for comm in targets:
        comm.send(event)


def notify_state(session: Session | None = None) -> dict[str, Any] | None:
    """After a branch or workspace change: set RAT_WORKSPACE/RAT_BRANCH and tell every open comm.

    Returns the state sent, or None when no session is open (nothing to tell yet).
    """
    if session is None and not sessions.has_current():
        return None
    event = state(session)
    _environment(event)
    with _link.lock:
        _link.last = event
    _send(event)
    return event


def _error(exc: RatError, comm: Comm | None) -> None:
    message = exc.args[0] if exc.args else str(exc)
    _send({"event": "error", "message": str(message), "hint": exc.hint}, comm)


def handle(data: dict[str, Any], comm: Comm | None = None) -> None:
    """One message from the frontend (the comm's on_msg; tests call it directly)."""
    from ratatouille_nb.verbs import branches

    action = data.get("action")
    try:
        if action == "hello":
            event = state()
            _environment(event)
            _send(event, comm)
        elif action == "switch":
            name = data.get("branch")
            if not isinstance(name, str) or not name:
                raise RatError("switch: no branch named")
            session = sessions.current()
            if name == session.branch:
                notify_state(session)
            else:
                branches.checkout(session, name)  # the session's listener sends the state
        elif action == "workspace":
            path = data.get("path")
            if not isinstance(path, str) or not path:
                raise RatError("workspace: no path given")
            sessions.switch_workspace(path)  # use() tells the listeners
        else:
            raise RatError(f"unknown action {action!r}")
    except RatError as exc:
        _error(exc, comm)


def _on_change(session: Session) -> None:
    notify_state(session)


def _ensure_listener() -> None:
    if not sessions.listening(_on_change):
        sessions.on_change(_on_change)


def _comm_opened(comm: Comm, _msg: dict[str, Any]) -> None:
    _ensure_listener()
    _link.add(comm)


def register(ipython: Any = None, *, manager: Any = None, opener: Callable[..., Comm] | None = None) -> bool:
    """Register the comm target and the change listener; True when a kernel's comm manager took it.

    `manager` and `opener` (a `comm.create_comm` stand-in) are for tests; by default they are
    ipykernel's, and without a running kernel (a plain IPython) only the listener is installed.
    """
    _ensure_listener()
    if manager is None:
        kernel = getattr(ipython, "kernel", None)
        if kernel is None:
            return False
        import comm as comm_pkg

        manager = getattr(kernel, "comm_manager", None) or comm_pkg.get_comm_manager()
        opener = opener or comm_pkg.create_comm
    with _link.lock:
        if _link.registered:
            return True
        _link.registered = True
    manager.register_target(TARGET, _comm_opened)
    if opener is not None:
        # The frontend may have opened its comm before the magics loaded (and got no answer):
        # open one from this side, carrying the state when a session is open already.
        first = state() if sessions.has_current() else {"event": "hello"}
        comm = opener(target_name=TARGET, data=first)
        _link.add(comm)
    return True


def reset() -> None:
    """Forget every comm and the registration (tests)."""
    with _link.lock:
        _link.comms.clear()
        _link.registered = False
        _link.last = None
    sessions.remove_listener(_on_change)

"""The one session of a process or kernel, and how it changes (branch, workspace).

The CLI opens a session per command; a notebook kernel, the `rat` object and the widgets share
the process's *current* session through `current()`. Listeners hear every switch, so the
widgets, the status bar event and the kernel's environment follow the branch at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session

Listener = Callable[["Session"], None]



class _Slot:
    """The process's current session and its listeners (one instance, `_slot`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.session: Session | None = None
        self.listeners: list[Listener] = []


_slot = _Slot()


def open_session(*, server_user: str | None = None, **overrides: str | None) -> Session:
    """A new session from flags/env (`home`, `workspace`, `profile`, `branch`, `catalog`, `user`)."""
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.settings import Settings

    return Session(Settings.from_env(**overrides), server_user=server_user)


def current() -> Session:
    """The process's session, opened from the environment on first use."""
    with _slot.lock:
        if _slot.session is None or _slot.session.closed:  # closed by its owner: open a fresh one
            _slot.session = open_session()
        return _slot.session


def has_current() -> bool:
    return _slot.session is not None


def use(session: Session) -> Session:
    """Make `session` the process's session (closing the one it replaces) and tell the listeners."""
    with _slot.lock:
        if _slot.session is not None and _slot.session is not session:
            _slot.session.close()
        _slot.session = session
    changed()
    return session


def reset() -> None:
    """Close and forget the current session and its listeners (tests, or a kernel restart)."""
    with _slot.lock:
        if _slot.session is not None:
            _slot.session.close()
        _slot.session = None
        _slot.listeners.clear()


def forget() -> None:
    """Drop the current session without closing it (its owner closes it) and every listener."""
    with _slot.lock:
        _slot.session = None
        _slot.listeners.clear()


def switch_workspace(name: str) -> Session:
    """Open workspace `name` (a folder or a registered name) and make it current."""
    return use(open_session(workspace=name))


def on_change(listener: Listener) -> Listener:
    with _slot.lock:
        _slot.listeners.append(listener)
    return listener


def listening(listener: Listener) -> bool:
    """Whether `listener` hears changes now (reset() and forget() drop every listener)."""
    with _slot.lock:
        return listener in _slot.listeners


def remove_listener(listener: Listener) -> None:
    with _slot.lock:
        if listener in _slot.listeners:
            _slot.listeners.remove(listener)


def changed() -> None:
    """Tell every listener that the current session's branch, workspace or refs changed."""
    session = _slot.session
    if session is None:
        return
    for listener in tuple(_slot.listeners):
        listener(session)


def touched(session: Session) -> None:
    """A verb changed `session`'s branch or refs: tell the listeners if it is the process's session."""
    if _slot.session is session:
        changed()


def status_line() -> str:
    """`workspace|branch` of the current session, or "" when none is open (what the status bar asks a kernel)."""
    session = _slot.session
    return "" if session is None else f"{session.workspace.name}|{session.branch}"


def describe(session: Session | None = None) -> dict[str, Any]:
    """What front ends show about a session: workspace, branch, principal, profile, where things are."""
    s = session or current()
    return {
        "workspace": s.workspace.name,
        "workspace_root": str(s.workspace.root),
        "branch": s.branch,
        "workspace_branch": s.workspace.branch,
        "principal": s.principal,
        "role": s.access.role(),
        "home": str(s.settings.home),
        "catalog": s.settings.catalog,
        "profile": s.resources.name,
    }

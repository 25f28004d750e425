"""The one kernel-side session shared by every `%rat` cell, the widgets and `rat` in Python."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session


class NotebookContext:
    """Holds the session; widgets subscribe to branch/workspace changes."""

    def __init__(self) -> None:
        self._session: Session | None = None
        self._listeners: list[Callable[[Session], None]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            from ratatouille_nb.api import rat
            from ratatouille_nb.engine.session import open_session

            self.set_session(rat._session or open_session())
        assert self._session is not None
        return self._session

    def set_session(self, session: Session) -> None:
        from ratatouille_nb.api import rat

        if self._session is not None and self._session is not session:
            self._session.close()
        self._session = session
        rat.use(session)
        self.changed()

    def switch_branch(self, name: str) -> None:
        self.session.use_branch(name)
        self.changed()

    def switch_workspace(self, name: str) -> None:
        from ratatouille_nb.engine.session import open_session

        self.set_session(open_session(workspace=name))

    def on_change(self, callback: Callable[[Session], None]) -> None:
        self._listeners.append(callback)

    def changed(self) -> None:
        for callback in list(self._listeners):
            callback(self.session)


CONTEXT = NotebookContext()

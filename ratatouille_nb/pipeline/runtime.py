"""`rat` as Python pipeline models see it: ingestion helpers, SQL and a logger on *their* run.

The loader hands this object to every pipeline module as the global `rat` (so the seed's examples
run as written, without importing it); the `rat` of the Python API (api.py) extends it, so
`from ratatouille import rat` inside a model acts on the same run. Outside a run, the helpers
work on a session given by the caller (`bind_session`): one commit per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ratatouille_nb.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.state import RunState

T = TypeVar("T")


class RunRat:
    """The ingestion verbs of interfaces.md: `rat.ls/read_file/is_ingested/mark_ingested/append/sql/log/now`."""

    def _run_state(self) -> tuple[RunState, Any] | None:
        from ratatouille_nb.pipeline.state import CURRENT_RUN

        return CURRENT_RUN.get(None)

    def _outside_run_session(self) -> Session:
        raise PipelineError(
            "this helper works inside a pipeline run",
            hint="in a notebook or script use `from ratatouille_nb import rat`",
        )

    def _ingest(self, verb: str, action: Callable[[RunState, str], T]) -> T:
        """Run a helper in the current pipeline run, or (outside one) as its own commit."""
        current = self._run_state()
        if current is not None:
            state, model = current
            return action(state, model.name)
        from ratatouille_nb.pipeline.state import RunState

        session = self._outside_run_session()
        txn = session.transaction(f"rat.{verb} from a notebook")
        state = RunState(session, txn, project=None)  # type: ignore[arg-type]
        try:
            out = action(state, "notebook")
            txn.commit()
            return out
        except BaseException:
            txn.abort()
            raise

    def ls(self, pattern: str) -> list[str]:
        """Files under the workspace storage root matching a glob (e.g. "landing/sales/*.csv")."""
        from ratatouille_nb.pipeline.ingest import list_files

        return self._ingest("ls", lambda state, _name: list_files(state, pattern))

    def read_file(self, path: str) -> bytes:
        from ratatouille_nb.pipeline.ingest import read_file

        return self._ingest("read_file", lambda state, _name: read_file(state, path))

    def is_ingested(self, path: str) -> bool:
        from ratatouille_nb.pipeline.ingest import is_ingested

        return self._ingest("is_ingested", lambda state, _name: is_ingested(state, path))

    def mark_ingested(self, path: str) -> None:
        from ratatouille_nb.pipeline.ingest import mark_ingested

        self._ingest("mark_ingested", lambda state, name: mark_ingested(state, name, path))

    def append(self, table: str, data: Any) -> int:
        """Append a DataFrame / Arrow table or stream to a table (created if missing)."""
        from ratatouille_nb.pipeline.ingest import append

        return self._ingest("append", lambda state, _name: append(state, table, data))

    def _logger(self) -> logging.Logger:
        current = self._run_state()
        name = current[1].name if current else "session"
        return logging.getLogger(f"ratatouille.{name}")

    @property
    def log(self) -> Any:
        return self._logger()

    def now(self) -> datetime:
        return datetime.now(UTC)


rat = RunRat()

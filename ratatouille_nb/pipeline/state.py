"""What one pipeline run shares between its models, and which run (and model) the current thread is in.

The runner (pipeline/executor.py) sets `CURRENT_RUN` around a Python model; the in-run `rat`
(pipeline/runtime.py) reads it, so `rat.append(...)` lands in that run's transaction.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ratatouille_nb.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from ratatouille_nb.catalog.transaction import TableTransaction
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.loader import Project
    from ratatouille_nb.pipeline.model import Model


@dataclass
class RunState:
    """Everything one run shares between its models (and with Python pipelines via `rat`)."""

    session: Session
    txn: TableTransaction
    project: Project
    full_refresh: bool = False
    variables: dict[str, Any] = field(default_factory=dict)
    bind_lock: threading.Lock = field(default_factory=threading.Lock)

    def storage_path(self, relative: str) -> str:
        """A path under the workspace's storage root; refuses anything escaping it."""
        rel = relative.strip()
        if not rel or rel.startswith(("/", "\\")) or "://" in rel or any(p == ".." for p in rel.replace("\\", "/").split("/")):
            raise PipelineError(f"'{relative}' must be a path relative to the workspace storage root (no '..', not absolute)")
        return self.session.warehouse.location(self.session.workspace.prefix, rel)


CURRENT_RUN: contextvars.ContextVar[tuple[RunState, Model]] = contextvars.ContextVar("rat_current_run")

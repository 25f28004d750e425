"""Run history: every `rat run`/`build` and each model in it, in RAT_HOME/runs.db, queryable as `rat.runs`."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ratatouille_nb.errors import RatError
from ratatouille_nb.sqlite_store import Migration, open_sqlite

MIGRATIONS: list[Migration] = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, workspace TEXT, branch TEXT, command TEXT, selectors TEXT,
        started_at REAL, finished_at REAL, status TEXT, commit_hash TEXT, error TEXT);
    CREATE TABLE IF NOT EXISTS run_models (
        run_id TEXT, model TEXT, target TEXT, status TEXT, operation TEXT, rows_written INTEGER,
        rows_updated INTEGER, seconds REAL, peak_rss_mb REAL, error TEXT, reads TEXT, snapshot_id INTEGER,
        PRIMARY KEY (run_id, model))""",
]
"""runs.db's schema, step by step (sqlite_store.migrate applies the missing steps on open)."""


@dataclass
class ModelRun:
    model: str
    target: str
    status: str = "pending"
    operation: str = ""
    rows_written: int = 0
    rows_updated: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    error: str | None = None
    reads: dict[str, int | None] = field(default_factory=dict)
    snapshot_id: int | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    """The model's own exception (not stored): front ends chain it so --debug shows the user's frames."""


@dataclass
class RunRecord:
    workspace: str
    branch: str
    command: str
    selectors: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    status: str = "running"
    commit_hash: str | None = None
    error: str | None = None
    models: list[ModelRun] = field(default_factory=list)
    history_error: str | None = None
    """Why this record could not be saved to runs.db (the run itself is unaffected), else None."""


class RunHistory:
    """Append-only log of runs (SQLite, WAL) shared by all workspaces of a RAT_HOME."""

    def __init__(self, home: Path) -> None:
        self.path = home / "runs.db"
        self._conn = open_sqlite(self.path, MIGRATIONS)

    def save(self, run: RunRecord) -> None:
        with self._conn.write() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, run.workspace, run.branch, run.command, json.dumps(run.selectors), run.started_at,
                 run.finished_at, run.status, run.commit_hash, run.error),
            )
            for m in run.models:
                cur.execute(
                    "INSERT OR REPLACE INTO run_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run.run_id, m.model, m.target, m.status, m.operation, m.rows_written, m.rows_updated,
                     m.seconds, m.peak_rss_mb, m.error, json.dumps(m.reads), m.snapshot_id),
                )

    def rows(self, table: str) -> tuple[list[str], list[tuple]]:
        cur = self._conn.execute(f"SELECT * FROM {table}")
        return [c[0] for c in cur.description], cur.fetchall()

    def close(self) -> None:
        self._conn.close()


def save_run(home: Path, run: RunRecord) -> str | None:
    """Record a finished run; on failure return why (the caller reports it) instead of raising.

    The run's commit has landed or not by now: a damaged runs.db must neither hide that nor turn
    a landed commit into a reported failure.
    """
    try:
        history = RunHistory(home)
        try:
            history.save(run)
        finally:
            history.close()
    except RatError as exc:
        run.history_error = f"run {run.run_id} was not recorded in the run history: {exc}"
        return run.history_error
    return None

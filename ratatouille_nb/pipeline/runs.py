"""Run history: every `rat run`/`build` and each model in it, in RAT_HOME/runs.db, queryable as `rat.runs`."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, workspace TEXT, branch TEXT, command TEXT, selectors TEXT,
        started_at REAL, finished_at REAL, status TEXT, commit_hash TEXT, error TEXT)""",
    """CREATE TABLE IF NOT EXISTS run_models (
        run_id TEXT, model TEXT, target TEXT, status TEXT, operation TEXT, rows_written INTEGER,
        rows_updated INTEGER, seconds REAL, peak_rss_mb REAL, error TEXT, reads TEXT, snapshot_id INTEGER,
        PRIMARY KEY (run_id, model))""",
)


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


class RunHistory:
    """Append-only log of runs (SQLite, WAL) shared by all workspaces of a RAT_HOME."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / "runs.db"
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        for stmt in _SCHEMA:
            self._conn.execute(stmt)

    def save(self, run: RunRecord) -> None:
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.run_id, run.workspace, run.branch, run.command, json.dumps(run.selectors), run.started_at,
                 run.finished_at, run.status, run.commit_hash, run.error),
            )
            for m in run.models:
                d = asdict(m)
                self._conn.execute(
                    "INSERT OR REPLACE INTO run_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run.run_id, d["model"], d["target"], d["status"], d["operation"], d["rows_written"], d["rows_updated"],
                     d["seconds"], d["peak_rss_mb"], d["error"], json.dumps(d["reads"]), d["snapshot_id"]),
                )

    def rows(self, table: str) -> tuple[list[str], list[tuple]]:
        cur = self._conn.execute(f"SELECT * FROM {table}")
        return [c[0] for c in cur.description], cur.fetchall()

    def close(self) -> None:
        self._conn.close()

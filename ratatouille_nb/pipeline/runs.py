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


# -- reading the history (lineage, widgets): the queries live here, next to the schema ----------

_SUCCESSFUL_MODEL_RUNS = """
SELECT r.run_id, r.workspace, r.branch, r.command, r.started_at, r.finished_at, r.commit_hash,
       m.model, m.target, m.operation, m.rows_written, m.rows_updated, m.reads, m.snapshot_id
FROM run_models m JOIN runs r ON r.run_id = m.run_id
WHERE r.workspace = ? AND r.status = 'success' AND m.status = 'success' AND {where}
ORDER BY r.started_at, r.run_id
"""


def _read_only(home: Path) -> sqlite3.Connection | None:
    path = home / "runs.db"
    if not path.exists():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)


def successful_model_runs(
    home: Path, workspace: str, table: str, *, snapshot_id: int | None = None, models: tuple[str, ...] = ()
) -> list[tuple]:
    """Successful model runs of `workspace` that wrote `table` (at `snapshot_id`, or by one of `models`), oldest first.

    Rows: run_id, workspace, branch, command, started_at, finished_at, commit_hash, model, target,
    operation, rows_written, rows_updated, reads (JSON), snapshot_id.
    """
    conn = _read_only(home)
    if conn is None:
        return []
    try:
        if snapshot_id is not None:
            return conn.execute(_SUCCESSFUL_MODEL_RUNS.format(where="m.target = ? AND m.snapshot_id = ?"), (workspace, table, snapshot_id)).fetchall()
        marks = ",".join("?" for _ in models)
        where = f"(m.target = ? OR m.model IN ({marks}))" if models else "m.target = ?"
        return conn.execute(_SUCCESSFUL_MODEL_RUNS.format(where=where), (workspace, table, *models)).fetchall()
    finally:
        conn.close()


def latest_model_run(home: Path, workspace: str, model: str) -> dict[str, object] | None:
    """The model's most recent run in `workspace`, whatever its outcome."""
    conn = _read_only(home)
    if conn is None:
        return None
    try:
        cur = conn.execute(
            "SELECT r.run_id, r.branch, r.command, r.started_at, r.finished_at, r.commit_hash, m.status, m.operation,"
            " m.rows_written, m.rows_updated, m.seconds, m.error FROM run_models m JOIN runs r ON r.run_id = m.run_id"
            " WHERE r.workspace = ? AND m.model = ? ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1",
            (workspace, model),
        )
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None
    finally:
        conn.close()

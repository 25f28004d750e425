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
# Columns added later (older runs.db files get them on open): the model's definition hash and the
# key of what it left on the branch (a snapshot id, or the hash of a view's SQL) — `state:modified`.
_ADDED_COLUMNS = (("run_models", "fingerprint", "TEXT"), ("run_models", "state_key", "TEXT"))


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
    fingerprint: str | None = None
    state_key: str | None = None


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


def state_key(entry: object | None) -> str | None:
    """What a model left on a branch: its table's snapshot id, or the hash of its view's SQL."""
    import hashlib

    if entry is None:
        return None
    view_sql = getattr(entry, "view_sql", None)
    if view_sql is not None:
        return "view:" + hashlib.sha256(view_sql.encode()).hexdigest()[:20]
    snapshot = getattr(entry, "snapshot_id", None)
    return None if snapshot is None else str(snapshot)


class RunHistory:
    """Append-only log of runs (SQLite, WAL) shared by all workspaces of a RAT_HOME."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / "runs.db"
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        for stmt in _SCHEMA:
            self._conn.execute(stmt)
        for table, column, kind in _ADDED_COLUMNS:
            have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

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
                    "INSERT OR REPLACE INTO run_models (run_id, model, target, status, operation, rows_written, rows_updated, seconds, "
                    "peak_rss_mb, error, reads, snapshot_id, fingerprint, state_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run.run_id, d["model"], d["target"], d["status"], d["operation"], d["rows_written"], d["rows_updated"],
                     d["seconds"], d["peak_rss_mb"], d["error"], json.dumps(d["reads"]), d["snapshot_id"], d["fingerprint"],
                     d["state_key"]),
                )

    def fingerprint(self, workspace: str, target: str, state_key: str | None, model: str | None = None) -> str | None:
        """The definition hash of the successful run that left `state_key` in `target` (newest first).

        `state_key` None asks for the newest successful run of `model` (ephemeral models leave nothing).
        """
        if state_key is None:
            row = self._conn.execute(
                "SELECT m.fingerprint FROM run_models m JOIN runs r USING (run_id) WHERE r.workspace = ? AND m.model = ? "
                "AND m.status = 'success' AND r.status = 'success' ORDER BY r.started_at DESC LIMIT 1",
                (workspace, model),
            ).fetchone()
        else:
            row = self._conn.execute(
                "SELECT m.fingerprint FROM run_models m JOIN runs r USING (run_id) WHERE r.workspace = ? AND m.target = ? "
                "AND m.state_key = ? AND m.status = 'success' AND r.status = 'success' ORDER BY r.started_at DESC LIMIT 1",
                (workspace, target, state_key),
            ).fetchone()
        return None if row is None else row[0]

    def last_runs(self, workspace: str, targets: list[str]) -> dict[str, tuple[float, str, int]]:
        """Target -> (finished_at, status, rows written) of its newest run in the workspace (for `rat docs`)."""
        out: dict[str, tuple[float, str, int]] = {}
        for target in targets:
            row = self._conn.execute(
                "SELECT r.finished_at, m.status, m.rows_written FROM run_models m JOIN runs r USING (run_id) "
                "WHERE r.workspace = ? AND m.target = ? ORDER BY r.started_at DESC LIMIT 1",
                (workspace, target),
            ).fetchone()
            if row is not None:
                out[target] = (float(row[0] or 0), str(row[1]), int(row[2] or 0))
        return out

    def rows(self, table: str) -> tuple[list[str], list[tuple]]:
        cur = self._conn.execute(f"SELECT * FROM {table}")
        return [c[0] for c in cur.description], cur.fetchall()

    def close(self) -> None:
        self._conn.close()

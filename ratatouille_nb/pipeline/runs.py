"""Run history: every `rat run`/`build` and each model in it, in RAT_HOME/runs.db, queryable as `rat.runs`."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ratatouille_nb.errors import RatError
from ratatouille_nb.sqlite_store import Migration, StoreConnection, open_read_only, open_sqlite

MIGRATIONS: list[Migration] = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, workspace TEXT, branch TEXT, command TEXT, selectors TEXT,
        started_at REAL, finished_at REAL, status TEXT, commit_hash TEXT, error TEXT);
    CREATE TABLE IF NOT EXISTS run_models (
        run_id TEXT, model TEXT, target TEXT, status TEXT, operation TEXT, rows_written INTEGER,
        rows_updated INTEGER, seconds REAL, peak_rss_mb REAL, error TEXT, reads TEXT, snapshot_id INTEGER,
        PRIMARY KEY (run_id, model))""",
    # 2: each model's definition hash and the key of what it left on the branch (a snapshot id, or
    # the hash of a view's SQL), for `state:modified` (pipeline/selectors.py).
    """ALTER TABLE run_models ADD COLUMN fingerprint TEXT;
    ALTER TABLE run_models ADD COLUMN state_key TEXT""",
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
    fingerprint: str | None = None
    state_key: str | None = None
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
                    "INSERT OR REPLACE INTO run_models (run_id, model, target, status, operation, rows_written, rows_updated, seconds, "
                    "peak_rss_mb, error, reads, snapshot_id, fingerprint, state_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run.run_id, m.model, m.target, m.status, m.operation, m.rows_written, m.rows_updated,
                     m.seconds, m.peak_rss_mb, m.error, json.dumps(m.reads), m.snapshot_id, m.fingerprint, m.state_key),
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


# -- reading the history (lineage, widgets): the queries live here, next to the schema ----------

_SUCCESSFUL_MODEL_RUNS = """
SELECT r.run_id, r.workspace, r.branch, r.command, r.started_at, r.finished_at, r.commit_hash,
       m.model, m.target, m.operation, m.rows_written, m.rows_updated, m.reads, m.snapshot_id
FROM run_models m JOIN runs r ON r.run_id = m.run_id
WHERE r.workspace = ? AND r.status = 'success' AND m.status = 'success' AND {where}
ORDER BY r.started_at, r.run_id
"""


def _read_only(home: Path) -> StoreConnection | None:
    path = home / "runs.db"
    if not path.exists():
        return None
    return open_read_only(path)  # a damaged runs.db is one line naming it, like every store


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

"""Known workspaces under one RAT_HOME, so two never share a storage prefix or a branch."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ratatouille_nb.errors import WorkspaceError


@dataclass(frozen=True)
class WorkspaceRecord:
    name: str
    path: str
    branch: str
    prefix: str


class WorkspaceRegistry:
    """A small SQLite table in RAT_HOME/registry.db (the product registry lives there too)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(home / "registry.db", timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS workspaces (name TEXT PRIMARY KEY, path TEXT NOT NULL, "
            "branch TEXT NOT NULL, prefix TEXT NOT NULL, created_at REAL NOT NULL)"
        )

    def register(self, record: WorkspaceRecord) -> None:
        """Add or update a workspace; refuses a prefix or branch already owned by another one."""
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for column, value in (("prefix", record.prefix), ("branch", record.branch)):
                row = cur.execute(
                    f"SELECT name FROM workspaces WHERE {column} = ? AND name != ?", (value, record.name)
                ).fetchone()
                if row:
                    raise WorkspaceError(
                        f"workspace '{record.name}' would share its {column} '{value}' with workspace '{row[0]}'",
                        hint=f"give it its own isolation.{'s3_prefix' if column == 'prefix' else 'nessie_branch'}",
                    )
            cur.execute(
                "INSERT INTO workspaces VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "path = excluded.path, branch = excluded.branch, prefix = excluded.prefix",
                (record.name, record.path, record.branch, record.prefix, time.time()),
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def get(self, name: str) -> WorkspaceRecord | None:
        row = self._conn.execute("SELECT name, path, branch, prefix FROM workspaces WHERE name = ?", (name,)).fetchone()
        return WorkspaceRecord(*row) if row else None

    def all(self) -> list[WorkspaceRecord]:
        rows = self._conn.execute("SELECT name, path, branch, prefix FROM workspaces ORDER BY name").fetchall()
        return [WorkspaceRecord(*r) for r in rows]

    def close(self) -> None:
        self._conn.close()

"""RAT_HOME/access.db: registered workspaces, their members and roles, administrators, ref owners.

The only module that reads or writes this file. Workspaces are *registered, not claimed*: a name,
storage prefix and branch belong to the workspace that registered them, owned by the principal
who did. The first principal to open a RAT_HOME's access store becomes its administrator.
Schema changes are numbered migrations applied forward by `PRAGMA user_version`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ratatouille_nb.access.roles import ROLES, Role
from ratatouille_nb.errors import WorkspaceError
from ratatouille_nb.sqlite_store import Migration, StoreConnection, open_sqlite

FILE_NAME = "access.db"


@dataclass(frozen=True)
class WorkspaceRecord:
    """A registered workspace: where its folder is, which branch and storage prefix it owns."""

    name: str
    path: str
    branch: str
    prefix: str
    owner: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Member:
    workspace: str
    principal: str
    role: Role
    granted_by: str | None = None
    granted_at: float = 0.0


def _v1(home: Path, principal: str, cur: sqlite3.Connection) -> None:
    cur.execute(
        "CREATE TABLE workspaces (name TEXT PRIMARY KEY, path TEXT NOT NULL, branch TEXT NOT NULL UNIQUE, "
        "prefix TEXT NOT NULL UNIQUE, owner TEXT, created_at REAL NOT NULL)"
    )
    cur.execute(
        "CREATE TABLE members (workspace TEXT NOT NULL, principal TEXT NOT NULL, "
        "role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'owner')), granted_by TEXT, granted_at REAL NOT NULL, "
        "PRIMARY KEY (workspace, principal))"
    )
    cur.execute("CREATE TABLE admins (principal TEXT PRIMARY KEY, added_by TEXT, added_at REAL NOT NULL)")
    cur.execute("CREATE TABLE ref_owners (ref TEXT PRIMARY KEY, workspace TEXT NOT NULL, created_by TEXT, created_at REAL NOT NULL)")
    now = time.time()
    cur.execute("INSERT INTO admins VALUES (?, ?, ?)", (principal, principal, now))
    # Workspaces registered before access control existed lived in registry.db, without an owner:
    # they are kept, owned by the administrators until one grants an owner.
    legacy = home / "registry.db"
    if legacy.is_file():
        try:
            src = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True, timeout=30)
            try:
                rows = src.execute("SELECT name, path, branch, prefix, created_at FROM workspaces").fetchall()
            finally:
                src.close()
        except sqlite3.Error:
            rows = []
        for name, path, branch, prefix, created in rows:
            cur.execute("INSERT OR IGNORE INTO workspaces VALUES (?, ?, ?, ?, NULL, ?)", (name, path, branch, prefix, created or now))
            cur.execute("INSERT OR IGNORE INTO ref_owners VALUES (?, ?, NULL, ?)", (branch, name, now))


MIGRATIONS: tuple[Callable[[Path, str, sqlite3.Connection], None], ...] = (_v1,)
"""Each step gets RAT_HOME, the principal opening the store and the connection (the first is its administrator)."""


class AccessRegistry:
    """Workspaces, members, administrators and ref owners of one RAT_HOME."""

    def __init__(self, home: Path, principal: str) -> None:
        self.path = home / FILE_NAME
        steps: list[Migration] = [partial(step, home, principal) for step in MIGRATIONS]
        self._conn: StoreConnection = open_sqlite(self.path, steps)

    def _write(self) -> Any:
        return self._conn.write()

    # -- workspaces ---------------------------------------------------------------------------

    def clash(self, record: WorkspaceRecord, cur: sqlite3.Cursor | None = None) -> str | None:
        """Why `record` cannot be registered (its name, prefix or branch is another's), or None."""
        db = cur or self._conn
        for column, what, value in (("name", "name", record.name), ("prefix", "storage prefix", record.prefix), ("branch", "branch", record.branch)):
            row = db.execute(f"SELECT name, owner, path FROM workspaces WHERE {column} = ?", (value,)).fetchone()
            if row is not None:
                return f"the {what} '{value}' is taken by workspace '{row[0]}' (owner {row[1] or 'the administrators'}, folder {row[2]})"
        row = db.execute("SELECT workspace FROM ref_owners WHERE ref = ?", (record.branch,)).fetchone()
        if row is not None and row[0] != record.name:
            return f"the branch '{record.branch}' belongs to workspace '{row[0]}'"
        return None

    def register(self, record: WorkspaceRecord, owner: str) -> WorkspaceRecord:
        """Register a new workspace owned by `owner`; refuses a name, prefix or branch already taken."""
        with self._write() as cur:
            problem = self.clash(record, cur)
            if problem is not None:
                raise WorkspaceError(problem, hint="pick another name, or give the workspace its own isolation settings")
            now = time.time()
            cur.execute(
                "INSERT INTO workspaces VALUES (?, ?, ?, ?, ?, ?)", (record.name, record.path, record.branch, record.prefix, owner, now)
            )
            cur.execute("INSERT OR REPLACE INTO members VALUES (?, ?, 'owner', ?, ?)", (record.name, owner, owner, now))
            cur.execute("INSERT OR REPLACE INTO ref_owners VALUES (?, ?, ?, ?)", (record.branch, record.name, owner, now))
        return WorkspaceRecord(record.name, record.path, record.branch, record.prefix, owner, now)

    def get(self, name: str) -> WorkspaceRecord | None:
        row = self._conn.execute("SELECT name, path, branch, prefix, owner, created_at FROM workspaces WHERE name = ?", (name,)).fetchone()
        return WorkspaceRecord(*row) if row else None

    def by_path(self, path: str) -> WorkspaceRecord | None:
        row = self._conn.execute("SELECT name, path, branch, prefix, owner, created_at FROM workspaces WHERE path = ?", (path,)).fetchone()
        return WorkspaceRecord(*row) if row else None

    def all(self) -> list[WorkspaceRecord]:
        rows = self._conn.execute("SELECT name, path, branch, prefix, owner, created_at FROM workspaces ORDER BY name").fetchall()
        return [WorkspaceRecord(*r) for r in rows]

    def move(self, name: str, path: str) -> None:
        with self._write() as cur:
            cur.execute("UPDATE workspaces SET path = ? WHERE name = ?", (path, name))

    # -- members ------------------------------------------------------------------------------

    def role(self, workspace: str, principal: str) -> Role | None:
        row = self._conn.execute("SELECT role FROM members WHERE workspace = ? AND principal = ?", (workspace, principal)).fetchone()
        return row[0] if row else None

    def members(self, workspace: str) -> list[Member]:
        rows = self._conn.execute(
            "SELECT workspace, principal, role, granted_by, granted_at FROM members WHERE workspace = ? ORDER BY principal", (workspace,)
        ).fetchall()
        return [Member(*r) for r in rows]

    def workspaces_of(self, principal: str) -> dict[str, Role]:
        rows = self._conn.execute("SELECT workspace, role FROM members WHERE principal = ?", (principal,)).fetchall()
        return {r[0]: r[1] for r in rows}

    def set_role(self, workspace: str, principal: str, role: Role, by: str) -> None:
        if role not in ROLES:
            raise WorkspaceError(f"unknown role '{role}'", hint="use viewer, editor or owner")
        with self._write() as cur:
            cur.execute("INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?)", (workspace, principal, role, by, time.time()))
            if role == "owner":
                cur.execute("UPDATE workspaces SET owner = ? WHERE name = ? AND owner IS NULL", (principal, workspace))

    def remove_member(self, workspace: str, principal: str) -> bool:
        """Remove a member; the last owner cannot be removed (a workspace always has one)."""
        with self._write() as cur:
            row = cur.execute("SELECT role FROM members WHERE workspace = ? AND principal = ?", (workspace, principal)).fetchone()
            if row is None:
                return False
            if row[0] == "owner":
                owners = cur.execute("SELECT count(*) FROM members WHERE workspace = ? AND role = 'owner'", (workspace,)).fetchone()[0]
                if owners <= 1:
                    raise WorkspaceError(
                        f"'{principal}' is the last owner of workspace '{workspace}'",
                        hint=f"make someone else owner first (`rat workspace grant {workspace} PRINCIPAL owner`)",
                    )
            cur.execute("DELETE FROM members WHERE workspace = ? AND principal = ?", (workspace, principal))
            owner = cur.execute("SELECT owner FROM workspaces WHERE name = ?", (workspace,)).fetchone()
            if owner and owner[0] == principal:
                nxt = cur.execute("SELECT principal FROM members WHERE workspace = ? AND role = 'owner' ORDER BY granted_at", (workspace,)).fetchone()
                cur.execute("UPDATE workspaces SET owner = ? WHERE name = ?", (nxt[0] if nxt else None, workspace))
        return True

    # -- administrators -----------------------------------------------------------------------

    def admins(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT principal FROM admins ORDER BY principal")]

    def is_admin(self, principal: str) -> bool:
        return self._conn.execute("SELECT 1 FROM admins WHERE principal = ?", (principal,)).fetchone() is not None

    def add_admin(self, principal: str, by: str) -> None:
        with self._write() as cur:
            cur.execute("INSERT OR IGNORE INTO admins VALUES (?, ?, ?)", (principal, by, time.time()))

    def remove_admin(self, principal: str) -> bool:
        with self._write() as cur:
            if cur.execute("SELECT count(*) FROM admins").fetchone()[0] <= 1 and cur.execute(
                "SELECT 1 FROM admins WHERE principal = ?", (principal,)
            ).fetchone():
                raise WorkspaceError(f"'{principal}' is the last administrator", hint="add another one first (`rat admin add PRINCIPAL`)")
            return cur.execute("DELETE FROM admins WHERE principal = ?", (principal,)).rowcount > 0

    # -- ref owners ---------------------------------------------------------------------------

    def ref_owner(self, ref: str) -> str | None:
        row = self._conn.execute("SELECT workspace FROM ref_owners WHERE ref = ?", (ref,)).fetchone()
        return row[0] if row else None

    def ref_owners(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self._conn.execute("SELECT ref, workspace FROM ref_owners")}

    def set_ref_owner(self, ref: str, workspace: str, by: str) -> None:
        with self._write() as cur:
            cur.execute("INSERT OR REPLACE INTO ref_owners VALUES (?, ?, ?, ?)", (ref, workspace, by, time.time()))

    def drop_ref_owner(self, ref: str) -> None:
        with self._write() as cur:
            cur.execute("DELETE FROM ref_owners WHERE ref = ?", (ref,))

    def close(self) -> None:
        self._conn.close()

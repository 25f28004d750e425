"""The embedded version store: Nessie's semantics in one SQLite file (WAL) under RAT_HOME.

Each commit row holds the whole table map (key -> Iceberg metadata location), so creating a
branch is one row insert and reading any ref is one row read. Every ref move is a
compare-and-swap inside a `BEGIN IMMEDIATE` transaction: a killed process leaves either the
old or the new head, never a half-written commit.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from ratatouille_nb.catalog.base import StaleHeadError, VersionStore
from ratatouille_nb.catalog.merge import best_common_ancestors, merge_base_contents, three_way
from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableEntry
from ratatouille_nb.catalog.refs import HASH_RE, parse_ref, validate_ref_name
from ratatouille_nb.errors import (
    CatalogError,
    InvalidNameError,
    MergeConflictError,
    ProtectedBranchError,
    ReferenceExistsError,
    ReferenceNotFoundError,
)
from ratatouille_nb.sqlite_store import Migration, open_sqlite

# Nessie's "no ancestor" hash: the empty root every history starts from.
ROOT_HASH = "2e1cfa82b035c26cbbbdae632cea070514eb8b773f616aaeaf668e2f0be8f10d"

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('branch', 'tag')),
    hash TEXT NOT NULL,
    protected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS commits (
    hash TEXT PRIMARY KEY,
    parents TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at REAL NOT NULL,
    contents TEXT NOT NULL,
    operations TEXT NOT NULL
);
"""


def _add_meta(conn: sqlite3.Connection) -> None:
    """Schema 2: the catalog's birth time, so gc can tell a recreated catalog from the one that wrote the files.

    A catalog that already holds commits predates this version: its birth is unknown, recorded as 0.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    used = conn.execute("SELECT 1 FROM commits WHERE hash != ? LIMIT 1", (ROOT_HASH,)).fetchone()
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (repr(0.0 if used else time.time()),))


MIGRATIONS: list[Migration] = [_SCHEMA_V1, _add_meta]
"""catalog.db's schema, step by step (sqlite_store.migrate applies the missing steps on open)."""


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _commit_hash(parents: tuple[str, ...], contents: str, operations: str, message: str, author: str, at: float) -> str:
    digest = hashlib.sha256()
    for part in (*parents, contents, operations, message, author, repr(at)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _dump_contents(contents: Mapping[str, TableEntry]) -> str:
    return json.dumps({k: contents[k].model_dump(exclude_none=True) for k in sorted(contents)}, separators=(",", ":"))


class LocalVersionStore(VersionStore):
    """SQLite-backed refs and commits; safe for several processes on one machine."""

    def __init__(self, path: Path, default_branch: str = "main") -> None:
        self.path = Path(path)
        self.default_branch = default_branch
        self._conn = open_sqlite(self.path, MIGRATIONS)
        self._commit_cache: dict[str, Commit] = {}
        with self._write() as cur:
            if cur.execute("SELECT 1 FROM commits WHERE hash = ?", (ROOT_HASH,)).fetchone() is None:
                cur.execute(
                    "INSERT INTO commits VALUES (?, '[]', '', 'root', 0, '{}', '{}')",
                    (ROOT_HASH,),
                )
            if cur.execute("SELECT 1 FROM refs WHERE name = ?", (default_branch,)).fetchone() is None:
                cur.execute("INSERT INTO refs VALUES (?, 'branch', ?, 0)", (default_branch, ROOT_HASH))

    # -- plumbing -----------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[sqlite3.Cursor]:
        """One IMMEDIATE transaction: the write lock is taken up front, so CAS checks are exact."""
        return self._conn.write()

    @property
    def created_at(self) -> float:
        """When this catalog.db was created (0.0 when it predates schema 2 and so is unknown)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
        return float(row[0]) if row else 0.0

    def is_empty(self) -> bool:
        """True while no commit but the root exists: nothing was ever written through this catalog."""
        return self._conn.execute("SELECT 1 FROM commits WHERE hash != ? LIMIT 1", (ROOT_HASH,)).fetchone() is None

    def _row_to_commit(self, row: tuple) -> Commit:
        hash_, parents, author, message, created_at, contents, operations = row
        return Commit(
            hash=hash_,
            parents=tuple(json.loads(parents)),
            author=author,
            message=message,
            created_at=created_at,
            contents={k: TableEntry(**v) for k, v in json.loads(contents).items()},
            operations=json.loads(operations),
        )

    def _ref_row(self, cur: sqlite3.Cursor | sqlite3.Connection, name: str) -> Reference | None:
        row = cur.execute("SELECT name, kind, hash, protected FROM refs WHERE name = ?", (name,)).fetchone()
        return Reference(name=row[0], kind=row[1], hash=row[2], protected=bool(row[3])) if row else None

    def _insert_commit(
        self,
        cur: sqlite3.Cursor,
        parents: tuple[str, ...],
        contents: Mapping[str, TableEntry],
        operations: Mapping[str, str],
        message: str,
        author: str,
    ) -> Commit:
        at = time.time()
        contents_json = _dump_contents(contents)
        ops_json = json.dumps(dict(sorted(operations.items())), separators=(",", ":"))
        hash_ = _commit_hash(parents, contents_json, ops_json, message, author, at)
        cur.execute(
            "INSERT INTO commits VALUES (?, ?, ?, ?, ?, ?, ?)",
            (hash_, json.dumps(list(parents)), author, message, at, contents_json, ops_json),
        )
        return Commit(
            hash=hash_,
            parents=parents,
            author=author,
            message=message,
            created_at=at,
            contents=dict(contents),
            operations=dict(operations),
        )

    def _parents(self, hash_: str) -> tuple[str, ...]:
        if hash_ in self._commit_cache:
            return self._commit_cache[hash_].parents
        row = self._conn.execute("SELECT parents FROM commits WHERE hash = ?", (hash_,)).fetchone()
        return tuple(json.loads(row[0])) if row else ()

    # -- references ---------------------------------------------------------------------------

    def list_references(self) -> list[Reference]:
        rows = self._conn.execute("SELECT name, kind, hash, protected FROM refs ORDER BY name").fetchall()
        return [Reference(name=r[0], kind=r[1], hash=r[2], protected=bool(r[3])) for r in rows]

    def get_reference(self, name: str) -> Reference:
        ref = self._ref_row(self._conn, name)
        if ref is None:
            raise ReferenceNotFoundError(
                f"no branch or tag named '{name}'", hint="list them with `rat branch list`"
            )
        return ref

    def create_reference(self, name: str, kind: str, from_ref: str | None = None) -> Reference:
        validate_ref_name(name)
        if kind not in ("branch", "tag"):
            raise CatalogError(f"unknown reference kind '{kind}'")
        start = self.resolve(from_ref or self.default_branch)
        with self._write() as cur:
            if self._ref_row(cur, name) is not None:
                raise ReferenceExistsError(f"a branch or tag named '{name}' already exists")
            cur.execute("INSERT INTO refs VALUES (?, ?, ?, 0)", (name, kind, start.hash))
        return Reference(name=name, kind=kind, hash=start.hash)

    def delete_reference(self, name: str) -> None:
        if name == self.default_branch:
            raise CatalogError(f"cannot delete the default branch '{name}'")
        with self._write() as cur:
            if self._ref_row(cur, name) is None:
                raise ReferenceNotFoundError(f"no branch or tag named '{name}'")
            cur.execute("DELETE FROM refs WHERE name = ?", (name,))

    def set_protected(self, branch: str, protected: bool) -> Reference:
        with self._write() as cur:
            ref = self._ref_row(cur, branch)
            if ref is None or ref.kind != "branch":
                raise ReferenceNotFoundError(f"no branch named '{branch}'")
            cur.execute("UPDATE refs SET protected = ? WHERE name = ?", (int(protected), branch))
        return ref.model_copy(update={"protected": protected})

    # -- commits ------------------------------------------------------------------------------

    def get_commit(self, hash_: str) -> Commit:
        hash_ = hash_.lower()
        if hash_ in self._commit_cache:
            return self._commit_cache[hash_]
        if not HASH_RE.match(hash_):
            raise ReferenceNotFoundError(f"'{hash_}' is not a commit hash")
        rows = self._conn.execute(
            "SELECT * FROM commits WHERE hash >= ? AND hash < ? LIMIT 2", (hash_, hash_ + "g")
        ).fetchall()
        if not rows:
            raise ReferenceNotFoundError(f"no commit with hash '{hash_}'")
        if len(rows) > 1:
            raise ReferenceNotFoundError(f"commit hash prefix '{hash_}' is ambiguous; give more characters")
        commit = self._row_to_commit(rows[0])
        self._commit_cache[commit.hash] = commit
        return commit

    def resolve(self, expr: str) -> Commit:
        spec = parse_ref(expr)
        if spec.name is not None:
            ref = self._ref_row(self._conn, spec.name)
            if ref is not None:
                commit = self.get_commit(ref.hash)
            elif spec.hash is None and spec.at is None and HASH_RE.match(spec.name.lower()):
                commit = self.get_commit(spec.name)
            else:
                raise ReferenceNotFoundError(
                    f"unknown reference '{expr}': no branch, tag or commit named '{spec.name}'",
                    hint="list them with `rat branch list`",
                )
        else:
            commit = self.resolve(self.default_branch)
        if spec.hash is not None:
            commit = self.get_commit(spec.hash)
        elif spec.at is not None:
            limit = spec.at.timestamp()
            while commit.created_at > limit and commit.parents:
                commit = self.get_commit(commit.parents[0])
            if commit.created_at > limit:
                raise ReferenceNotFoundError(f"'{expr}': no commit at or before {spec.at.isoformat()}")
        for _ in range(spec.back):
            if not commit.parents:
                raise ReferenceNotFoundError(f"'{expr}' goes back past the first commit")
            commit = self.get_commit(commit.parents[0])
        return commit

    def log(self, expr: str, limit: int | None = None) -> list[Commit]:
        out: list[Commit] = []
        commit: Commit | None = self.resolve(expr)
        while commit is not None and commit.hash != ROOT_HASH and (limit is None or len(out) < limit):
            out.append(commit)
            commit = self.get_commit(commit.parents[0]) if commit.parents else None
        return out

    def commit(
        self,
        branch: str,
        expected_hash: str,
        changes: Mapping[str, TableEntry | None],
        operations: Mapping[str, str],
        *,
        message: str,
        author: str = "",
    ) -> Commit:
        with self._write() as cur:
            ref = self._ref_row(cur, branch)
            if ref is None or ref.kind != "branch":
                raise ReferenceNotFoundError(f"no branch named '{branch}' (tags cannot be written)")
            if ref.protected:
                raise ProtectedBranchError(
                    f"branch '{branch}' is protected: it only changes by merges",
                    hint=f"write on a branch (`rat branch create dev --from {branch}`) and merge it",
                )
            if ref.hash != expected_hash:
                raise StaleHeadError(branch, expected_hash, ref.hash)
            base = self.get_commit(ref.hash)
            contents = dict(base.contents)
            for key, entry in changes.items():
                if entry is None:
                    contents.pop(key, None)
                else:
                    contents[key] = entry
            new = self._insert_commit(cur, (ref.hash,), contents, operations, message, author or current_user())
            cur.execute("UPDATE refs SET hash = ? WHERE name = ?", (new.hash, branch))
        return new

    # -- merge --------------------------------------------------------------------------------

    def _best_common_ancestors(self, a: str, b: str) -> list[str]:
        return best_common_ancestors(a, b, self._parents)

    def merge_base(self, a: str, b: str) -> Commit | None:
        best = self._best_common_ancestors(a, b)
        return self.get_commit(best[0]) if best else None

    def merge(self, source: str, target: str, *, message: str | None = None, author: str = "") -> MergeResult:
        src = self.resolve(source)
        tgt_ref = self.get_reference(target)
        if tgt_ref.kind != "branch":
            raise ReferenceNotFoundError(f"'{target}' is a tag; merge into a branch")
        if source == target or (src.hash == tgt_ref.hash and parse_ref(source).name == target):
            raise InvalidNameError(f"cannot merge '{source}' into itself")
        with self._write() as cur:
            locked = self._ref_row(cur, target)
            assert locked is not None
            tgt = self.get_commit(locked.hash)
            bases = self._best_common_ancestors(src.hash, tgt.hash)
            if src.hash in bases:
                return MergeResult(source=source, target=target, kind="up-to-date", commit=tgt)
            if tgt.hash in bases:
                cur.execute("UPDATE refs SET hash = ? WHERE name = ?", (src.hash, target))
                tables = sorted(k for k in set(src.contents) | set(tgt.contents) if src.contents.get(k) != tgt.contents.get(k))
                return MergeResult(source=source, target=target, kind="fast-forward", commit=src, tables=tables)
            base_contents = merge_base_contents([self.get_commit(h).contents for h in bases], src.contents, tgt.contents)
            merged, conflicts = three_way(base_contents, src.contents, tgt.contents)
            if conflicts:
                raise MergeConflictError(
                    f"cannot merge '{source}' into '{target}': {len(conflicts)} table(s) changed on both sides: "
                    + ", ".join(conflicts),
                    tables=conflicts,
                    hint=f"nothing was changed on '{target}'; reconcile the tables on one branch and merge again",
                )
            ops = {k: "merge" for k in merged if merged.get(k) != tgt.contents.get(k)}
            ops.update({k: "drop" for k in tgt.contents if k not in merged})
            new = self._insert_commit(
                cur,
                (tgt.hash, src.hash),
                merged,
                ops,
                message or f"merge {source} into {target}",
                author or current_user(),
            )
            cur.execute("UPDATE refs SET hash = ? WHERE name = ?", (new.hash, target))
        return MergeResult(source=source, target=target, kind="merge", commit=new, tables=sorted(ops))

    def all_commits(self) -> Iterator[Commit]:
        """Every commit in the store (for gc), newest first."""
        for row in self._conn.execute("SELECT * FROM commits ORDER BY created_at DESC"):
            yield self._row_to_commit(row)

    def close(self) -> None:
        self._conn.close()

"""Branch, tag and history verbs: the git-like face of the version store.

The defaults every front end shares:
- a new branch or tag starts from the session's current branch;
- `merge` merges into the session's current branch (the workspace branch unless you switched),
  so `rat branch merge dev`, `rat.merge("dev")`, `%rat branch merge dev` and the merge button
  all do the same thing;
- the current branch, the default branch and protected branches cannot be deleted, and a tag is
  never deleted as if it were a branch (or the reverse).
Who may do each is the version store's decision (catalog/authorized.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ratatouille_nb.errors import CatalogError, ReferenceNotFoundError
from ratatouille_nb.verbs import session as current_session

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableDiff
    from ratatouille_nb.engine.session import Session

BUILD_RE = re.compile(r"/build/(\d{8}-\d{6})-[0-9a-f]{6}$")
"""`rat build` runs on `<branch>/build/<YYYYmmdd-HHMMSS>-<id>` (pipeline/build.py)."""


def is_build_branch(name: str) -> bool:
    return BUILD_RE.search(name) is not None


def build_age_seconds(name: str, now: float | None = None) -> float | None:
    """How long ago a build branch was started (from its name), or None for other branches."""
    match = BUILD_RE.search(name)
    if match is None:
        return None
    started = time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
    return (now or time.time()) - started


@dataclass(frozen=True)
class RefInfo:
    """One line of a branch list."""

    name: str
    kind: Literal["branch", "tag"]
    hash: str
    protected: bool
    current: bool
    build: bool
    head_time: float
    tables: int


def list_refs(s: Session, *, builds: bool = True, own_only: bool = False) -> list[RefInfo]:
    """The branches and tags this session may read (its workspace's, and `main`), current first marked.

    `own_only` leaves out refs of other workspaces that an administrator could read too: the
    workspace's own refs and the default branch remain.
    """
    owners = s.access.registry.ref_owners() if own_only else None
    out = []
    for ref in s.store.list_references():
        if not builds and is_build_branch(ref.name):
            continue
        if owners is not None and ref.name != s.store.default_branch and s.access.owner_of(ref.name, owners) != s.workspace.name:
            continue
        head = s.store.get_commit(ref.hash)
        out.append(
            RefInfo(ref.name, ref.kind, ref.hash, ref.protected, ref.name == s.branch, is_build_branch(ref.name), head.created_at, len(head.contents))
        )
    return out


def checkout(s: Session, name: str) -> str:
    """Make `name` (a branch) the branch this session reads and writes."""
    s.use_branch(name)
    current_session.touched(s)
    return name


def create(s: Session, name: str, *, from_ref: str | None = None, kind: Literal["branch", "tag"] = "branch", checkout_: bool = False) -> Reference:
    """Create a branch or tag at `from_ref` (default: the current branch); zero-copy."""
    ref = s.store.create_reference(name, kind, from_ref or s.branch)
    if checkout_ and kind == "branch":
        s.use_branch(name)
    current_session.touched(s)
    return ref


def tag(s: Session, name: str, *, from_ref: str | None = None) -> Reference:
    return create(s, name, from_ref=from_ref, kind="tag")


def delete(s: Session, name: str, *, kind: Literal["branch", "tag"] = "branch") -> None:
    """Delete a branch (not the current, default or a protected one) or a tag."""
    ref = s.store.get_reference(name)
    if ref.kind != kind:
        other = "tag" if ref.kind == "tag" else "branch"
        raise CatalogError(f"'{name}' is a {ref.kind}, not a {kind}", hint=f"delete it with `rat {other} delete {name}`")
    if kind == "branch" and name == s.branch:
        raise CatalogError(f"cannot delete '{name}': it is the current branch", hint="switch to another branch first")
    if name == s.store.default_branch:
        raise CatalogError(f"cannot delete the default branch '{name}'")
    s.store.delete_reference(name)
    current_session.touched(s)


def merge(s: Session, source: str, *, into: str | None = None, message: str | None = None) -> MergeResult:
    """Merge `source` into `into` (default: the current branch): fast-forward, merge commit or a conflict."""
    result = s.store.merge(source, into or s.branch, message=message)
    current_session.touched(s)
    return result


def protect(s: Session, name: str, on: bool = True) -> Reference:
    """Protected branches change only by merges (by an owner) and cannot be deleted."""
    ref = s.store.set_protected(name, on)
    current_session.touched(s)
    return ref


def log(s: Session, ref: str | None = None, *, limit: int | None = 20) -> list[Commit]:
    return s.store.log(ref or s.branch, limit=limit)


def diff(s: Session, from_ref: str, to_ref: str, **options: Any) -> list[TableDiff]:
    """Per table between two refs: rows added, deleted and updated, schema changes (options: `rows`,
    `sample`, `keys`; see catalog/diff.py). Computed row counts run on the session's DuckDB, under its memory cap."""
    from ratatouille_nb.catalog.diff import diff_refs

    if options.get("rows") or options.get("sample"):
        options.setdefault("con", s.con)
    return diff_refs(s.store, s.warehouse, from_ref, to_ref, **options)


def build_parent(name: str) -> str | None:
    """The branch a build branch was started from (`dev/build/…` -> `dev`), None for other refs."""
    match = BUILD_RE.search(name)
    return name[: match.start()] if match is not None else None


def fork_point(s: Session, other: str, base: str | None = None) -> str:
    """The commit where `other` and `base` (default: the current branch) last shared history."""
    a, b = s.store.resolve(other), s.store.resolve(base or s.branch)
    common = s.store.merge_base(a.hash, b.hash)
    return common.hash if common is not None else b.hash


def diff_since_fork(s: Session, other: str, base: str | None = None, **options: Any) -> list[TableDiff]:
    """What merging `other` into `base` would bring: its changes since they forked."""
    return diff(s, fork_point(s, other, base), other, **options)


def prune_builds(s: Session, *, older_than_seconds: float = 0.0, dry_run: bool = False) -> list[str]:
    """Delete the workspace's leftover build branches (kept by failed builds) older than the limit."""
    doomed = []
    for ref in s.store.list_references():
        age = build_age_seconds(ref.name)
        if ref.kind != "branch" or age is None or age < older_than_seconds or ref.name == s.branch:
            continue
        doomed.append(ref.name)
    if not dry_run:
        for name in doomed:
            try:
                s.store.delete_reference(name)
            except ReferenceNotFoundError:
                continue  # pruned concurrently
        current_session.touched(s)
    return doomed

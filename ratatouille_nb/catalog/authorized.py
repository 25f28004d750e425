"""The version store as one principal may use it: every operation asks the access policy first.

Sessions only ever hold this wrapper, so the CLI, the `rat` API, magics, widgets, REST handlers,
pipelines and Dagster all pass the same checks, for the local store and Nessie alike. It records
the principal as the author of commits and merges, and the session's workspace as the owner of
the refs it creates. A refusal raises `AccessDeniedError` before the inner store is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ratatouille_nb.catalog.base import VersionStore
from ratatouille_nb.catalog.refs import HASH_RE, parse_ref
from ratatouille_nb.errors import AccessDeniedError, CatalogError, ReferenceNotFoundError

if TYPE_CHECKING:
    from ratatouille_nb.access.policy import AccessPolicy
    from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableEntry

MAX_REACH_WALK = 200_000
"""Commits visited at most to prove a bare hash belongs to a readable ref's history."""


class AuthorizedStore(VersionStore):
    """Wraps any `VersionStore`; `inner` is for administrators' tools (gc) after their own check."""

    def __init__(self, inner: VersionStore, policy: AccessPolicy) -> None:
        self.inner = inner
        self.policy = policy
        self.default_branch = inner.default_branch

    @property
    def principal(self) -> str:
        return self.policy.principal

    # -- references ---------------------------------------------------------------------------

    def list_references(self) -> list[Reference]:
        refs = self.inner.list_references()
        readable = set(self.policy.readable(r.name for r in refs))
        return [r for r in refs if r.name in readable]

    def get_reference(self, name: str) -> Reference:
        ref = self.inner.get_reference(name)
        self.policy.require_read(name)
        return ref

    def create_reference(self, name: str, kind: str, from_ref: str | None = None) -> Reference:
        if self.policy.workspace is None:
            self.policy.require_admin(f"creating {kind} '{name}' outside a workspace")
        else:
            self.policy.require_role("editor", f"create {kind} '{name}'")
        self.resolve(from_ref or self.default_branch)  # the start point must be readable
        try:
            existing = self.inner.get_reference(name)
        except ReferenceNotFoundError:
            existing = None
        if existing is not None and not self.policy.can_read(name):
            # Do not confirm which names other workspaces use beyond "taken".
            raise AccessDeniedError(f"the name '{name}' is taken by another workspace's {existing.kind}", hint="pick another name")
        ref = self.inner.create_reference(name, kind, from_ref)
        if self.policy.workspace is not None:
            self.policy.registry.set_ref_owner(name, self.policy.workspace, self.principal)
        return ref

    def delete_reference(self, name: str) -> None:
        ref = self.inner.get_reference(name)
        self.policy.require_write(name, f"delete {ref.kind}")
        if ref.protected:
            raise CatalogError(
                f"branch '{name}' is protected: a protected branch cannot be deleted",
                hint=f"an owner can unprotect it first (`rat branch protect {name} --off`)",
            )
        self.inner.delete_reference(name)
        self.policy.registry.drop_ref_owner(name)

    def set_protected(self, branch: str, protected: bool) -> Reference:
        try:
            ref = self.inner.get_reference(branch)
        except ReferenceNotFoundError:
            ref = None
        if ref is None or ref.kind != "branch":
            raise ReferenceNotFoundError(f"no branch named '{branch}'", hint="list them with `rat branch list`")
        self.policy.require_protect(branch)
        return self.inner.set_protected(branch, protected)

    # -- reads --------------------------------------------------------------------------------

    def _check_hash(self, hash_: str, within: list[str] | None = None) -> None:
        """A bare commit hash is readable if it is in the history of a ref the principal may read."""
        target = self.inner.get_commit(hash_).hash
        heads = [self.inner.get_reference(n).hash for n in within] if within is not None else [r.hash for r in self.list_references()]
        seen: set[str] = set()
        stack = list(heads)
        while stack and len(seen) < MAX_REACH_WALK:
            h = stack.pop()
            if h == target:
                return
            if h in seen:
                continue
            seen.add(h)
            stack.extend(self.inner.get_commit(h).parents)
        raise AccessDeniedError(
            f"principal '{self.principal}' may not read commit {hash_[:12]}: it is in no history workspace "
            f"'{self.policy.workspace}' may read",
            hint="name a branch or tag of this workspace (`rat branch list`)",
        )

    def resolve(self, expr: str) -> Commit:
        spec = parse_ref(expr)
        name = spec.name
        if name is None:
            name = self.default_branch
        is_ref = True
        try:
            self.inner.get_reference(name)
        except ReferenceNotFoundError:
            is_ref = False
        if is_ref:
            self.policy.require_read(name)
            commit = self.inner.resolve(expr)
            if spec.hash is not None:
                self._check_hash(commit.hash, within=[name])
            return commit
        if spec.hash is None and spec.at is None and HASH_RE.match(name.lower()):
            commit = self.inner.resolve(expr)
            self._check_hash(self.inner.get_commit(name).hash)
            return commit
        return self.inner.resolve(expr)  # raises the store's own "unknown reference" error

    def get_commit(self, hash_: str) -> Commit:
        return self.inner.get_commit(hash_)

    def log(self, expr: str, limit: int | None = None) -> list[Commit]:
        self.resolve(expr)
        return self.inner.log(expr, limit)

    def merge_base(self, a: str, b: str) -> Commit | None:
        return self.inner.merge_base(a, b)

    # -- writes -------------------------------------------------------------------------------

    def check_commit(self, branch: str) -> None:
        self.policy.require_write(branch, "commit to")

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
        self.policy.require_write(branch, "commit to")
        return self.inner.commit(branch, expected_hash, changes, operations, message=message, author=self.principal)

    def merge(self, source: str, target: str, *, message: str | None = None, author: str = "") -> MergeResult:
        self.resolve(source)
        ref = self.inner.get_reference(target)
        self.policy.require_write(target, "merge into", protected=ref.protected)
        return self.inner.merge(source, target, message=message, author=self.principal)

    def close(self) -> None:
        self.inner.close()

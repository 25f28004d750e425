"""The version-store abstraction: Nessie's model (refs -> commits -> table map) behind one interface.

Implementations only keep references and commits; Iceberg metadata and data files are written by
pyiceberg into the warehouse and are shared, immutable, between branches. The embedded SQLite
store and the Nessie REST client both implement this class, so everything above is backend-blind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableEntry


class StaleHeadError(Exception):
    """Internal: the branch moved since the caller read it (compare-and-swap failed)."""

    def __init__(self, branch: str, expected: str, current: str) -> None:
        super().__init__(f"branch '{branch}' moved from {expected[:12]} to {current[:12]}")
        self.branch = branch
        self.expected = expected
        self.current = current


class VersionStore(ABC):
    """Branches, tags and commits of table maps, with compare-and-swap commits."""

    default_branch: str = "main"

    @abstractmethod
    def list_references(self) -> list[Reference]:
        """All branches and tags, sorted by name."""

    @abstractmethod
    def get_reference(self, name: str) -> Reference:
        """One branch or tag by exact name.

        Raises:
            ReferenceNotFoundError: if no such reference exists.
        """

    @abstractmethod
    def create_reference(self, name: str, kind: str, from_ref: str | None = None) -> Reference:
        """Create a branch or tag at the commit `from_ref` resolves to (default branch if None).

        Raises:
            InvalidNameError, ReferenceExistsError, ReferenceNotFoundError.
        """

    @abstractmethod
    def delete_reference(self, name: str) -> None:
        """Delete a branch or tag (commits stay reachable by hash until gc)."""

    @abstractmethod
    def set_protected(self, branch: str, protected: bool) -> Reference:
        """Protected branches accept merges only, never direct commits."""

    @abstractmethod
    def resolve(self, expr: str) -> Commit:
        """The commit a ref expression names: branch, tag, hash, `name@hash`, `name@time`, `name~N`."""

    @abstractmethod
    def get_commit(self, hash_: str) -> Commit:
        """A commit by full hash or unique prefix."""

    @abstractmethod
    def log(self, expr: str, limit: int | None = None) -> list[Commit]:
        """History from a ref backwards (first parents first, like `git log --first-parent`)."""

    @abstractmethod
    def commit(
        self,
        branch: str,
        expected_hash: str,
        changes: Mapping[str, TableEntry | None],
        operations: Mapping[str, str],
        *,
        message: str,
        author: str,
    ) -> Commit:
        """Atomically apply table changes on top of `expected_hash` and move the branch.

        Raises:
            StaleHeadError: the branch head is no longer `expected_hash` (nothing written).
            ProtectedBranchError: the branch only accepts merges.
        """

    @abstractmethod
    def merge(self, source: str, target: str, *, message: str | None = None, author: str = "") -> MergeResult:
        """Merge `source` into branch `target`: fast-forward, or a merge commit, or a conflict.

        Raises:
            MergeConflictError: tables changed on both sides since the common ancestor.
        """

    @abstractmethod
    def merge_base(self, a: str, b: str) -> Commit | None:
        """The nearest common ancestor of two commits, if any."""

    def check_commit(self, branch: str) -> None:  # noqa: B027 - optional hook
        """Raise if a commit to `branch` would be refused, before any file is written for it."""

    def contents(self, expr: str) -> dict[str, TableEntry]:
        """The table map at a ref expression."""
        return dict(self.resolve(expr).contents)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

"""Multi-table transactions on a branch: stage with pyiceberg, commit once with compare-and-swap.

If the branch moved meanwhile, the commit is rebased when that is safe — the concurrent commits
touched other tables (as Nessie does), or both sides only appended to a table (appends commute:
the append is replayed on the new head) — and fails with a conflict naming the tables otherwise.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from pyiceberg.exceptions import NoSuchTableError

from ratatouille_nb.catalog.base import StaleHeadError, VersionStore
from ratatouille_nb.catalog.merge import changed_keys
from ratatouille_nb.catalog.models import Commit, TableEntry
from ratatouille_nb.catalog.tables import BranchTables
from ratatouille_nb.errors import CommitConflictError, ProtectedBranchError, ReferenceNotFoundError, TableNotFoundError

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from ratatouille_nb.storage.warehouse import Warehouse

Replay = Callable[["Table"], None]

_STRENGTH = {"append": 0, "schema": 1, "delete": 2, "overwrite": 3, "replace": 4, "create": 5, "drop": 6}
MAX_ATTEMPTS = 50


class TableTransaction:
    """Stage changes to several tables of one branch, then `commit()` them as one commit."""

    def __init__(
        self,
        store: VersionStore,
        warehouse: Warehouse,
        prefix: str,
        branch: str,
        *,
        message: str,
        author: str = "",
    ) -> None:
        ref = store.get_reference(branch)
        store.check_commit(branch)  # refuse before any file is written (commit checks again)
        if ref.kind != "branch":
            raise ReferenceNotFoundError(f"'{branch}' is a tag: tags are read-only, write on a branch")
        if ref.protected:  # refuse before any file is written (store.commit checks again, atomically)
            raise ProtectedBranchError(
                f"branch '{branch}' is protected: it only changes by merges",
                hint=f"write on a branch (`rat branch create dev --from {branch}`) and merge it",
            )
        self.store = store
        self.warehouse = warehouse
        self.prefix = prefix
        self.branch = branch
        self.message = message
        self.author = author
        self.base_hash = ref.hash
        self.tables = BranchTables(warehouse, prefix, store.get_commit(ref.hash).contents)
        self.operations: dict[str, list[str]] = {}
        self._replays: dict[str, list[Replay]] = {}
        self._written_dirs: list[str] = []
        self.result: Commit | None = None
        # Models of one pipeline run stage into this transaction from several threads.
        self.lock = threading.RLock()

    # -- staging ------------------------------------------------------------------------------

    def load(self, key: str) -> Table:
        """The table as this transaction sees it (its own staged writes included)."""
        try:
            with self.lock:
                return self.tables.load_table(key)
        except NoSuchTableError:
            raise TableNotFoundError(
                f"table '{key}' does not exist on branch '{self.branch}'", hint="list tables with `rat tables`"
            ) from None

    def exists(self, key: str) -> bool:
        with self.lock:
            return self.tables.entry(key) is not None

    def record(self, key: str, operation: str, replay: Replay | None = None) -> None:
        """Note what happened to a table; an append with a `replay` may be re-applied on a newer head."""
        with self.lock:
            self._record(key, operation, replay)

    def _record(self, key: str, operation: str, replay: Replay | None) -> None:
        self.operations.setdefault(key, []).append(operation)
        if replay is not None:
            self._replays.setdefault(key, []).append(replay)

    def wrote_dir(self, path: str) -> None:
        """A folder of data files this transaction owns: removed again if it does not commit."""
        with self.lock:
            self._written_dirs.append(path)

    def contents(self) -> dict[str, TableEntry]:
        """The table map as this transaction sees it (base plus staged changes)."""
        with self.lock:
            merged = {**self.tables.base, **self.tables.staged}
        return {k: v for k, v in merged.items() if v is not None}

    def summary_operations(self) -> dict[str, str]:
        return {k: max(ops, key=lambda o: _STRENGTH.get(o, 0)) for k, ops in self.operations.items()}

    def _replayable(self, key: str) -> bool:
        ops = self.operations.get(key, [])
        return bool(ops) and all(o == "append" for o in ops) and len(self._replays.get(key, [])) == len(ops)

    # -- commit -------------------------------------------------------------------------------

    def commit(self) -> Commit | None:
        """Land every staged change in one commit; `None` if nothing changed."""
        if not self.tables.staged:
            self.result = None
            return None
        for attempt in range(MAX_ATTEMPTS):
            try:
                self.result = self.store.commit(
                    self.branch,
                    self.base_hash,
                    self.tables.staged,
                    self.summary_operations(),
                    message=self.message,
                    author=self.author,
                )
                return self.result
            except StaleHeadError as stale:
                self._rebase(stale.current)
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
        raise CommitConflictError(
            f"branch '{self.branch}' kept moving; gave up after {MAX_ATTEMPTS} attempts",
            tables=sorted(self.tables.staged),
        )

    def _rebase(self, head_hash: str) -> None:
        base = self.store.get_commit(self.base_hash).contents
        head = self.store.get_commit(head_hash).contents
        overlap = changed_keys(base, head) & set(self.tables.staged)
        unsafe = sorted(k for k in overlap if not self._replayable(k))
        if unsafe:
            raise CommitConflictError(
                f"conflict on branch '{self.branch}': {', '.join(unsafe)} changed in a concurrent commit "
                "since this statement read it; nothing was written",
                tables=unsafe,
                hint="re-run the statement on the new state of the branch",
            )
        rebased = BranchTables(self.warehouse, self.prefix, head)
        for key, entry in self.tables.staged.items():
            if key not in overlap:
                rebased.staged[key] = entry
        for key in sorted(overlap):
            try:
                for replay in self._replays[key]:
                    replay(rebased.load_table(key))
            except NoSuchTableError:
                raise CommitConflictError(
                    f"conflict on branch '{self.branch}': table {key} was dropped by a concurrent commit",
                    tables=[key],
                ) from None
        self.tables = rebased
        self.base_hash = head_hash

    def abort(self) -> None:
        """Forget staged changes and delete data files written for them."""
        for path in self._written_dirs:
            self.warehouse.remove_tree(path)
        self._written_dirs.clear()

    def __enter__(self) -> TableTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                if self.result is None:  # an interrupt after the commit landed must not delete its files
                    self.abort()
                raise
        elif self.result is None:
            self.abort()

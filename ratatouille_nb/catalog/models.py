"""Frozen value objects of the version store: references, commits, table entries, diffs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RefKind = Literal["branch", "tag"]
TableOp = Literal["create", "append", "overwrite", "delete", "replace", "drop", "schema", "merge", "optimize"]

#: How many hex digits of a commit hash every front end shows (CLI, magics, widgets, the JupyterLab extension).
SHORT_HASH_LENGTH = 12


def short_hash(hash_: str | None) -> str:
    """A commit hash as shown to people: its first SHORT_HASH_LENGTH characters ('' for None)."""
    return (hash_ or "")[:SHORT_HASH_LENGTH]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TableEntry(_Frozen):
    """What a commit records for one table: where its Iceberg metadata is, and which snapshot."""

    metadata_location: str
    snapshot_id: int | None = None
    table_uuid: str | None = None
    view_sql: str | None = None

    @property
    def is_view(self) -> bool:
        """A view model: stored as its SQL, evaluated at read time (no data files)."""
        return self.view_sql is not None


class Reference(_Frozen):
    name: str
    kind: RefKind
    hash: str
    protected: bool = False


class Commit(_Frozen):
    """One point in history: parent(s), who/why/when, and the full table map at that point."""

    hash: str
    parents: tuple[str, ...] = ()
    author: str = ""
    message: str = ""
    created_at: float = 0.0
    contents: dict[str, TableEntry] = Field(default_factory=dict)
    operations: dict[str, str] = Field(default_factory=dict)

    @property
    def short(self) -> str:
        return short_hash(self.hash)

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, tz=UTC)


class MergeResult(_Frozen):
    source: str
    target: str
    kind: Literal["fast-forward", "merge", "up-to-date"]
    commit: Commit
    tables: list[str] = Field(default_factory=list)


class ColumnChange(_Frozen):
    name: str
    change: Literal["added", "removed", "retyped"]
    old_type: str | None = None
    new_type: str | None = None


class TableDiff(_Frozen):
    """Per-table difference between two refs (catalog/diff.py says how rows are counted)."""

    table: str
    status: Literal["added", "removed", "changed"]
    rows_added: int = 0
    rows_removed: int = 0
    """Rows deleted (in `from`, not in `to`)."""
    schema_changes: list[ColumnChange] = Field(default_factory=list)
    rows_updated: int = 0
    """Rows whose key is on both sides with other values (computed diffs with a key only)."""
    net_rows: int = 0
    """Live rows of `to` minus live rows of `from` (always exact)."""
    rows_exact: bool = False
    """Whether added/removed/updated are exact row counts (else a file-level estimate)."""
    method: Literal["summary", "key", "rows", "files"] = "files"
    key: list[str] = Field(default_factory=list)
    sample: list[dict[str, Any]] = Field(default_factory=list)
    """Changed rows: {"change": added|deleted|updated, "row": …[, "before": …, "columns": […]]}."""

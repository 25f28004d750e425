"""Every error a user can cause is a `RatError`: one clear message, no traceback needed.

Flat subclasses under one root (the SQLMesh/pyiceberg way) so callers can catch the family
they care about and the CLI can print any of them as a single line.
"""

from __future__ import annotations


class RatError(Exception):
    """Root of all Ratatouille errors; `str(err)` is the full user-facing message."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base


class AccessDeniedError(RatError):
    """A principal may not do this (names the principal, the workspace and the role it needs); nothing changed."""


class ConfigError(RatError):
    """A workspace.yaml, profile or setting is invalid (names file, line and field)."""


class WorkspaceError(RatError):
    """A workspace is missing, duplicated or not initialised."""


class ProfileError(ConfigError):
    """An unknown or malformed resource profile."""


class CatalogError(RatError):
    """A problem with the version store or a table in it."""


class InvalidNameError(CatalogError):
    """A branch, tag or table name breaks the naming rules."""


class ReferenceNotFoundError(CatalogError):
    """A branch, tag, commit hash or timestamp that resolves to nothing."""


class ReferenceExistsError(CatalogError):
    """Creating a branch or tag whose name is taken."""


class TableNotFoundError(CatalogError):
    """A `layer.table` that does not exist on the ref being read."""


class TableExistsError(CatalogError):
    """CREATE TABLE on a name that exists (use CREATE OR REPLACE)."""


class CommitConflictError(CatalogError):
    """A concurrent commit changed the same tables; nothing was written."""

    def __init__(self, message: str, *, tables: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tables = sorted(tables or [])


class MergeConflictError(CommitConflictError):
    """A merge where tables changed on both sides since the common ancestor."""


class ProtectedBranchError(CatalogError):
    """A direct write to a branch that only accepts merges."""


class SqlError(RatError):
    """A statement DuckDB (or our parser) rejected; carries the statement for context."""

    def __init__(self, message: str, *, statement: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.statement = statement

    def __str__(self) -> str:
        text = super().__str__()
        if self.statement:
            stmt = " ".join(self.statement.split())
            if len(stmt) > 200:
                stmt = stmt[:197] + "..."
            text = f"{text}\n  in: {stmt}"
        return text


class UnsupportedStatementError(SqlError):
    """A statement form Ratatouille does not run (e.g. ALTER on an Iceberg table)."""


class StoreError(RatError):
    """A SQLite store under RAT_HOME (catalog.db, registry.db, runs.db) cannot be used; names the file."""

    def __init__(self, message: str, *, path: object = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class StoreCorruptError(StoreError):
    """The file is not a SQLite database, or its pages are damaged."""


class StoreBusyError(StoreError):
    """Another process held the store's write lock longer than the busy timeout."""


class StoreVersionError(StoreError):
    """The store was written by a newer Ratatouille (its schema version is unknown here)."""


class CatalogMissingError(StoreError):
    """catalog.db is gone while RAT_HOME still holds what it described; it is not recreated empty."""


class TableMetadataError(CatalogError):
    """A table's Iceberg metadata file is missing or unreadable (the table is broken, not gone)."""

    def __init__(self, message: str, *, table: str | None = None, location: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.table = table
        self.location = location


class StorageError(RatError):
    """A warehouse or workspace file could not be read or written (permissions, disk full, missing)."""

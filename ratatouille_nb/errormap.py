"""Library exceptions as `RatError`s: one line saying what failed, where, and what to do.

sqlite3, pyiceberg (and the pydantic errors it wraps), DuckDB, YAML and OS errors enter the core
where it touches a store, a table's metadata or a file. `map_error` turns each family into the
`RatError` subclass a user can act on; `mapped_errors` applies it around a block. Anything else
(a bug) is left alone, so it keeps its traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ratatouille_nb.errors import (
    CommitConflictError,
    ConfigError,
    RatError,
    SqlError,
    StorageError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    TableMetadataError,
    TableNotFoundError,
)

DOCTOR_HINT = "`rat doctor` checks every store and table and prints the command that fixes each problem"

_CORRUPT = ("file is not a database", "malformed", "file is encrypted", "not a database", "disk image")
_BUSY = ("database is locked", "database table is locked", "database is busy")


def first_line(exc: BaseException) -> str:
    """The informative first line of a library message (pydantic's and DuckDB's run long)."""
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):  # pyiceberg's ValidationError wraps pydantic's, whose errors() say what broke
        try:
            details = errors()
        except (TypeError, ValueError):
            details = []
        if details:
            return str(details[0].get("msg", "")).strip() or type(exc).__name__
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if lines and lines[0].endswith("validation error for TableMetadataWrapper") and len(lines) > 1:
        return lines[1].split(" [type=")[0]
    return lines[0] if lines else type(exc).__name__


def store_error(exc: sqlite3.Error, path: str | Path | None, *, timeout: float | None = None) -> StoreError:
    """A sqlite3 error on one store file, named, with the way out."""
    text = str(exc)
    low = text.lower()
    where = str(path) if path is not None else "a SQLite store"
    if any(s in low for s in _CORRUPT):
        return StoreCorruptError(f"{where} is damaged: {text}", path=path, hint=DOCTOR_HINT)
    if any(s in low for s in _BUSY):
        waited = f" for {timeout:g}s" if timeout else ""
        return StoreBusyError(
            f"{where} stayed locked by another process{waited}",
            path=path,
            hint="wait for the other `rat` process (a long run or a stuck kernel) to finish, then retry",
        )
    if "unable to open" in low or "readonly" in low or "read-only" in low:
        return StoreError(f"cannot open {where} for writing: {text}", path=path, hint="check that RAT_HOME exists and is writable")
    if "disk is full" in low or "disk i/o" in low:
        return StoreError(f"{where}: {text}", path=path, hint="free disk space under RAT_HOME, then retry")
    return StoreError(f"{where}: {text}", path=path, hint=DOCTOR_HINT)


def metadata_error(
    exc: BaseException,
    location: str,
    table: str | None = None,
    *,
    problem: str | None = None,
    subject: str | None = None,
) -> TableMetadataError:
    """An Iceberg metadata file that cannot be read: the table is broken, and says how to get rid of it.

    `subject` describes a file that is not a branch's table (e.g. "product sales 1.0.0").
    """
    if problem is None:
        if isinstance(exc, FileNotFoundError):
            problem = "the file is missing"
        elif isinstance(exc, PermissionError):
            problem = "permission denied"
        else:
            problem = first_line(exc)
    if subject is None:
        subject = f"table {table}" if table else "a table"
    hint = DOCTOR_HINT
    if table:
        hint = f"restore the file from a backup, or drop the table: `rat sql \"DROP TABLE {table}\"`; {DOCTOR_HINT}"
    return TableMetadataError(
        f"cannot read the metadata of {subject} at {location}: {problem}", table=table, location=location, hint=hint
    )


def os_error(exc: OSError, path: str | Path | None = None) -> StorageError:
    """A file operation that failed, with the file and the reason in words."""
    where = str(path or exc.filename or "a file")
    if isinstance(exc, FileNotFoundError):
        return StorageError(f"{where} does not exist", hint=DOCTOR_HINT)
    if isinstance(exc, PermissionError):
        return StorageError(f"permission denied on {where}", hint="check the owner and mode of the file and its folder")
    if exc.errno == errno.ENOSPC:
        return StorageError(f"no space left on the device holding {where}", hint="free disk space, then retry")
    return StorageError(f"{where}: {exc.strerror or first_line(exc)}")


def _yaml_error(exc: Any, path: str | Path | None) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if path is not None and mark is not None else str(path or "YAML")
    problem = getattr(exc, "problem", None) or first_line(exc)
    return ConfigError(f"{where}: malformed YAML: {problem}", hint="fix the file (YAML indents with spaces, `key: value`)")


def _duckdb_error(exc: Any, statement: str | None, path: str | Path | None, subject: str | None) -> RatError:
    import duckdb

    message = first_line(exc)
    if "iceberg metadata" in message.lower() or (path is not None and str(path) in message):
        location = str(path) if path is not None else message.rsplit(" from ", 1)[-1]
        return metadata_error(exc, location, subject, problem=message.replace(f" from {location}", ""))
    if isinstance(exc, duckdb.OutOfMemoryException):
        return SqlError(message, statement=statement, hint="use a bigger resource profile (--profile medium|large) or a smaller query")
    return SqlError(message, statement=statement)


def _pyiceberg_error(exc: Exception, path: str | Path | None, subject: str | None) -> RatError | None:
    from pyiceberg import exceptions as ice

    if isinstance(exc, ice.NoSuchTableError):
        return TableNotFoundError(first_line(exc), hint="list tables with `rat tables`")
    if isinstance(exc, (ice.CommitFailedException, ice.CommitStateUnknownException)):
        return CommitConflictError(f"commit failed: {first_line(exc)}", hint="nothing was written; re-run the statement")
    if isinstance(exc, ice.ValidationError):
        return metadata_error(exc, str(path or "?"), subject)
    return None


def map_error(
    exc: BaseException, *, path: str | Path | None = None, subject: str | None = None, statement: str | None = None
) -> RatError | None:
    """The `RatError` for a library exception, or None when `exc` is not one we know (a bug: let it raise).

    `path` is the file being read or written, `subject` what it belongs to (a table key), `statement`
    the SQL being run.
    """
    if isinstance(exc, RatError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return store_error(exc, path)
    module = type(exc).__module__.split(".")[0]
    if module in ("duckdb", "_duckdb"):
        return _duckdb_error(exc, statement, path, subject)
    if module == "yaml":
        return _yaml_error(exc, path)
    if module == "pyiceberg" and isinstance(exc, Exception):
        return _pyiceberg_error(exc, path, subject)
    if isinstance(exc, OSError):
        return os_error(exc, path)
    return None


@contextmanager
def mapped_errors(*, path: str | Path | None = None, subject: str | None = None, statement: str | None = None) -> Iterator[None]:
    """Raise the mapped `RatError` (chained to the original, for --debug) for library errors in the block."""
    try:
        yield
    except RatError:
        raise
    except Exception as exc:  # every library family is mapped; anything else re-raises as it was
        mapped = map_error(exc, path=path, subject=subject, statement=statement)
        if mapped is None:
            raise
        raise mapped from exc

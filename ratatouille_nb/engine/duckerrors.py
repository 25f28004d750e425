"""DuckDB exceptions as one readable SqlError (kept light: no pyiceberg import)."""

from __future__ import annotations

import duckdb

from ratatouille_nb.errors import SqlError


def duck_error(exc: duckdb.Error, statement: str) -> SqlError:
    """A DuckDB exception as one readable SqlError line (plus DuckDB's caret line, if any)."""
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    message = lines[0] if lines else type(exc).__name__
    extra = [ln for ln in lines[1:] if ln.strip().startswith(("LINE", "^")) or ln.startswith(" ")]
    if extra:
        message = message + "\n  " + "\n  ".join(e.rstrip() for e in extra[:2])
    return SqlError(message, statement=statement)

"""DuckDB exceptions as one readable SqlError (kept light: no pyiceberg import)."""

from __future__ import annotations

import duckdb

from ratatouille_nb.errors import SqlError


def duck_error(exc: duckdb.Error, statement: str) -> SqlError:
    """A DuckDB exception as one readable SqlError line (plus DuckDB's caret line, if any).

    A sandbox refusal becomes a SandboxError; the session names what was refused (engine/sandbox.py).
    """
    text = str(exc).strip()
    if isinstance(exc, duckdb.PermissionException):
        from ratatouille_nb.engine.errors import SandboxError
        from ratatouille_nb.engine.sandbox import READ_PATHS_HINT

        first = text.split("\n")[0].removeprefix("Permission Error: ")
        return SandboxError(f"refused by the SQL sandbox: {first}", statement=statement, hint=READ_PATHS_HINT)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    message = lines[0] if lines else type(exc).__name__
    extra = [ln for ln in lines[1:] if ln.strip().startswith(("LINE", "^")) or ln.startswith(" ")]
    if extra:
        message = message + "\n  " + "\n  ".join(e.rstrip() for e in extra[:2])
    return SqlError(message, statement=statement)

"""`{{ python_var }}` in `%%rat sql` cells, bound safely: values become SQL literals, never syntax.

Every expression a cell prints goes through Jinja's `finalize`, which quotes it as a literal;
only `ref()` results and values passed through the `sqlsafe` filter are inserted raw.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from typing import Any

from ratatouille_nb.errors import SqlError


class Raw(str):
    """SQL text inserted as it is (table names from ref(), or values marked `| sqlsafe`)."""


def sql_literal(value: Any) -> str:
    """A Python value as a DuckDB literal."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"'{value}'::DOUBLE"
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'" if value.tzinfo is None else f"TIMESTAMPTZ '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        if not items:
            return "(NULL)"
        return "(" + ", ".join(sql_literal(v) for v in items) + ")"
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def render_cell(source: str, namespace: Mapping[str, Any], ref: Callable[[str], str]) -> str:
    """Render a cell: user variables as literals, `ref('x')` and `| sqlsafe` as raw SQL."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        finalize=sql_literal,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["sqlsafe"] = lambda value: Raw(str(value))
    env.globals["ref"] = lambda name: Raw(ref(name))
    try:
        return env.from_string(source).render(**{k: v for k, v in namespace.items() if not k.startswith("_")})
    except jinja2.TemplateSyntaxError as exc:
        raise SqlError(f"template error on line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise SqlError(f"{exc.message} (define it in a Python cell first)") from None

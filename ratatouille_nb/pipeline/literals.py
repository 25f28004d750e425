"""Values from outside a template (`var()`, `env_var()`, notebook variables) as SQL, never as syntax.

A template renders such a value as a unique sentinel; after rendering, DuckDB's own tokenizer
(`duckdb.tokenize`) tells, for each occurrence, where it sits:

    inside a string literal      'from {{ var("start") }}'   -> the value as string content, escaped
    inside a quoted identifier   "{{ var('col') }}"          -> the value as identifier content, escaped
    anywhere else                {{ var("start") }}          -> a complete literal: 'text', 42, DATE '…'

So dbt's habit of quoting `'{{ var("x") }}'` keeps working, and a value can never end the string
or identifier it sits in. Numbers, dates and datetimes render from their exact value (a subclass's
custom `__str__`/`__repr__` is ignored; numpy scalars are unwrapped). `| sqlsafe` opts out: the
value is inserted as SQL text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import secrets
from typing import Any

from ratatouille_nb.errors import SqlError


class Raw(str):
    """SQL text inserted as it is (table names from ref(), values marked `| sqlsafe`)."""


def _plain(value: Any) -> Any:
    """numpy scalars (and anything with a numpy-style `.item()`) as the Python value they hold."""
    module = type(value).__module__
    if module == "numpy" or module.startswith("numpy."):
        kind = getattr(getattr(value, "dtype", None), "kind", "")
        if kind == "M":  # datetime64: keep its full precision as text
            import numpy

            text = str(numpy.datetime_as_string(value))
            return _NumpyDatetime(text)
        return value.item()
    return value


class _NumpyDatetime(str):
    pass


def _number(value: Any) -> str | None:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        text = float.__repr__(value)
        return text if value == value and value not in (float("inf"), float("-inf")) else f"CAST('{text}' AS DOUBLE)"
    if isinstance(value, decimal.Decimal):
        if not decimal.Decimal.is_finite(value):
            return f"CAST('{decimal.Decimal.__str__(value)}' AS DOUBLE)"
        return decimal.Decimal.__format__(value, "f")
    return None


def _temporal(value: Any) -> tuple[str, str] | None:
    """(SQL type, exact text) of dates, times and datetimes."""
    if isinstance(value, _NumpyDatetime):
        return "TIMESTAMP", str.__str__(value).replace("T", " ")
    if isinstance(value, dt.datetime):
        return ("TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"), dt.datetime.isoformat(value, sep=" ")
    if isinstance(value, dt.date):
        return "DATE", dt.date.isoformat(value)
    if isinstance(value, dt.time):
        return "TIME", dt.time.isoformat(value)
    return None


def _text(value: Any) -> str:
    return str.__str__(value) if isinstance(value, str) else str(value)


def quote_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: Any) -> str:
    """A Python value as a DuckDB literal (`Raw` text as it is)."""
    if isinstance(value, Raw):
        return str.__str__(value)
    value = _plain(value)
    if value is None:
        return "NULL"
    number = _number(value)
    if number is not None:
        return number
    temporal = _temporal(value)
    if temporal is not None:
        return f"{temporal[0]} {quote_string(temporal[1])}"
    if isinstance(value, (bytes, bytearray)):
        return f"from_hex('{bytes(value).hex()}')"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        return "(" + ", ".join(sql_literal(v) for v in items) + ")" if items else "(NULL)"
    return quote_string(_text(value))


def string_content(value: Any, quote: str = "'") -> str:
    """A value as the inside of a quoted string (or identifier, with `quote='"'`), escaped."""
    value = _plain(value)
    if isinstance(value, Raw):
        text = str.__str__(value)
    elif value is None or isinstance(value, (list, tuple, set, frozenset, dict, bytes, bytearray)):
        raise SqlError(f"a {type(value).__name__} value cannot go inside a quoted {'identifier' if quote == chr(34) else 'string'}")
    else:
        number = None if isinstance(value, bool) else _number(value)
        temporal = _temporal(value)
        text = number if number is not None else temporal[1] if temporal else _text(value)
    return text.replace(quote, quote * 2)


class Sentinels:
    """Stand-ins for outside values during one render, resolved per occurrence afterwards."""

    def __init__(self) -> None:
        self._nonce = secrets.token_hex(6)
        self._values: list[Any] = []
        self._pattern = re.compile(rf"__rat_value_{self._nonce}_(\d+)__")

    def hold(self, value: Any) -> str:
        self._values.append(value)
        return f"__rat_value_{self._nonce}_{len(self._values) - 1}__"

    def resolve(self, sql: str) -> str:
        """Replace every sentinel in `sql` by the value's literal or escaped content."""
        if not self._values or self._pattern.search(sql) is None:
            return sql
        spans = _quoted_spans(sql)

        def replace(match: re.Match[str]) -> str:
            value = self._values[int(match.group(1))]
            for start, end, quote in spans:
                if start < match.start() < end:
                    return string_content(value, quote)
            return sql_literal(value)

        return self._pattern.sub(replace, sql)


def _quoted_spans(sql: str) -> list[tuple[int, int, str]]:
    """(start, end, quote char) of every string literal and quoted identifier, per DuckDB's lexer."""
    import duckdb

    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        tokens = []
    spans = []
    for start, kind in tokens:
        name = getattr(kind, "name", str(kind))
        if name == "string_const":
            quote_at = sql.find("'", start) if sql[start] != "$" else start
            if quote_at < 0:
                continue
            if sql[quote_at] == "$":
                tag_end = sql.find("$", quote_at + 1)
                tag = sql[quote_at : tag_end + 1]
                end = sql.find(tag, tag_end + 1)
                spans.append((tag_end, len(sql) if end < 0 else end, "'"))
            else:
                spans.append((quote_at, _closing(sql, quote_at, "'"), "'"))
        elif name == "identifier" and sql[start] == '"':
            spans.append((start, _closing(sql, start, '"'), '"'))
    return spans


def _closing(sql: str, start: int, quote: str) -> int:
    """The index of the quote that closes the one at `start` (doubled quotes are content)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i
        i += 1
    return len(sql)


# -- marking values that come from outside a template ---------------------------------------------


class Outside:
    """Marks a value that came from outside the template: it renders as a literal, not as SQL."""


class _OutsideStr(Outside, str):
    pass


class _OutsideInt(Outside, int):
    pass


class _OutsideFloat(Outside, float):
    pass


class _OutsideDecimal(Outside, decimal.Decimal):
    pass


class _OutsideList(Outside, list[Any]):
    pass


class _OutsideTuple(Outside, tuple[Any, ...]):
    pass


class _OutsideDate(Outside, dt.date):
    pass


class _OutsideDatetime(Outside, dt.datetime):
    pass


def outside(value: Any) -> Any:
    """`value`, marked as outside data when its type can carry the mark (bool and None need none)."""
    value = _plain(value)
    if isinstance(value, (Outside, bool, Raw)) or value is None:
        return value
    if isinstance(value, str):
        return _OutsideStr(str.__str__(value))
    if isinstance(value, int):
        return _OutsideInt(int(value))
    if isinstance(value, float):
        return _OutsideFloat(float(value))
    if isinstance(value, decimal.Decimal):
        return _OutsideDecimal(decimal.Decimal.__str__(value))
    if isinstance(value, dt.datetime):
        return _OutsideDatetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo, fold=value.fold
        )
    if isinstance(value, dt.date):
        return _OutsideDate(value.year, value.month, value.day)
    if isinstance(value, list):
        return _OutsideList(value)
    if isinstance(value, tuple):
        return _OutsideTuple(value)
    return value


def sqlsafe(value: Any) -> Raw:
    """`{{ var('col') | sqlsafe }}`: the value as SQL text (the template author vouches for it)."""
    plain = _plain(value)
    if isinstance(plain, str):
        return Raw(str.__str__(plain))
    if isinstance(plain, int) and not isinstance(plain, bool):
        return Raw(int.__repr__(plain))
    return Raw(str(plain))

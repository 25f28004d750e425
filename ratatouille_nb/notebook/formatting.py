"""How a result value is shown: rounded numbers with thousands separators, NULL apart from text,
long text cut short. One function per concern so the HTML grid and the text/plain repr agree.

The DataFrame a cell returns keeps the full values; only the display is rounded. The HTML cell
carries the full value in its `title` attribute (shown on hover).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from dataclasses import dataclass
from typing import Any

#: Text longer than this is cut (with an expander in HTML, an ellipsis in text).
MAX_TEXT = 60
#: DuckDB type names whose values are numbers (right-aligned, rounded, separated).
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)\b",
    re.IGNORECASE,
)
#: Integer columns that are identifiers or years read better without separators (2024, not 2,024).
_PLAIN_INT_NAME = re.compile(r"(^|_)(id|key|year|code|zip|number|no)$", re.IGNORECASE)


@dataclass(frozen=True)
class Cell:
    """One value as displayed: `text` (rounded / cut), `full` (for the tooltip), `kind` for styling."""

    text: str
    full: str
    kind: str  # "null", "num", "text", "bool", "time"
    truncated: bool = False


def is_numeric_type(type_name: str) -> bool:
    """A DuckDB type name for numbers (DECIMAL(18,2), BIGINT, DOUBLE, …)."""
    return bool(_NUMERIC.match(type_name.strip()))


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,234 rows`."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def format_float(value: float) -> str:
    """Rounded for reading: 2 decimals from 0.01 up, 3 significant digits below, separators."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    if abs(value) >= 1e15:
        return f"{value:.4g}"
    if abs(value) < 0.01:
        return f"{value:.3g}"
    return f"{value:,.2f}"


def format_decimal(value: decimal.Decimal) -> str:
    """A DECIMAL with up to 2 places keeps them (money reads as money); more are rounded like a float."""
    if not value.is_finite():
        return str(value)
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places <= 2:
        return f"{value:,}"
    if value == 0:
        return "0"
    if abs(value) < decimal.Decimal("0.01"):
        return f"{value:.3g}"
    return f"{value.quantize(decimal.Decimal('0.01'), rounding=decimal.ROUND_HALF_EVEN):,}"


def format_cell(value: Any, column: str = "", type_name: str = "") -> Cell:
    """The display of one value of column `column` (DuckDB type `type_name`)."""
    if value is None:
        return Cell("NULL", "NULL", "null")
    if isinstance(value, bool):
        text = "true" if value else "false"
        return Cell(text, text, "bool")
    if isinstance(value, int):
        text = str(value) if _PLAIN_INT_NAME.search(column) else f"{value:,}"
        return Cell(text, str(value), "num")
    if isinstance(value, float):
        return Cell(format_float(value), repr(value), "num")
    if isinstance(value, decimal.Decimal):
        return Cell(format_decimal(value), str(value), "num")
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
        return Cell(text, text, "time")
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = "\\x" + raw.hex() if len(raw) <= MAX_TEXT // 2 else "\\x" + raw[: MAX_TEXT // 2].hex() + "…"
        return Cell(text, f"{len(raw):,} bytes", "text", truncated=len(raw) > MAX_TEXT // 2)
    text = str(value)
    if len(text) > MAX_TEXT or "\n" in text:
        first = text.splitlines()[0] if text.splitlines() else ""
        short = first[:MAX_TEXT].rstrip() + "…"
        return Cell(short, text, "text", truncated=True)
    return Cell(text, text, "text")


def format_rows(columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> list[list[Cell]]:
    """Every value of `rows` formatted for its column (name, DuckDB type)."""
    return [[format_cell(v, *(columns[i] if i < len(columns) else ("", ""))) for i, v in enumerate(row)] for row in rows]

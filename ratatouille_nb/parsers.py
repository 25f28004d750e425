"""Parsers for landing files: Excel and CSV with junk header rows and column renames."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

# ISO dates / timestamps as CSV writers (DuckDB, Excel exports, pandas) print them.
_ISO_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")


def _source(data: bytes | str | Path) -> Any:
    return io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data


def _finish(df: Any, columns_map: dict[str, str] | None, keep_unmapped: bool) -> Any:
    df.columns = [str(c).strip() for c in df.columns]
    if columns_map:
        missing = [c for c in columns_map if c not in df.columns]
        if missing:
            from ratatouille_nb.pipeline.errors import PipelineError

            raise PipelineError(f"columns not found in the file: {', '.join(missing)} (found: {', '.join(df.columns)})")
        df = df.rename(columns=columns_map)
        if not keep_unmapped:
            df = df[list(columns_map.values())]
    return df.dropna(how="all")


def _parse_datetimes(df: Any) -> Any:
    """Text columns holding only ISO dates/timestamps become datetimes (as Excel cells already are).

    Otherwise a CSV file and an Excel export of the same data give the column different types,
    and appending both to one table fails on `string` vs `timestamp`.
    """
    import pandas as pd

    for name in df.columns:
        col = df[name]
        if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
            continue
        values = col.dropna()
        if values.empty or not all(isinstance(v, str) and _ISO_DATETIME_RE.match(v.strip()) for v in values):
            continue
        try:
            df[name] = pd.to_datetime(col, format="ISO8601")
        except (ValueError, TypeError):
            continue
    return df


def excel_parser(
    data: bytes | str | Path,
    *,
    skip_rows: int = 0,
    columns_map: dict[str, str] | None = None,
    sheet: str | int = 0,
    keep_unmapped: bool = True,
) -> Any:
    """Read one sheet of an .xlsx into a pandas DataFrame, skipping `skip_rows` junk rows above the header."""
    import pandas as pd

    df = pd.read_excel(_source(data), sheet_name=sheet, skiprows=skip_rows, engine="openpyxl")
    return _finish(df, columns_map, keep_unmapped)


def csv_parser(
    data: bytes | str | Path,
    *,
    skip_rows: int = 0,
    columns_map: dict[str, str] | None = None,
    delimiter: str = ",",
    keep_unmapped: bool = True,
) -> Any:
    """Read a CSV into a pandas DataFrame, skipping junk rows above the header."""
    import pandas as pd

    df = pd.read_csv(_source(data), skiprows=skip_rows, sep=delimiter)
    return _parse_datetimes(_finish(df, columns_map, keep_unmapped))

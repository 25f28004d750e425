"""Parsers for landing files: Excel and CSV with junk header rows and column renames."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


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
    return _finish(df, columns_map, keep_unmapped)

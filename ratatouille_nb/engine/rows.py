"""Reading single rows from DuckDB: a statement that must return one row and says so when it does not."""

from __future__ import annotations

from typing import Any

import duckdb


def one_row(con: duckdb.DuckDBPyConnection | duckdb.DuckDBPyRelation, sql: str | None = None) -> tuple[Any, ...]:
    """The first row of `sql` on `con` (or of the relation itself); aggregates always return one."""
    row = (con.execute(sql) if sql is not None and isinstance(con, duckdb.DuckDBPyConnection) else con).fetchone()
    if row is None:
        raise LookupError(f"expected one row from: {sql or con}")
    return row


def scalar(con: duckdb.DuckDBPyConnection | duckdb.DuckDBPyRelation, sql: str | None = None) -> Any:
    """The first column of `one_row`."""
    return one_row(con, sql)[0]

"""DuckDB types Iceberg can hold: the casts applied before any write so pyiceberg accepts the files."""

from __future__ import annotations

import re

from ratatouille_nb.catalog.typenames import duck_type_of, quote_ident
from ratatouille_nb.errors import SqlError

__all__ = ["duck_type_of", "quote_ident", "storable_projection", "storable_type"]

# DuckDB type (prefix) -> Iceberg-compatible DuckDB type. Iceberg v2 has 32/64-bit ints only,
# microsecond timestamps, no unsigned or 128-bit ints.
_CASTS = {
    "TINYINT": "INTEGER",
    "SMALLINT": "INTEGER",
    "UTINYINT": "INTEGER",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DECIMAL(20,0)",
    "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
    "TIME WITH TIME ZONE": "TIME",
    "JSON": "VARCHAR",
    # DuckDB writes UUID as fixed[16]; Iceberg readers expect the uuid logical type it lacks.
    "UUID": "VARCHAR",
    "BIT": "VARCHAR",
    "BIGNUM": "VARCHAR",
    "VARINT": "VARCHAR",
}
_UNSUPPORTED = ("INTERVAL", "UNION")


def storable_type(duck_type: str) -> str | None:
    """The type to cast a column to before writing, or None if it can be written as it is."""
    upper = duck_type.upper()
    if upper.startswith("ENUM("):
        return "VARCHAR"
    for bad in _UNSUPPORTED:
        if upper.startswith(bad):
            raise SqlError(f"columns of type {duck_type} cannot be stored in an Iceberg table; cast them first")
    if upper in _CASTS:
        return _CASTS[upper]
    if re.search(r"\b(TINYINT|SMALLINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT|TIMESTAMP_NS|ENUM)\b", upper):
        # Nested types holding unsupported leaves: rewrite each leaf.
        return re.sub(
            r"\b(TINYINT|SMALLINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT|TIMESTAMP_NS)\b",
            lambda m: _CASTS[m.group(1)],
            duck_type,
        )
    return None


def storable_projection(columns: list[tuple[str, str]]) -> str:
    """A SELECT list that renames nothing and casts only what Iceberg cannot store."""
    parts = []
    for name, duck_type in columns:
        target = storable_type(duck_type)
        col = quote_ident(name)
        parts.append(f"CAST({col} AS {target}) AS {col}" if target else col)
    return ", ".join(parts)

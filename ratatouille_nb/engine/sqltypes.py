"""DuckDB types Iceberg can hold: the casts applied before any write so pyiceberg accepts the files."""

from __future__ import annotations

import re

from ratatouille_nb.errors import SqlError

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


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


def duck_type_of(iceberg_type: object) -> str:
    """DuckDB type name for an Iceberg type (used to type the columns of an empty table)."""
    from pyiceberg import types as it

    simple = {
        it.BooleanType: "BOOLEAN",
        it.IntegerType: "INTEGER",
        it.LongType: "BIGINT",
        it.FloatType: "FLOAT",
        it.DoubleType: "DOUBLE",
        it.DateType: "DATE",
        it.TimeType: "TIME",
        it.TimestampType: "TIMESTAMP",
        it.TimestamptzType: "TIMESTAMPTZ",
        it.StringType: "VARCHAR",
        it.UUIDType: "UUID",
        it.BinaryType: "BLOB",
    }
    for cls, name in simple.items():
        if isinstance(iceberg_type, cls):
            return name
    if isinstance(iceberg_type, it.DecimalType):
        return f"DECIMAL({iceberg_type.precision},{iceberg_type.scale})"
    if isinstance(iceberg_type, it.FixedType):
        return "BLOB"
    if isinstance(iceberg_type, it.ListType):
        return f"{duck_type_of(iceberg_type.element_type)}[]"
    if isinstance(iceberg_type, it.MapType):
        return f"MAP({duck_type_of(iceberg_type.key_type)}, {duck_type_of(iceberg_type.value_type)})"
    if isinstance(iceberg_type, it.StructType):
        inner = ", ".join(f"{quote_ident(f.name)} {duck_type_of(f.field_type)}" for f in iceberg_type.fields)
        return f"STRUCT({inner})"
    return "VARCHAR"

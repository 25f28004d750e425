"""Iceberg types by the names DuckDB gives them: the one spelling of types every front end shows."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


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

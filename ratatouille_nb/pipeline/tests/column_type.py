"""`type(<col>)`: the column exists with the type declared in `columns[].type` (Iceberg or DuckDB spelling)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import DataTest, TestContext, register

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.testresult import TestResult

_SIMPLE_TYPES = {
    "string": "string", "varchar": "string", "text": "string", "str": "string", "char": "string", "bpchar": "string",
    "int": "int", "integer": "int", "int4": "int", "int32": "int",
    "long": "long", "bigint": "long", "int8": "long", "int64": "long",
    "float": "float", "real": "float", "float4": "float", "float32": "float",
    "double": "double", "float8": "double", "float64": "double", "double precision": "double",
    "date": "date",
    "timestamp": "timestamp", "datetime": "timestamp", "timestamp without time zone": "timestamp", "timestamp_ntz": "timestamp",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz", "timestamp_tz": "timestamptz",
    "boolean": "boolean", "bool": "boolean",
    "time": "time", "binary": "binary", "blob": "binary", "bytes": "binary", "bytea": "binary", "varbinary": "binary",
    "uuid": "uuid",
}
_DECIMAL_RE = re.compile(r"^(?:decimal|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_SIZED_STRING_RE = re.compile(r"^(varchar|char|string|text)\s*\(\s*\d+\s*\)$")


def normalize_type(name: str) -> str:
    """A canonical Iceberg-ish spelling: `VARCHAR`→string, `BIGINT`→long, `NUMERIC(12, 2)`→decimal(12,2), …

    A bare `decimal` stays `decimal` (it matches any precision and scale).
    """
    text = " ".join(name.strip().lower().split())
    if _SIZED_STRING_RE.match(text):
        return "string"
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    match = _DECIMAL_RE.match(text)
    if match:
        if match.group(1) is None:
            return "decimal"
        return f"decimal({int(match.group(1))},{int(match.group(2) or 0)})"
    return text.replace(" ", "")


def types_compatible(declared: str, actual: str) -> bool:
    """Whether a column of type `actual` (Iceberg or DuckDB name) satisfies the `declared` type."""
    want, have = normalize_type(declared), normalize_type(actual)
    if want == "decimal":
        return have.startswith("decimal")
    return want == have


def actual_types(ctx: TestContext) -> dict[str, list[str]]:
    """Column name (lowercase) -> the names its type goes by (Iceberg and DuckDB spellings)."""
    entry = ctx.contents[ctx.target]
    if entry.view_sql is not None:
        ctx.bind(ctx.target)
        cols = ctx.session.con.execute(f"DESCRIBE {ctx.target}").fetchall()
        return {str(c[0]).lower(): [str(c[1])] for c in cols}
    from ratatouille_nb.catalog.tables import read_metadata
    from ratatouille_nb.engine.sqltypes import duck_type_of

    schema = read_metadata(ctx.session.warehouse.file_io(), entry.metadata_location).schema()
    return {f.name.lower(): [str(f.field_type), duck_type_of(f.field_type)] for f in schema.fields}


@register
class ColumnType(DataTest):
    kind = "type"

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        declared = str(spec.args["type"])
        assert spec.column is not None
        actual = actual_types(ctx).get(spec.column.lower())
        if actual is None:
            return ctx.result(spec, "fail", failing=1, message=f"column {spec.column} is missing (declared {declared})")
        if any(types_compatible(declared, a) for a in actual):
            return ctx.result(spec, "pass", message=f"{actual[0]}")
        return ctx.result(spec, "fail", failing=1, message=f"declared {declared}, found {actual[0]}")

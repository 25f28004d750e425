"""`accepted_values`: rows whose (non-NULL) value is not in `values` (dbt's `quote: false` compares unquoted)."""

from __future__ import annotations

from typing import Any

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import RowTest, TestContext, register


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@register
class AcceptedValues(RowTest):
    kind = "accepted_values"
    needs_column = True

    def sql(self, ctx: TestContext, spec: TestSpec) -> str:
        col = quote_ident(spec.column or "")
        values = [v for v in spec.args.get("values") or [] if v is not None]
        if not values:
            return f"SELECT * FROM {ctx.relation(spec)} WHERE {col} IS NOT NULL"
        quote = spec.args.get("quote", True)
        allowed = ", ".join(literal(v) if quote else str(v) for v in values)
        return f"SELECT * FROM {ctx.relation(spec)} WHERE {col} IS NOT NULL AND {col} NOT IN ({allowed})"

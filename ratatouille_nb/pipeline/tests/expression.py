"""`expression`: rows where a SQL condition is not true (`>= 0` alone applies to the column)."""

from __future__ import annotations

import re

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import RowTest, TestContext, register

_STARTS_WITH_OPERATOR = re.compile(r"^(<=|>=|<>|!=|=|<|>|is\b|in\b|between\b|like\b|ilike\b|not\s+(in|like|ilike|between)\b)", re.I)


@register
class Expression(RowTest):
    kind = "expression"
    needs_column = True

    def sql(self, ctx: TestContext, spec: TestSpec) -> str:
        expr = str(spec.args["expression"]).strip()
        if _STARTS_WITH_OPERATOR.match(expr) and spec.column:
            expr = f"{quote_ident(spec.column)} {expr}"
        return f"SELECT * FROM {ctx.relation(spec)} WHERE NOT ({expr})"

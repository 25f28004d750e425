"""`positive`: rows where the column is zero or negative."""

from __future__ import annotations

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import RowTest, TestContext, register


@register
class Positive(RowTest):
    kind = "positive"
    needs_column = True

    def sql(self, ctx: TestContext, spec: TestSpec) -> str:
        return f"SELECT * FROM {ctx.relation(spec)} WHERE {quote_ident(spec.column or '')} <= 0"

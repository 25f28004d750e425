"""`unique`: values that occur more than once (NULLs are not compared)."""

from __future__ import annotations

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import RowTest, TestContext, register


@register
class Unique(RowTest):
    kind = "unique"
    needs_column = True

    def sql(self, ctx: TestContext, spec: TestSpec) -> str:
        col = quote_ident(spec.column or "")
        return (
            f"SELECT {col}, count(*) AS n_records FROM {ctx.relation(spec)} WHERE {col} IS NOT NULL "
            f"GROUP BY {col} HAVING count(*) > 1 ORDER BY n_records DESC, {col}"
        )

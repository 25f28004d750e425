"""`relationships`: rows whose (non-NULL) value has no match in `to`'s `field` (`to` may be `ref('x')`)."""

from __future__ import annotations

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import RowTest, TestContext, register


@register
class Relationships(RowTest):
    kind = "relationships"
    needs_column = True

    def sql(self, ctx: TestContext, spec: TestSpec) -> str:
        col = quote_ident(spec.column or "")
        parent = ctx.table_of(str(spec.args["to"]), spec)
        fld = quote_ident(str(spec.args["field"]))
        return (
            f"SELECT _rat_child.* FROM {ctx.relation(spec)} AS _rat_child WHERE _rat_child.{col} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {parent} AS _rat_parent WHERE _rat_parent.{fld} = _rat_child.{col})"
        )

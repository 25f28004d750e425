"""`materialized: view`: the model's SQL is stored on the branch and evaluated when read."""

from __future__ import annotations

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register


@register
class View(Materialization):
    name = "view"

    def run(self, ctx: ModelContext) -> Outcome:
        existed = ctx.entry() is not None
        sql = ctx.render(incremental=False)
        ctx.cursor.execute(f"DESCRIBE {sql}")  # the SQL must compile before it is stored
        txn = ctx.state.txn
        with txn.lock:
            txn.tables._stage(ctx.target, TableEntry(metadata_location="", view_sql=sql))
        txn.record(ctx.target, "replace" if existed else "create")
        return Outcome("view")

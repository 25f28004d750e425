"""`materialized: table`: rebuild the whole table from the model's SELECT on every run.

Whatever was there before (a view, a table with other columns or another partitioning) is
replaced by what the definition says now.
"""

from __future__ import annotations

from ratatouille_nb.engine.writer import identity_partition_columns
from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register


def rebuild(ctx: ModelContext, sql: str) -> Outcome:
    """Create or replace the model's table from `sql` with the model's partitioning."""
    parts = ctx.partition_by()
    replaced_view = ctx.drop_if_view()
    txn = ctx.state.txn
    if txn.exists(ctx.target) and identity_partition_columns(txn.load(ctx.target)) != parts:
        with txn.lock:  # a new partitioning: a new table (the writer keeps the old spec otherwise)
            txn.tables.drop_table(ctx.target)
        replaced_view = True
    out = ctx.writer.create(ctx.target, sql, replace=True, partition_by=parts, statement=sql)
    if replaced_view and out.operation == "create":
        txn.record(ctx.target, "replace")
        return Outcome("replace", out.rows)
    return Outcome(out.operation, out.rows)


@register
class Table(Materialization):
    name = "table"

    def run(self, ctx: ModelContext) -> Outcome:
        return rebuild(ctx, ctx.render(incremental=False))

"""`materialized: incremental`: the first run (and `--full-refresh`) builds the table, later runs
add the model's new rows with one of dbt's strategies:

    append          add the rows
    merge           upsert on unique_key (one row per key in the batch)
    delete+insert   delete the rows whose unique_key is in the batch, then add the batch
    insert_overwrite replace every partition the batch touches

A definition change the table cannot follow in place (another partitioning) asks for
`--full-refresh`; new columns are added, dropped or narrowed columns ask for it too
(engine/incremental.py). A table that was a view before is simply built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.engine.writer import identity_partition_columns
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register
from ratatouille_nb.pipeline.materializations.batch import spilled
from ratatouille_nb.pipeline.materializations.table import rebuild

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.model import Model

NEEDS_KEY = ("merge", "delete+insert")


@register
class Incremental(Materialization):
    name = "incremental"

    def validate(self, model: Model) -> str | None:
        if model.strategy in NEEDS_KEY and not model.unique_key:
            return f"incremental {model.strategy} needs a unique_key (or use incremental_strategy: append)"
        return None

    def run(self, ctx: ModelContext) -> Outcome:
        entry = ctx.entry()
        incremental = entry is not None and entry.view_sql is None and not ctx.full_refresh and ctx.has_rows()
        if not incremental:
            out = rebuild(ctx, ctx.render(incremental=False))
            return Outcome("full-refresh", out.rows) if entry is not None and entry.view_sql is None else out
        self._check_partitioning(ctx)
        sql = ctx.render(incremental=True)
        writer, model = ctx.writer, ctx.model
        if model.strategy == "append":
            w = writer.append(model.target, sql, statement=sql)
        elif model.strategy == "merge":
            w = writer.merge(model.target, sql, model.unique_key, statement=sql, write_mode=model.write_mode)
        elif model.strategy == "delete+insert":
            return self._delete_insert(ctx, sql)
        else:
            w = writer.overwrite_partitions(model.target, sql, statement=sql)
        return Outcome(w.operation, w.rows, w.updated)

    @staticmethod
    def _check_partitioning(ctx: ModelContext) -> None:
        wanted = ctx.partition_by()
        have = identity_partition_columns(ctx.state.txn.load(ctx.target))
        if have != wanted:
            raise PipelineError(
                f"partition_by changed ({', '.join(have) or 'none'} -> {', '.join(wanted) or 'none'}): "
                "an incremental table cannot be repartitioned in place",
                path=ctx.model.path,
                hint=f"rebuild it once with `rat run {ctx.model.name} --full-refresh`",
            )

    @staticmethod
    def _delete_insert(ctx: ModelContext, sql: str) -> Outcome:
        keys = ", ".join(quote_ident(k) for k in ctx.model.unique_key)
        with spilled(ctx, sql) as batch:
            if batch.rows == 0:
                return Outcome("delete+insert")
            match = f"({keys}) IN (SELECT ({keys}) FROM {batch.relation})" if len(ctx.model.unique_key) > 1 else (
                f"{keys} IN (SELECT {keys} FROM {batch.relation})"
            )
            deleted = ctx.writer.delete(ctx.target, match, statement=sql)
            added = ctx.writer.append(ctx.target, f"SELECT * FROM {batch.relation}", statement=sql)
        return Outcome("delete+insert", added.rows, deleted.rows)

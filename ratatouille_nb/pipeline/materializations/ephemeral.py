"""`materialized: ephemeral`: no table; models that ref() it get its SQL inlined as a CTE.

pipeline/executor.py's `render` turns `ref('x')` of an ephemeral model into `__dbt__cte__x` and
prepends `WITH __dbt__cte__x AS (…)` (dbt's naming), recursively for ephemerals that ref others.
Running it alone checks that its SQL compiles.
"""

from __future__ import annotations

from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register


@register
class Ephemeral(Materialization):
    name = "ephemeral"
    builds_relation = False

    def run(self, ctx: ModelContext) -> Outcome:
        sql = ctx.render(incremental=False)
        ctx.cursor.execute(f"DESCRIBE {sql}")
        return Outcome("ephemeral")

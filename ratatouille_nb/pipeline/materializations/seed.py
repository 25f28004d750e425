"""Seeds (dbt's `seeds/*.csv`): DuckDB reads the CSV from the workspace folder into a table.

Configs: `column_types` ({column: DuckDB type}), `delimiter`; `quote_columns` only changes how
dbt spells DDL and has no effect here. The file never passes through Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register
from ratatouille_nb.pipeline.materializations.table import rebuild

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.model import Model


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def seed_sql(model: Model) -> str:
    """The SELECT that reads a seed file with its configs."""
    options = ["header = true"]
    delimiter = model.config.get("delimiter")
    if delimiter:
        options.append(f"delim = {_text(str(delimiter))}")
    if model.column_types:
        types = ", ".join(f"{_text(k)}: {_text(v)}" for k, v in model.column_types.items())
        options.append(f"types = {{{types}}}")
    return f"SELECT * FROM read_csv({_text(str(model.path))}, {', '.join(options)})"


@register
class Seed(Materialization):
    name = "seed"

    def validate(self, model: Model) -> str | None:
        return None if model.path.suffix.lower() in (".csv", ".tsv") else f"a seed is a .csv file, not {model.path.name}"

    def run(self, ctx: ModelContext) -> Outcome:
        sql = seed_sql(ctx.model)
        ctx.bind(sql)
        return rebuild(ctx, sql)

"""Custom SQL tests (`tests: [{sql: …, expect: N}]` in a model's YAML): a Jinja template with
`{{ this }}`, `ref()` and macros that returns one count (compared to `expect`) or the offending rows."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.templating import RenderContext
from ratatouille_nb.pipeline.tests.base import DataTest, TestContext, register

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.testresult import Status, TestResult


def render_test_sql(ctx: TestContext, spec: TestSpec, source: str) -> str:
    """Render a test's SQL with the project's macros; errors name the test's file and line."""
    from ratatouille_nb.pipeline.templating import Templates

    templates = ctx.project.templates or Templates(ctx.project.root / "macros")
    where = ctx.where_file(spec)
    # A distinct template name per test (Jinja caches templates by name).
    digest = hashlib.sha1(source.encode()).hexdigest()[:10]
    pseudo = Path(f"{where}#{spec.name}@{digest}")

    def resolve_ref(key: str) -> str:
        model = ctx.project.get(key)
        table = model.target if model is not None else key
        if table in ctx.contents:
            return table
        extra = f" (model {model.name} has not been run)" if model is not None else ""
        raise PipelineError(f"ref('{key}') matches no table on '{ctx.ref}'{extra}")

    def resolve_source(key: str) -> str:
        table = ctx.project.source_relation(key)
        if table is None:
            raise PipelineError(f"source('{key}') is not available in tests: test the table the model built")
        return table

    render_ctx = RenderContext(
        model_name=ctx.model.name,
        this=ctx.target,
        resolve_ref=resolve_ref,
        resolve_source=resolve_source,
        execute=True,
        variables=dict(ctx.project.variables),
        packages=frozenset(ctx.project.packages),
    )
    try:
        sql = templates.render(pseudo, source, render_ctx)
    except PipelineError as exc:
        text = str(exc)
        prefix = f"{pseudo}:{exc.line}: " if exc.line else f"{pseudo}: "
        if text.startswith(prefix):
            text = text[len(prefix):]
        text = text.split("\n  hint: ")[0]
        raise PipelineError(f"test '{spec.name}': {text}", path=where, line=spec.line, hint=exc.hint) from None
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise PipelineError(f"test '{spec.name}' renders to an empty statement", path=where, line=spec.line)
    return sql


@register
class CustomSql(DataTest):
    kind = "sql"

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        import duckdb

        from ratatouille_nb.pipeline.testresult import duck_message, rows_of

        expected = 0 if spec.expect is None else int(spec.expect)
        sql = render_test_sql(ctx, spec, spec.sql or "")
        try:
            ctx.bind(sql)
            first = rows_of(ctx.session.con.execute(f"SELECT * FROM (\n{sql}\n) AS _rat_test LIMIT 2"))
        except duckdb.Error as exc:
            return ctx.result(spec, "error", sql=sql, expected=expected, message=duck_message(exc, sql))
        value = next(iter(first[0].values())) if len(first) == 1 and len(first[0]) == 1 else None
        if not isinstance(value, int) or isinstance(value, bool):
            # Not one count: the rows it returns are the offenders (dbt's convention).
            return ctx.offenders(spec, sql, expected)
        status: Status = "pass" if value == expected else ("warn" if spec.severity == "warn" else "fail")
        message = "ok" if value == expected else f"returned {value}, expected {expected}"
        return ctx.result(spec, status, failing=value, expected=expected, sql=sql, message=message)

"""dbt generic tests written as `{% test name(model, column_name, …) %}` (macros/, tests/generic/,
packages such as the shipped dbt_utils): the macro renders the query for the failing rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.macros import MacroCall, MacroNamespace
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.templating import Relation, RenderContext
from ratatouille_nb.pipeline.tests.base import DataTest, TestContext, names_relation, register

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.testresult import TestResult


def find_test_macro(ctx: TestContext, name: str) -> MacroCall | None:
    templates = ctx.project.templates
    if templates is None:
        return None
    package, _, short = name.rpartition(".")
    if package:
        namespace = templates.env.globals.get(package)
        found = namespace.macros.get(f"test_{short}") if isinstance(namespace, MacroNamespace) else None
        return found
    return templates.tests.get(short)


@register
class GenericMacro(DataTest):
    kind = "macro"

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        name = str(spec.args["macro"])
        macro = find_test_macro(ctx, name)
        if macro is None:
            raise PipelineError(f"no generic test named '{name}'", path=ctx.where_file(spec), line=spec.line,
                                hint="define it with {% test " + name.rsplit(".", 1)[-1] + "(model, column_name) %} in macros/ or tests/generic/")
        # dbt renders test arguments: `compare_model: ref('x')` is the table, not the text.
        kwargs = {k: Relation(ctx.table_of(v, spec)) if names_relation(v) else v for k, v in spec.args.items() if k != "macro"}
        if spec.column is not None:
            kwargs["column_name"] = spec.column
        assert ctx.project.templates is not None
        render_ctx = RenderContext(
            model_name=ctx.model.name,
            this=ctx.target,
            resolve_ref=lambda key: ctx.table_of(key, spec),
            resolve_source=lambda key: ctx.project.source_relation(key) or key,
            execute=True,
            variables=dict(ctx.project.variables),
            packages=frozenset(ctx.project.packages),
            describe=lambda sql: [(str(r[0]), str(r[1])) for r in _describe(ctx, sql)],
        )
        sql = ctx.project.templates.call_macro(macro, render_ctx, model=Relation(ctx.relation(spec)), **kwargs)
        return ctx.offenders(spec, sql.strip().rstrip(";"))


def _describe(ctx: TestContext, sql: str) -> list[tuple]:
    ctx.bind(sql)
    return ctx.session.con.execute(f"DESCRIBE {sql}").fetchall()

"""dbt singular tests: a `tests/*.sql` file whose query returns the failing rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import DataTest, TestContext, register
from ratatouille_nb.pipeline.tests.custom_sql import render_test_sql

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.testresult import TestResult


@register
class Singular(DataTest):
    kind = "singular"

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        return ctx.offenders(spec, render_test_sql(ctx, spec, spec.sql or ""))

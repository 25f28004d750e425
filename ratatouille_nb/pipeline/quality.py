"""Data tests (dbt's `dbt test`): column tests, custom SQL tests, declared column types and freshness.

Every test is a query over the model's table as of one ref (a branch head, tag, hash or
`name@time`, or the staged contents of a transaction): it counts the offending rows and fetches a
sample of them. A failing test of severity 'warn' has status 'warn', of severity 'error' status
'fail'; a test whose SQL cannot run has status 'error' and DuckDB's message.

    not_null, unique, positive, accepted_values, relationships, expression   (column tests)
    sql          a Jinja template ({{ this }}, {{ ref() }}, macros) returning one count, compared to `expect`
    type(<col>)  the column exists with the declared type (from `columns[].type`)
    freshness    now - max(column) (or the current snapshot's time) against warn/error hours
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.model import Model, TestSpec
from ratatouille_nb.pipeline.testresult import Status, TestResult, blocking, is_blocking
from ratatouille_nb.pipeline.tests.column_type import normalize_type, types_compatible

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.loader import Project

def run_selected_tests(
    session: Session,
    selectors: list[str] | tuple[str, ...] = (),
    *,
    ref: str | None = None,
    project: Project | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    state: str | None = None,
) -> list[TestResult]:
    """Load the workspace's pipelines, select models (and tests) like `rat run`, and test them."""
    from ratatouille_nb.pipeline.dag import build_dag
    from ratatouille_nb.pipeline.loader import load_project
    from ratatouille_nb.pipeline.selectors import state_oracle

    project = project or load_project(session.workspace.root)
    dag = build_dag(project)
    selection = dag.selection(list(selectors), exclude=list(exclude), state=state_oracle(session, dag, state), root=session.workspace.root)
    return run_tests(session, project, selection.models, ref=ref, only=selection.tests)


def run_tests(
    session: Session,
    project: Project,
    model_names: list[str],
    *,
    ref: str | None = None,
    contents: dict[str, TableEntry] | None = None,
    now: datetime | None = None,
    only: set[tuple[str, str]] | None = None,
) -> list[TestResult]:
    """Run every test of the named models on `ref` (default: the session's branch).

    `contents` overrides the tables seen (e.g. a transaction's staged state); `now` fixes the clock
    used by freshness checks (default: the current UTC time); `only` limits the tests run to these
    (model, test) pairs (tests chosen with test_type:/test_name: selectors).
    """
    label = ref or session.branch
    if contents is None:
        contents = session.contents(ref)
    clock = now or datetime.now(UTC)
    if clock.tzinfo is None:
        clock = clock.replace(tzinfo=UTC)
    results: list[TestResult] = []
    for name in model_names:
        model = project.models.get(name) or project.get(name)
        if model is None:
            raise PipelineError(f"no model named '{name}'", hint="use a pipeline name or the table it builds (layer.table)")
        results += _ModelTests(session, project, model, contents, label, clock, only).run()
    return results


# -- one model ----------------------------------------------------------------------------------


class _ModelTests:
    """Every test of one model, each run by its registered kind (pipeline/tests/)."""

    def __init__(
        self,
        session: Session,
        project: Project,
        model: Model,
        contents: dict[str, TableEntry],
        ref: str,
        now: datetime,
        only: set[tuple[str, str]] | None = None,
    ) -> None:
        from ratatouille_nb.pipeline.tests import TestContext

        self.ctx = TestContext(session, project, model, contents, ref, now)
        self.model = model
        self.only = only

    def _specs(self) -> list[TestSpec]:
        specs = list(self.model.all_tests())
        for col in self.model.columns:
            if col.type:
                specs.append(TestSpec(name=f"type({col.name})", column=col.name, kind="type", args={"type": col.type}))
        fresh = self.model.freshness
        if fresh is not None and (fresh.warn_after_hours is not None or fresh.error_after_hours is not None):
            severity = "error" if fresh.error_after_hours is not None else "warn"
            specs.append(TestSpec(name="freshness", column=fresh.column, kind="freshness", severity=severity))
        return specs

    def run(self) -> list[TestResult]:
        from ratatouille_nb.pipeline.tests import data_test

        specs = [s for s in self._specs() if self.only is None or (self.model.name, s.name) in self.only]
        ctx = self.ctx
        if self.model.materialized == "ephemeral":
            return []  # no table to test: the project load warned about these tests
        if ctx.target not in ctx.contents:
            message = f"table {ctx.target} does not exist on '{ctx.ref}': run the model first (rat run {self.model.name})"
            return [ctx.result(s, "error", message=message) for s in specs]
        out = []
        for spec in specs:
            try:
                out.append(data_test(spec.kind).run(ctx, spec))
            except RatError as exc:
                out.append(ctx.result(spec, "error", message=str(exc)))
        return out


__all__ = ["Status", "TestResult", "blocking", "is_blocking", "normalize_type", "run_selected_tests", "run_tests", "types_compatible"]

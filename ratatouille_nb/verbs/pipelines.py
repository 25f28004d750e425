"""Pipeline verbs: run, test and build the workspace's models.

`run` builds models in DAG order as one atomic commit on a branch (default: the current one);
`test` runs their data tests on a ref; `build` is write-audit-publish: run and test on a build
branch, merge only if nothing blocks. What blocks is one rule (`TestReport.blocking`), the same
for `rat test`, `rat build`, the magics, widgets and Dagster's checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.build import BuildResult
    from ratatouille_nb.pipeline.executor import Event, Runner
    from ratatouille_nb.pipeline.quality import TestResult
    from ratatouille_nb.pipeline.runs import RunRecord


def runner(s: Session) -> Runner:
    """The workspace's models loaded once, ready to select and run."""
    from ratatouille_nb.pipeline.executor import Runner

    return Runner(s)


def plan(
    s: Session,
    selectors: Sequence[str] = (),
    *,
    using: Runner | None = None,
    exclude: Sequence[str] = (),
    state: str | None = None,
) -> list[tuple[str, str]]:
    """(model, table) for each selected model, in the order they would run.

    `selectors` / `exclude` follow dbt's grammar (pipeline/selectors.py); `state` is the ref that
    `state:modified` / `state:new` compare with (default: the workspace branch).
    """
    r = using or runner(s)
    return [(name, r.dag.models[name].target) for name in r.select(list(selectors), exclude=list(exclude), state=state)]


def run(
    s: Session,
    selectors: Sequence[str] = (),
    *,
    full_refresh: bool = False,
    variables: dict[str, Any] | None = None,
    branch: str | None = None,
    on_event: Event | None = None,
    using: Runner | None = None,
    exclude: Sequence[str] = (),
    state: str | None = None,
) -> RunRecord:
    """Build the selected models (default: all) on `branch` (default: the current branch), one commit.

    Then the tables it wrote are compacted if they passed the profile's compaction thresholds.
    """
    r = using or runner(s)
    record = r.run(
        list(selectors), full_refresh=full_refresh, variables=variables, branch=branch or s.branch, on_event=on_event,
        exclude=list(exclude), state=state,
    )
    _compact_written(s, record, branch or s.branch)
    return record


def _compact_written(s: Session, record: RunRecord | None, branch: str) -> None:
    """After a landed run (outside its transaction): compact what it wrote past the thresholds (maintenance/optimize.py)."""
    if record is None or record.status != "success" or record.commit_hash is None:
        return
    from ratatouille_nb.maintenance.optimize import optimize_after_run

    optimize_after_run(s, sorted({m.target for m in record.models if m.status == "success"}), branch)


@dataclass
class TestReport:
    """Test results with the verdict: which block (error-severity failures and errors), counts by status."""

    __test__ = False  # not a pytest class

    ref: str
    results: list[TestResult] = field(default_factory=list)

    @property
    def blocking(self) -> list[TestResult]:
        from ratatouille_nb.pipeline.quality import blocking

        return blocking(self.results)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for r in self.results if r.status == k) for k in ("pass", "warn", "fail", "error")}


def test(
    s: Session,
    selectors: Sequence[str] = (),
    *,
    ref: str | None = None,
    using: Runner | None = None,
    exclude: Sequence[str] = (),
    state: str | None = None,
) -> TestReport:
    """Run the data tests of the selected models (default: all) on `ref` (default: the current branch).

    Test selectors (`test_type:`, `test_name:`) pick tests themselves (pipeline/selectors.py).
    """
    from ratatouille_nb.pipeline.quality import run_selected_tests

    r = using or runner(s)
    results = run_selected_tests(s, list(selectors), ref=ref, project=r.project, exclude=list(exclude), state=state)
    return TestReport(ref=ref or s.branch, results=results)


def build(
    s: Session,
    selectors: Sequence[str] = (),
    *,
    full_refresh: bool = False,
    variables: dict[str, Any] | None = None,
    on_event: Event | None = None,
    using: Runner | None = None,
    exclude: Sequence[str] = (),
    state: str | None = None,
) -> BuildResult:
    """Run + test on `<branch>/build/<id>`; merge into the current branch only if no test blocks.

    `state:` selectors compare with `state` (default: the branch being built).
    """
    from ratatouille_nb.pipeline.build import build as build_

    result = build_(
        s, list(selectors), full_refresh=full_refresh, variables=variables, on_event=on_event, runner=using or runner(s),
        exclude=list(exclude), state=state,
    )
    if result.published:
        _compact_written(s, result.run, result.branch)
    from ratatouille_nb.verbs.session import touched

    touched(s)
    return result

"""`rat build`: write-audit-publish. Run and test on a temporary branch; merge only if tests pass.

The workspace branch never shows a half-built or failing state: readers see the old tables until
the audited run lands as one merge. A failed build keeps its branch for inspection.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ratatouille_nb.pipeline.executor import Event, Runner

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import MergeResult
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.runs import RunRecord


@dataclass
class BuildResult:
    """What a build did: the run, the test results, and whether it was published (merged)."""

    branch: str
    build_branch: str
    run: RunRecord | None = None
    tests: list[Any] = field(default_factory=list)
    merge: MergeResult | None = None
    published: bool = False
    reason: str = ""
    refreshed: list[str] = field(default_factory=list)
    refresh_errors: list[str] = field(default_factory=list)

    @property
    def failed_tests(self) -> list[Any]:
        """The blocking results (pipeline/quality.py's one rule)."""
        from ratatouille_nb.pipeline.quality import blocking

        return blocking(self.tests)


def build(
    session: Session,
    selectors: list[str] | tuple[str, ...] = (),
    *,
    full_refresh: bool = False,
    variables: dict[str, Any] | None = None,
    on_event: Event | None = None,
    runner: Runner | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    state: str | None = None,
) -> BuildResult:
    """Run + test the selection on `<branch>/build/<id>`, then merge it into the branch if all error-level tests pass."""
    from ratatouille_nb.pipeline.quality import run_tests

    runner = runner or Runner(session)
    target = session.branch
    build_branch = f"{target}/build/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    session.store.create_reference(build_branch, "branch", target)
    result = BuildResult(branch=target, build_branch=build_branch)
    state = state or target  # state: selectors compare with the branch being built, not the build branch
    result.run = runner.run(
        selectors, full_refresh=full_refresh, variables=variables, branch=build_branch, command="build", on_event=on_event,
        exclude=exclude, state=state,
    )
    if result.run.status != "success":
        result.reason = f"the run failed ({result.run.error}); nothing was merged into '{target}'"
        return result
    names = [m.model for m in result.run.models]
    result.tests = run_tests(session, runner.project, names, ref=build_branch)
    if result.failed_tests:
        result.reason = (
            f"{len(result.failed_tests)} error-level test(s) failed; nothing was merged into '{target}'. "
            f"Inspect with `rat sql --branch {build_branch} \"…\"`, drop it with `rat branch delete {build_branch}`"
        )
        return result
    result.merge = session.store.merge(build_branch, target, message=f"rat build {' '.join(selectors) or '(all)'} (run {result.run.run_id})")
    session.store.delete_reference(build_branch)
    result.published = True
    _refresh_products(session, result, {m.target for m in result.run.models if m.status == "success"})
    return result


def _refresh_products(session: Session, result: BuildResult, built: set[str]) -> None:
    """Products listed in workspace.yaml get a new pin of their newest version after a good build."""
    result.refreshed, result.refresh_errors = session.products.refresh_declared(built)

"""Live progress for `%rat run|test|build`: a bar, the phase, and a per-model table that update while models run.

The bar is blue while models run, shows the test phase of a build ("testing 5 models…"), turns
green when everything passed and red on any failure. A failed run, test or build raises
`PipelineFailed` (a notebook CellError) after the display is final, so the cell is marked as
errored and Run All stops; its message gives the remedies as notebook commands.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
from IPython.display import display

from ratatouille_nb.catalog.models import short_hash
from ratatouille_nb.notebook.failures import CellError, remedies_for_build_branch
from ratatouille_nb.notebook.formatting import plural
from ratatouille_nb.notebook.widgets.testsummary import summary_line, tests_html

#: Phase -> ipywidgets bar style ('' is the theme's brand colour).
PHASE_STYLES = {"running": "info", "testing": "", "success": "success", "failed": "danger"}


class PipelineFailed(CellError):
    """A `%rat run|test|build` that failed; `result` is what it returned (also in `rat.last_run`)."""

    def __init__(self, message: str, result: Any, *, remedies: list[str] | None = None) -> None:
        super().__init__(message, remedies=remedies)
        self.result = result


class RunProgress(w.VBox):
    """Bar + phase + table of models (status, operation, rows, seconds, peak MB), fed by the runner's events."""

    def __init__(self, title: str, models: list[tuple[str, str]]) -> None:
        self.title = title
        self.bar = w.IntProgress(value=0, min=0, max=max(1, len(models)), description=title, bar_style="info")
        self.phase_label = w.HTML()
        self.table = w.HTML()
        self.summary = w.HTML()
        self.phase = "running"
        self.rows: dict[str, dict[str, Any]] = {name: {"target": target, "status": "pending"} for name, target in models}
        super().__init__([w.HBox([self.bar, self.phase_label]), self.table, self.summary])
        self.add_class("rat-progress")
        self.set_phase("running", f"running {plural(len(models), 'model')}…")
        self._render()

    def set_phase(self, phase: str, text: str) -> None:
        """'running', 'testing', 'success' or 'failed': the bar's colour and the label beside it."""
        self.phase = phase
        self.bar.bar_style = PHASE_STYLES.get(phase, "")
        self.bar.description = f"{self.title}: {phase}" if phase in ("running", "testing") else self.title
        color = {"failed": "var(--jp-error-color1,#d32f2f)", "success": "var(--jp-success-color1,#388e3c)"}.get(phase, "inherit")
        self.phase_label.value = f"<span class='rat-phase rat-phase-{phase}' style='color:{color};margin-left:8px'>{html.escape(text)}</span>"
        self.remove_class("rat-progress-failed")
        if phase == "failed":
            self.add_class("rat-progress-failed")

    def event(self, kind: str, run: Any) -> None:
        row = self.rows.setdefault(run.model, {"target": run.target})
        row.update(status=run.status, operation=run.operation, rows=run.rows_written, updated=run.rows_updated,
                   seconds=run.seconds, peak=run.peak_rss_mb, error=run.error)
        if kind in ("done", "fail", "skip"):
            self.bar.value = min(self.bar.max, self.bar.value + 1)
        if kind == "fail":
            self.set_phase("failed", f"model {run.model} failed")
        elif kind == "start" and self.phase == "running":
            self.set_phase("running", f"running {run.model} ({self.bar.value + 1} of {plural(self.bar.max, 'model')})")
        self._render()

    def testing(self, models: int) -> None:
        """The run is done and the tests start (a build's second phase)."""
        if self.phase != "failed":
            self.set_phase("testing", f"testing {plural(models, 'model')}…")

    def _render(self) -> None:
        colors = {"success": "var(--jp-success-color1,green)", "failed": "var(--jp-error-color1,#b00)", "running": "var(--jp-brand-color1,#06c)"}
        body = ""
        for name, r in self.rows.items():
            status = r.get("status", "pending")
            err = f"<br><small>{html.escape(str(r['error'])[:300])}</small>" if r.get("error") else ""
            body += (
                f"<tr><td>{html.escape(name)}</td><td>{html.escape(r['target'])}</td>"
                f"<td style='color:{colors.get(status, 'inherit')}'>{status}{err}</td><td>{html.escape(r.get('operation') or '')}</td>"
                f"<td>{r.get('rows', 0):,}</td><td>{r.get('updated', 0):,}</td><td>{r.get('seconds', 0):.2f}</td><td>{r.get('peak', 0):.0f}</td></tr>"
            )
        self.table.value = (
            "<table style='line-height:1.5'><thead><tr><th>model</th><th>table</th><th>status</th><th>operation</th><th>rows</th><th>updated</th>"
            f"<th>s</th><th>peak MB</th></tr></thead><tbody>{body}</tbody></table>"
        )


def _failed_models(record: Any) -> list[str]:
    return [m.model for m in getattr(record, "models", []) if m.status == "failed"]


def run_with_progress(session: Any, verb: str, selectors: list[str], *, full_refresh: bool = False) -> Any:
    """Run, test or build with a live display; returns the run record, test report or build result.

    Raises PipelineFailed (after the display is complete) when the run failed, an error-level
    test failed, or the build was not published."""
    from ratatouille_nb.verbs import pipelines

    runner = pipelines.runner(session)
    planned = pipelines.plan(session, selectors, using=runner)
    again = f"%rat {verb} {' '.join(selectors)}".rstrip()
    if verb == "test":
        progress = RunProgress("test", [])
        progress.bar.max = 1
        progress.table.layout.display = "none"
        progress.testing(len(planned))
        display(progress)
        report = pipelines.test(session, selectors, using=runner)
        progress.bar.value = 1
        progress.summary.value = tests_html(report.results, ref=report.ref)
        bad = report.blocking
        if bad:
            progress.set_phase("failed", summary_line(report.results))
            names = ", ".join(f"{r.model}.{r.test}" for r in bad[:5]) + (" …" if len(bad) > 5 else "")
            raise PipelineFailed(f"{plural(len(bad), 'error-level test')} failed on '{report.ref}': {names}", report,
                                 remedies=[f"fix the data or the model, then {again}"])
        progress.set_phase("success", summary_line(report.results))
        return report
    progress = RunProgress(verb, planned)
    display(progress)
    if verb == "run":
        record = pipelines.run(session, selectors, full_refresh=full_refresh, on_event=progress.event, using=runner)
        if record.status != "success":
            progress.set_phase("failed", f"{record.status}: nothing was committed")
            progress.summary.value = f"<b>{html.escape(record.status)}</b> · {html.escape(record.error or '')} (nothing was committed)"
            failed = _failed_models(record)
            raise PipelineFailed(
                f"run failed: {record.error or record.status}; nothing was committed to '{record.branch}'", record,
                remedies=[f"fix {failed[0]}, then {again}" if failed else f"fix the error, then {again}"],
            )
        progress.set_phase("success", f"committed {short_hash(record.commit_hash) or '-'} on {record.branch}")
        progress.summary.value = f"<b>{record.status}</b> · commit <code>{short_hash(record.commit_hash) or '-'}</code>"
        return record

    def on_event(kind: str, run: Any) -> None:
        progress.event(kind, run)
        if progress.bar.value >= progress.bar.max:
            progress.testing(len(progress.rows))

    result = pipelines.build(session, selectors, full_refresh=full_refresh, on_event=on_event, using=runner)
    tests = tests_html(result.tests, ref=result.build_branch) if result.tests else ""
    if result.published:
        progress.set_phase("success", f"published into {result.branch}" + (f" · tests: {summary_line(result.tests)}" if result.tests else ""))
        progress.summary.value = f"<b>published</b>: merged into <code>{html.escape(result.branch)}</code>{tests}"
        return result
    if result.run is not None and result.run.status != "success":
        reason = f"the run failed ({result.run.error}); nothing was merged into '{result.branch}'"
    else:
        reason = f"{plural(len(result.failed_tests), 'error-level test')} failed; nothing was merged into '{result.branch}'"
    progress.set_phase("failed", "not published" + (f" · tests: {summary_line(result.tests)}" if result.tests else ""))
    progress.summary.value = f"<b>not published</b>: {html.escape(reason)}{tests}"
    raise PipelineFailed(f"build not published: {reason}", result, remedies=remedies_for_build_branch(result.build_branch))

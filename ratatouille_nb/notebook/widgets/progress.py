"""Live progress for `%rat run|test|build`: a bar and a per-model table that update while models run."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
from IPython.display import display


class RunProgress(w.VBox):
    """Bar + table of models (status, operation, rows, seconds, peak MB), fed by the runner's events."""

    def __init__(self, title: str, models: list[tuple[str, str]]) -> None:
        self.bar = w.IntProgress(value=0, min=0, max=max(1, len(models)), description=title, bar_style="info")
        self.table = w.HTML()
        self.summary = w.HTML()
        self.rows: dict[str, dict[str, Any]] = {name: {"target": target, "status": "pending"} for name, target in models}
        super().__init__([self.bar, self.table, self.summary])
        self._render()

    def event(self, kind: str, run: Any) -> None:
        row = self.rows.setdefault(run.model, {"target": run.target})
        row.update(status=run.status, operation=run.operation, rows=run.rows_written, updated=run.rows_updated,
                   seconds=run.seconds, peak=run.peak_rss_mb, error=run.error)
        if kind in ("done", "fail", "skip"):
            self.bar.value = min(self.bar.max, self.bar.value + 1)
        if kind == "fail":
            self.bar.bar_style = "danger"
        self._render()

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


def tests_html(results: list[Any]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(t.status)}</td><td>{html.escape(t.model)}</td><td>{html.escape(t.test)}</td>"
        f"<td>{t.failing if t.failing is not None else ''}</td><td>{html.escape(t.message or '')}</td></tr>"
        for t in results
    )
    head = "<tr><th>status</th><th>model</th><th>test</th><th>failing</th><th>message</th></tr>"
    return f"<table style='line-height:1.5'><thead>{head}</thead><tbody>{rows}</tbody></table>"


def run_with_progress(session: Any, verb: str, selectors: list[str], *, full_refresh: bool = False) -> Any:
    """Run, test or build with a live display; returns the run record, test results or build result."""
    from ratatouille_nb.verbs import pipelines

    runner = pipelines.runner(session)
    planned = pipelines.plan(session, selectors, using=runner)
    if verb == "test":
        results = pipelines.test(session, selectors, using=runner).results
        display(w.HTML(tests_html(results)))
        return results
    progress = RunProgress(verb, planned)
    display(progress)
    if verb == "run":
        record = pipelines.run(session, selectors, full_refresh=full_refresh, on_event=progress.event, using=runner)
        progress.summary.value = (
            f"<b>{record.status}</b> · commit <code>{(record.commit_hash or '-')[:12]}</code>"
            + (f" · {html.escape(record.error or '')} (nothing was committed)" if record.status != "success" else "")
        )
        return record
    result = pipelines.build(session, selectors, full_refresh=full_refresh, on_event=progress.event, using=runner)
    progress.summary.value = (
        (f"<b>published</b>: merged into <code>{html.escape(result.branch)}</code>"
         if result.published else f"<b>not published</b>: {html.escape(result.reason)}")
        + tests_html(result.tests)
    )
    return result

"""Data-test results in a notebook: a summary line first ("1 failed, 25 passed, 0 warned"), then the
failures in colour with sample failing rows, then warnings, then the passes (folded).

    TestSummary(results)          # displays as HTML in Jupyter, as text in a terminal
    summary_line(results)         # '1 failed, 25 passed, 0 warned'
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ratatouille_nb.notebook.formatting import format_cell, plural

#: Order of the sections: what needs attention first.
ORDER = {"error": 0, "fail": 1, "warn": 2, "pass": 3}
#: Sample rows shown per failing test.
SAMPLE_ROWS = 5

_STYLE = (
    "<style>.rat-tests{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px}"
    ".rat-tests .rat-tests-summary{font-size:13px;margin:2px 0 6px}"
    ".rat-tests .rat-tests-summary b{font-weight:600}"
    ".rat-tests .rat-st{display:inline-block;min-width:3.2em;padding:0 6px;border-radius:8px;text-align:center;"
    "font-weight:600;font-size:11px;color:#fff}"
    ".rat-tests .rat-st-fail,.rat-tests .rat-st-error{background:var(--jp-error-color1,#d32f2f)}"
    ".rat-tests .rat-st-warn{background:var(--jp-warn-color1,#f57c00)}"
    ".rat-tests .rat-st-pass{background:var(--jp-success-color1,#388e3c)}"
    ".rat-tests .rat-c-fail,.rat-tests .rat-c-error{color:var(--jp-error-color1,#d32f2f)}"
    ".rat-tests .rat-c-warn{color:var(--jp-warn-color1,#f57c00)}"
    ".rat-tests .rat-c-pass{color:var(--jp-success-color1,#388e3c)}"
    ".rat-tests table{border-collapse:collapse;margin:2px 0}"
    ".rat-tests th,.rat-tests td{padding:2px 8px;text-align:left;vertical-align:top;"
    "border-bottom:1px solid var(--jp-border-color2,#ddd)}"
    ".rat-tests tr.rat-bad>td{background:rgba(211,47,47,.12)}"
    ".rat-tests .rat-sample{margin:2px 0 6px 1em}.rat-tests .rat-sample td{font-family:var(--jp-code-font-family,monospace)}"
    ".rat-tests .rat-sample td.rat-num{text-align:right}.rat-tests .rat-sample td.rat-null{color:var(--jp-ui-font-color3,#999);font-style:italic}"
    ".rat-tests .rat-msg{white-space:pre-wrap;font-family:var(--jp-code-font-family,monospace)}"
    ".rat-tests details summary{cursor:pointer;color:var(--jp-ui-font-color2,#666)}</style>"
)


def counts(results: Sequence[Any]) -> dict[str, int]:
    return {k: sum(1 for r in results if r.status == k) for k in ("fail", "error", "pass", "warn")}


def summary_line(results: Sequence[Any]) -> str:
    """'1 failed, 25 passed, 0 warned' (', 2 errored' when tests could not run)."""
    c = counts(results)
    line = f"{c['fail']} failed, {c['pass']} passed, {c['warn']} warned"
    if c["error"]:
        line += f", {c['error']} errored"
    return line


def ordered(results: Sequence[Any]) -> list[Any]:
    """Errors and failures first, then warnings, then passes (each by model, test)."""
    return sorted(results, key=lambda r: (ORDER.get(r.status, 9), r.model, r.test))


def _detail(r: Any) -> str:
    if r.status == "pass":
        return ""
    if r.status == "error":
        return r.message or "the test could not run"
    if getattr(r, "kind", "") == "sql" and getattr(r, "expected", 0):
        return f"{r.failing:,} (expected {r.expected:,})"
    return f"{plural(r.failing, 'failing row')}" + (f": {r.message}" if r.message else "")


def _sample_html(r: Any) -> str:
    sample = list(r.sample or [])[:SAMPLE_ROWS]
    if not sample or r.status == "pass":
        return ""
    columns = list(sample[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = ""
    for row in sample:
        cells = [format_cell(row.get(c), str(c)) for c in columns]
        body += "<tr>" + "".join(f"<td class='rat-{c.kind}' title=\"{html.escape(c.full)}\">{html.escape(c.text)}</td>" for c in cells) + "</tr>"
    more = f"<div class='rat-c-{r.status}'>… {r.failing - len(sample):,} more</div>" if r.failing > len(sample) else ""
    return f"<div class='rat-sample'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}</div>"


def _row_html(r: Any) -> str:
    bad = r.status in ("fail", "error")
    sample = _sample_html(r)
    detail = html.escape(_detail(r))
    severity = "" if r.severity == "error" else " <small>(severity warn)</small>"
    return (
        f"<tr class='{'rat-bad' if bad else ''}'><td><span class='rat-st rat-st-{r.status}'>{r.status.upper()}</span></td>"
        f"<td>{html.escape(r.model)}</td><td>{html.escape(r.test)}{severity}</td>"
        f"<td class='rat-msg rat-c-{r.status}'>{detail}{sample}</td></tr>"
    )


def tests_html(results: Sequence[Any], *, ref: str | None = None) -> str:
    """The whole summary as HTML: the line, failures and warnings as rows, passes folded."""
    rows = ordered(results)
    c = counts(rows)
    worst = "fail" if c["fail"] or c["error"] else "warn" if c["warn"] else "pass"
    on = f" on <code>{html.escape(ref)}</code>" if ref else ""
    parts = [
        f"<span class='rat-c-fail'><b>{c['fail']} failed</b></span>" if c["fail"] else "0 failed",
        f"<span class='rat-c-pass'><b>{c['pass']} passed</b></span>",
        f"<span class='rat-c-warn'><b>{c['warn']} warned</b></span>" if c["warn"] else "0 warned",
    ]
    if c["error"]:
        parts.append(f"<span class='rat-c-error'><b>{c['error']} errored</b></span>")
    head = f"<div class='rat-tests-summary rat-tests-{worst}'>{', '.join(parts)} · {plural(len(rows), 'test')}{on}</div>"
    if not rows:
        return f"{_STYLE}<div class='rat-tests'>{head}<div>no data tests are defined for the selected models</div></div>"
    attention = [r for r in rows if r.status != "pass"]
    passes = [r for r in rows if r.status == "pass"]
    header = "<tr><th>status</th><th>model</th><th>test</th><th>result</th></tr>"
    body = ""
    if attention:
        body += f"<table class='rat-tests-attention'><thead>{header}</thead><tbody>{''.join(_row_html(r) for r in attention)}</tbody></table>"
    if passes:
        table = f"<table class='rat-tests-passed'><thead>{header}</thead><tbody>{''.join(_row_html(r) for r in passes)}</tbody></table>"
        body += table if not attention and len(passes) <= 10 else f"<details><summary>{plural(len(passes), 'passing test')}</summary>{table}</details>"
    return f"{_STYLE}<div class='rat-tests'>{head}{body}</div>"


def tests_text(results: Sequence[Any], *, ref: str | None = None) -> str:
    """The same as text: the summary line, then non-passing tests with their sample rows."""
    from ratatouille_nb.notebook.display import text_table

    rows = ordered(results)
    lines = [summary_line(rows) + (f" on '{ref}'" if ref else "")]
    for r in rows:
        if r.status == "pass":
            continue
        lines.append(f"{r.status.upper():<5} {r.model}  {r.test}  {_detail(r)}".rstrip())
        sample = list(r.sample or [])[:SAMPLE_ROWS]
        if sample:
            columns = [str(c) for c in sample[0]]
            cells = [[format_cell(row.get(c), c) for c in columns] for row in sample]
            numeric = [bool(cells) and all(row[i].kind in ("num", "null") for row in cells) for i in range(len(columns))]
            table = text_table(columns, [[c.text for c in row] for row in cells], numeric)
            lines.extend(f"      {line}" for line in table.splitlines())
    return "\n".join(lines)


class TestSummary:
    """Displays test results: HTML in Jupyter (`_repr_html_`), text elsewhere."""

    __test__ = False  # not a pytest class

    def __init__(self, results: Sequence[Any], *, ref: str | None = None) -> None:
        self.results = list(results)
        self.ref = ref

    @property
    def line(self) -> str:
        return summary_line(self.results)

    def _repr_html_(self) -> str:
        return tests_html(self.results, ref=self.ref)

    def __repr__(self) -> str:
        return tests_text(self.results, ref=self.ref)

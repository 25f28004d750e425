"""Rich and plain renderings of a `%%rat sql` result: rows, count, columns with types, time, branch, memory."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

_STYLE = (
    "<style>.rat-result{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px}"
    ".rat-result .rat-meta{color:var(--jp-ui-font-color2,#666);margin:2px 0 6px}"
    ".rat-result .rat-badge{display:inline-block;padding:0 6px;margin-right:6px;border-radius:8px;"
    "background:var(--jp-layout-color2,#eee);color:var(--jp-ui-font-color1,#222)}"
    ".rat-result table{border-collapse:collapse}.rat-result th,.rat-result td{padding:2px 8px;"
    "border-bottom:1px solid var(--jp-border-color2,#ddd);text-align:right;white-space:nowrap}"
    ".rat-result th{text-align:left}.rat-result th small{color:var(--jp-ui-font-color2,#888);font-weight:normal}"
    ".rat-error{font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap;color:var(--jp-error-color1,#b00);"
    "border-left:3px solid var(--jp-error-color1,#b00);padding:4px 8px}</style>"
)


@dataclass
class ResultInfo:
    """What the result header says."""

    columns: list[tuple[str, str]]
    rows: list[tuple]
    total_rows: int | None
    shown_limit: int
    elapsed: float
    branch: str
    peak_mb: float
    truncated_at: int | None = None
    writes: list[Any] = field(default_factory=list)
    commit: str | None = None

    def meta(self) -> str:
        count = f"{self.total_rows:,} rows" if self.total_rows is not None else "rows"
        if self.truncated_at is not None:
            count += f" (fetched the first {self.truncated_at:,}; pass --limit to change)"
        return f"{count} · {len(self.columns)} columns · {self.elapsed * 1000:.0f} ms · branch {self.branch} · peak {self.peak_mb:.0f} MB"

    def to_html(self) -> str:
        if self.writes:
            items = "".join(
                f"<li><b>{html.escape(w.table)}</b>: {html.escape(w.operation)} ({w.rows:,} rows)</li>" for w in self.writes
            )
            commit = f" · commit <code>{html.escape(self.commit[:12])}</code>" if self.commit else ""
            meta = f"branch {html.escape(self.branch)}{commit} · {self.elapsed * 1000:.0f} ms"
            return f"{_STYLE}<div class='rat-result'><ul>{items}</ul><div class='rat-meta'>{meta}</div></div>"
        head = "".join(f"<th>{html.escape(n)}<br><small>{html.escape(t)}</small></th>" for n, t in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{'NULL' if v is None else html.escape(str(v))}</td>" for v in row) + "</tr>"
            for row in self.rows[: self.shown_limit]
        )
        more = ""
        if self.total_rows is not None and self.total_rows > self.shown_limit:
            more = f"<div class='rat-meta'>… {self.total_rows - self.shown_limit:,} more rows</div>"
        return (
            f"{_STYLE}<div class='rat-result'><div class='rat-meta'><span class='rat-badge'>{html.escape(self.branch)}</span>"
            f"{html.escape(self.meta())}</div><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}</div>"
        )

    def to_text(self) -> str:
        if self.writes:
            lines = [f"{w.table}: {w.operation} ({w.rows:,} rows)" for w in self.writes]
            return "\n".join([*lines, f"branch {self.branch}" + (f", commit {self.commit[:12]}" if self.commit else "")])
        from io import StringIO

        from ratatouille_nb.textable import render_table

        out = StringIO()
        render_table([n for n, _ in self.columns], self.rows[: self.shown_limit], out)
        return out.getvalue() + self.meta()


def error_html(message: str) -> str:
    return f"{_STYLE}<div class='rat-error'>{html.escape(message)}</div>"

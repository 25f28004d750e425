"""Rich and plain renderings of a `%%rat sql` result: rows, count, columns with types, time, branch, memory.

The HTML is a scrollable grid with a sticky header: numbers right-aligned, rounded and separated
(the full value in each cell's `title`), NULL in its own style (class `rat-null`), text
left-aligned, long values cut short with a `<details>` expander. The text/plain repr shows the
same values (notebook/formatting.py formats both).

Beyond the first `displaylimit` rows, up to MORE_ROWS further rows (fewer if the HTML would pass
MAX_HTML characters) are in the same table, in a `<tbody class="rat-extra">` hidden until the
`<details class="rat-more">` under the grid is opened (CSS `:has()`: static HTML, no comm, works in a
saved notebook and nbviewer). A `<details>` cannot sit inside a `<table>` (the HTML parser moves it
out), so the rows stay in the table and keep its column widths and sticky header.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from ratatouille_nb.catalog.models import short_hash
from ratatouille_nb.notebook.formatting import Cell, format_rows, is_numeric_type, plural

#: Rows beyond the shown ones that the "show more rows" expander holds (at most).
MORE_ROWS = 200
#: The extra rows stop before the result's HTML passes this many characters.
MAX_HTML = 256_000

_STYLE = (
    "<style>.rat-result{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px;max-width:100%}"
    ".rat-result .rat-meta{color:var(--jp-ui-font-color2,#666);margin:2px 0 6px}"
    ".rat-result .rat-badge{display:inline-block;padding:0 6px;margin-right:6px;border-radius:8px;"
    "background:var(--jp-layout-color2,#eee);color:var(--jp-ui-font-color1,#222)}"
    ".rat-result .rat-grid{max-height:24em;max-width:100%;overflow:auto;border:1px solid var(--jp-border-color2,#ddd)}"
    ".rat-result table{border-collapse:separate;border-spacing:0;margin:0}"
    ".rat-result th,.rat-result td{padding:2px 8px;border-bottom:1px solid var(--jp-border-color2,#ddd);"
    "white-space:nowrap;vertical-align:top}"
    ".rat-result thead th{position:sticky;top:0;z-index:1;background:var(--jp-layout-color1,#fff);text-align:left;"
    "border-bottom:1px solid var(--jp-border-color1,#bbb)}"
    ".rat-result table thead th.rat-text{text-align:left}.rat-result table thead th.rat-num{text-align:right}"
    ".rat-result th small{color:var(--jp-ui-font-color2,#888);font-weight:normal}"
    ".rat-result td.rat-num{text-align:right;font-variant-numeric:tabular-nums}"
    ".rat-result td.rat-text,.rat-result td.rat-time,.rat-result td.rat-bool{text-align:left}"
    ".rat-result td.rat-null{text-align:left;color:var(--jp-ui-font-color3,#999);font-style:italic}"
    ".rat-result details{display:inline}.rat-result details summary{cursor:pointer}"
    ".rat-result details[open]{display:block;white-space:pre-wrap;max-width:80ch;min-width:30ch}"
    ".rat-result details[open] summary{color:var(--jp-ui-font-color2,#888)}"
    ".rat-result .rat-note{color:var(--jp-ui-font-color2,#666);margin:4px 0 0}"
    ".rat-result tbody.rat-extra{display:none}"
    ".rat-result:has(>details.rat-more[open]) tbody.rat-extra{display:table-row-group}"
    ".rat-result details.rat-more{display:block;margin:2px 0 0;color:var(--jp-ui-font-color2,#666)}"
    ".rat-result details.rat-more summary{color:var(--jp-content-link-color,#1976d2);width:max-content}"
    ".rat-result details.rat-more summary:hover{text-decoration:underline}"
    ".rat-result details.rat-more[open] summary{color:var(--jp-ui-font-color2,#888)}"
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

    @property
    def shown(self) -> int:
        return min(len(self.rows), self.shown_limit)

    def meta(self) -> str:
        """Rows, columns, time and memory (the branch is the badge in HTML, the last line in text)."""
        count = plural(self.total_rows, "row") if self.total_rows is not None else "rows"
        if self.truncated_at is not None:
            count += f" (fetched the first {self.truncated_at:,}; pass --limit to change)"
        return f"{count} · {plural(len(self.columns), 'column')} · {self.elapsed * 1000:.0f} ms · peak {self.peak_mb:.0f} MB"

    def more_note(self) -> str:
        """'showing 10 of 60 rows' when the table shows fewer rows than the result has; else ''."""
        total = self.total_rows if self.total_rows is not None else len(self.rows)
        if total <= self.shown:
            return ""
        if self.truncated_at is not None:
            frame = f"the returned DataFrame (_ or -o VAR) holds the first {plural(self.truncated_at, 'row')}"
        else:
            frame = f"the full result ({plural(total, 'row')}) is the returned DataFrame (_ or -o VAR)"
        return f"showing {self.shown:,} of {plural(total, 'row')} · {frame}; %config RatMagics.displaylimit = N shows more"

    def cells(self) -> list[list[Cell]]:
        return format_rows(self.columns, self.rows[: self.shown_limit])

    def extra_cells(self) -> list[list[Cell]]:
        """The rows after the shown ones (at most MORE_ROWS) for the "show more rows" expander."""
        return format_rows(self.columns, self.rows[self.shown_limit : self.shown_limit + MORE_ROWS])

    def to_html(self) -> str:
        badge = f"<span class='rat-badge' title='branch'>{html.escape(self.branch)}</span>"
        if self.writes:
            items = "".join(
                f"<li><b>{html.escape(w.table)}</b>: {html.escape(w.operation)} ({plural(w.rows, 'row')})</li>" for w in self.writes
            )
            commit = f" · commit <code>{html.escape(short_hash(self.commit))}</code>" if self.commit else ""
            meta = f"{badge}{self.elapsed * 1000:.0f} ms{commit}"
            return f"{_STYLE}<div class='rat-result'><ul>{items}</ul><div class='rat-meta'>{meta}</div></div>"
        numeric = [is_numeric_type(t) for _, t in self.columns]
        head = "".join(
            f"<th class='{'rat-num' if num else 'rat-text'}'>{html.escape(n)}<br><small>{html.escape(t)}</small></th>"
            for (n, t), num in zip(self.columns, numeric, strict=False)
        )
        body = "".join(_tr(row) for row in self.cells())
        note = self.more_note()
        more = f"<div class='rat-note'>{html.escape(note)}</div>" if note else ""
        top = f"{_STYLE}<div class='rat-result'><div class='rat-meta'>{badge}{html.escape(self.meta())}</div>"
        grid = f"<div class='rat-grid'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        budget = MAX_HTML - len(top) - len(grid) - len(more) - 300
        extra: list[str] = []
        for row in self.extra_cells():
            tr = _tr(row)
            budget -= len(tr)
            if budget < 0:
                break
            extra.append(tr)
        if not extra:
            return f"{top}{grid}</table></div>{more}</div>"
        expander = f"<details class='rat-more'><summary>show {plural(len(extra), 'more row')}</summary></details>"
        return f"{top}{grid}<tbody class='rat-extra'>{''.join(extra)}</tbody></table></div>{more}{expander}</div>"

    def to_text(self) -> str:
        if self.writes:
            lines = [f"{w.table}: {w.operation} ({plural(w.rows, 'row')})" for w in self.writes]
            return "\n".join([*lines, f"branch {self.branch}" + (f", commit {short_hash(self.commit)}" if self.commit else "")])
        numeric = [is_numeric_type(t) for _, t in self.columns]
        table = text_table([n for n, _ in self.columns], [[c.text for c in row] for row in self.cells()], numeric)
        note = self.more_note()
        return table + self.meta() + f" · branch {self.branch}" + (f"\n{note.split(' · ')[0]}" if note else "")


def _tr(row: list[Cell]) -> str:
    return "<tr>" + "".join(_td(c) for c in row) + "</tr>"


def _td(cell: Cell) -> str:
    title = html.escape(cell.full, quote=True)
    if cell.truncated:
        inner = f"<details><summary>{html.escape(cell.text)}</summary>{html.escape(cell.full)}</details>"
    else:
        inner = html.escape(cell.text)
    return f"<td class='rat-{cell.kind}' title=\"{title}\">{inner}</td>"


def text_table(headers: list[str], rows: list[list[str]], numeric: list[bool]) -> str:
    """Aligned plain columns: numbers right-aligned, the rest left (what text/plain shows)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)]
        return "  ".join(parts).rstrip() + "\n"

    out = line(headers) + "  ".join("-" * w for w in widths) + "\n"
    return out + "".join(line(r) for r in rows)


def error_html(message: str) -> str:
    return f"{_STYLE}<div class='rat-error'>{html.escape(message)}</div>"

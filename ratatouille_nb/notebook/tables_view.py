"""`%rat tables [--branch B]`: the workspace's layers and tables, as HTML in the notebook and as text.

The same listing as the Lab sidebar (verbs/tables.py): rows, columns with DuckDB types, the commit
that last changed each table, the model building it and its freshness.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.verbs.tables import TableInfo, TablesListing

# JupyterLab's theme colours (light and dark), with fallbacks for other front ends.
_DIM = "var(--jp-ui-font-color2, #757575)"
_STATUS_COLOURS = {
    "fresh": "var(--jp-success-color1, #2e7d32)",
    "warn": "var(--jp-warn-color1, #b26a00)",
    "stale": "var(--jp-error-color1, #c62828)",
    "unknown": _DIM,
}


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch is not None else "—"


def _rows(t: TableInfo) -> str:
    if t.kind == "table" and t.rows is not None:
        return f"{t.rows:,} row{'' if t.rows == 1 else 's'}"
    return t.kind


class TablesView:
    """What `%rat tables` returns: HTML for the notebook, the same facts as text."""

    def __init__(self, listing: TablesListing) -> None:
        self.listing = listing

    def __repr__(self) -> str:
        out = [f"workspace {self.listing.workspace} · {self.listing.ref} @ {self.listing.commit}"]
        for layer in self.listing.layers:
            out.append(f"{layer.name} ({len(layer.tables)})")
            for t in layer.tables:
                columns = ", ".join(f"{c.name} {c.type}" for c in t.columns)
                model = f" · model {t.model}" if t.model else ""
                out.append(f"  {t.table}  {_rows(t)} · {t.freshness.text} · changed {_when(t.snapshot_at)} {t.commit or ''}{model}")
                if columns:
                    out.append(f"    {columns}")
                if t.error:
                    out.append(f"    error: {t.error}")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [
            '<div class="rat-tables" style="font-size:13px;line-height:1.45">',
            f'<div style="color:{_DIM};margin-bottom:6px">workspace <b>{e(self.listing.workspace)}</b> · '
            f"<b>{e(self.listing.ref)}</b> @ <code>{e(self.listing.commit)}</code></div>",
        ]
        for layer in self.listing.layers:
            parts.append(
                f'<div style="font-weight:600;text-transform:uppercase;letter-spacing:.04em;margin:8px 0 2px">'
                f"{e(layer.name)} <span style=\"color:{_DIM};font-weight:400\">({len(layer.tables)})</span></div>"
            )
            if not layer.tables:
                parts.append(f'<div style="color:{_DIM};margin-left:12px">no tables</div>')
                continue
            parts.append('<table style="border-collapse:collapse;margin-left:12px"><tbody>')
            for t in layer.tables:
                colour = _STATUS_COLOURS[t.freshness.status]
                columns = ", ".join(f"{e(c.name)} <span style=\"color:{_DIM}\">{e(c.type)}</span>" for c in t.columns)
                model = f"model <code>{e(t.model)}</code>" if t.model else ""
                error = f'<div style="color:{_STATUS_COLOURS["stale"]}">{e(t.error)}</div>' if t.error else ""
                parts.append(
                    f'<tr data-table="{e(t.table)}" style="vertical-align:top">'
                    f'<td style="padding:2px 10px 2px 0;text-align:left"><code>{e(t.table)}</code></td>'
                    f'<td style="padding:2px 10px 2px 0;text-align:right;white-space:nowrap">{e(_rows(t))}</td>'
                    f'<td style="padding:2px 10px 2px 0;text-align:left;color:{colour}">{e(t.freshness.text)}</td>'
                    f'<td style="padding:2px 10px 2px 0;text-align:left;white-space:nowrap">{e(_when(t.snapshot_at))} '
                    f"<code>{e(t.commit or '')}</code></td>"
                    f'<td style="padding:2px 0;text-align:left;white-space:nowrap">{model}</td></tr>'
                    f'<tr><td colspan="5" style="padding:0 0 4px 12px;text-align:left;font-size:12px">{columns}{error}</td></tr>'
                )
            parts.append("</tbody></table>")
        parts.append("</div>")
        return "".join(parts)

"""The branch picker: current branch, switch, create from current, diff preview and merge with confirmation.

Every action has a Python method (`switch`, `create`, `preview`, `merge`) so tests and users can
drive it without a browser; the buttons call the same methods.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ratatouille_nb.errors import MergeConflictError, RatError
from ratatouille_nb.verbs import branches
from ratatouille_nb.verbs import session as sessions

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import TableDiff
    from ratatouille_nb.engine.session import Session


SAMPLE_ROWS = 3
"""Changed rows shown per table and kind in the picker's diff."""

_ADD = "var(--jp-success-color1,green)"
_DEL = "var(--jp-error-color1,#b00)"
_UPD = "var(--jp-warn-color1,#b60)"


def _cell(value: Any) -> str:
    if value is None:
        return "<span style='opacity:.6;font-style:italic'>NULL</span>"
    text = str(value)
    return html.escape(text if len(text) <= 60 else text[:59] + "…")


def _sample_html(d: TableDiff) -> str:
    """The sample changed rows of one table: added, deleted, updated (before → after, changed columns bold)."""
    if not d.sample:
        return ""
    columns: list[str] = []
    for item in d.sample:
        for c in item["row"]:
            if c not in columns:
                columns.append(c)
    colors = {"added": _ADD, "deleted": _DEL, "updated": _UPD}
    signs = {"added": "+", "deleted": "−", "updated": "~"}
    body = []
    for item in d.sample:
        change, row = item["change"], item["row"]
        changed = set(item.get("columns", []))
        cells = []
        for c in columns:
            if change == "updated" and c in changed:
                before = (item.get("before") or {}).get(c)
                cells.append(f"<td><s style='opacity:.6'>{_cell(before)}</s> <b>{_cell(row.get(c))}</b></td>")
            else:
                cells.append(f"<td>{_cell(row.get(c))}</td>")
        body.append(f"<tr><td style='color:{colors.get(change, 'inherit')}' title='{change}'>{signs.get(change, '?')}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    return (
        f"<details class='rat-diff-sample'><summary>sample changed rows of <code>{html.escape(d.table)}</code></summary>"
        f"<table class='rat-diff-rows'><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></details>"
    )


def _schema_text(d: TableDiff) -> str:
    parts = []
    for c in d.schema_changes:
        if c.change == "retyped":
            parts.append(f"{c.name}: {c.old_type} → {c.new_type}")
        elif c.change == "added":
            parts.append(f"+{c.name} {c.new_type or ''}".strip())
        else:
            parts.append(f"−{c.name}")
    return ", ".join(parts) or "–"


def diff_html(diffs: list[TableDiff], *, samples: bool = False) -> str:
    """Per table: status, net rows, rows added/deleted/updated (exact, or "≈" a file estimate), schema
    changes; with `samples`, the sample changed rows under the table."""
    if not diffs:
        return "<i>no differences</i>"
    rows = []
    for d in diffs:
        approx = "" if d.rows_exact else "≈"
        net = f"{d.net_rows:+,}".replace("-", "−") if d.net_rows else "0"
        updated = f"~{d.rows_updated:,}" if d.rows_updated else "–"
        rows.append(
            f"<tr><td><code>{html.escape(d.table)}</code></td><td>{d.status}</td><td>{net}</td>"
            f"<td style='color:{_ADD}'>{approx}+{d.rows_added:,}</td><td style='color:{_DEL}'>{approx}−{d.rows_removed:,}</td>"
            f"<td style='color:{_UPD}'>{updated}</td><td>{html.escape(_schema_text(d))}</td></tr>"
        )
        if samples and d.sample:
            rows.append(f"<tr><td colspan='7'>{_sample_html(d)}</td></tr>")
    return (
        "<style>.rat-diff th,.rat-diff td,.rat-diff-rows th,.rat-diff-rows td{padding:2px 10px;text-align:left}</style>"
        "<table class='rat-diff' style='line-height:1.5'><thead><tr><th>table</th><th>status</th><th>net rows</th>"
        "<th>added</th><th>deleted</th><th>updated</th><th>schema</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


class BranchPicker(w.VBox):
    """Branch list and actions over the kernel's session (or the one given)."""

    def __init__(self, session: Session | None = None) -> None:
        self._fixed = session
        self.title = w.HTML()
        self.branches = w.Dropdown(description="Branch", layout=w.Layout(width="360px"))
        self.new_name = w.Text(placeholder="new branch name", layout=w.Layout(width="220px"))
        self.create_button = w.Button(description="Create from current", icon="code-branch", layout=w.Layout(width="auto"))
        self.compare = w.Dropdown(description="Compare", layout=w.Layout(width="360px"))
        self.mode = w.ToggleButtons(
            options=[("since fork point", "fork"), ("tip to tip", "tips")], value="fork",
            tooltips=["each branch's own changes since they forked", "every difference between the two heads"],
            style={"button_width": "auto"},
        )
        self.diff_view = w.HTML()
        self.merge_button = w.Button(description="Merge into current…", button_style="warning", icon="compress", layout=w.Layout(width="auto"))
        self.confirm_button = w.Button(description="Confirm merge", button_style="danger", layout=w.Layout(display="none", width="auto"))
        self.cancel_button = w.Button(description="Cancel", layout=w.Layout(display="none", width="auto"))
        self.status = w.HTML()
        super().__init__(
            [
                self.title,
                w.HBox([self.branches]),
                w.HBox([self.new_name, self.create_button]),
                w.HBox([self.compare, self.mode]),
                self.diff_view,
                w.HBox([self.merge_button, self.confirm_button, self.cancel_button]),
                self.status,
            ]
        )
        self.add_class("rat-branch-picker")
        self._updating = False
        self.last_diffs: tuple[list[TableDiff], list[TableDiff]] = ([], [])
        self.refresh()
        self.branches.observe(self._on_pick, names="value")
        self.compare.observe(lambda _c: self.preview(), names="value")
        self.mode.observe(lambda _c: self.preview(), names="value")
        self.create_button.on_click(lambda _b: self._guard(lambda: self.create(self.new_name.value)))
        self.merge_button.on_click(lambda _b: self._guard(self.ask_merge))
        self.confirm_button.on_click(lambda _b: self._guard(self.merge))
        self.cancel_button.on_click(lambda _b: self._show_confirm(False))
        sessions.on_change(lambda _s: self.refresh())

    # -- state --------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        return self._fixed or sessions.current()

    def refresh(self) -> None:
        """Reload branches from the store (after any change, here or elsewhere)."""
        self._updating = True
        try:
            names = [r.name for r in branches.list_refs(self.session, own_only=True) if r.kind == "branch"]
            current = self.session.branch
            self.branches.options = names
            self.branches.value = current
            others = [n for n in names if n != current]
            keep = self.compare.value if self.compare.value in others else (others[0] if others else None)
            self.compare.options = others
            self.compare.value = keep
            head = self.session.store.get_reference(current)
            self.title.value = (
                f"<b>{html.escape(self.session.workspace.name)}</b> · on <code>{html.escape(current)}</code> "
                f"at <code>{head.hash[:12]}</code> · {len(self.session.contents())} tables"
            )
        finally:
            self._updating = False
        self.preview()

    def _notify(self) -> None:
        """Tell the frontend (status bar) and the kernel's environment at once (notebook/link.py)."""
        if self._fixed is None:
            from ratatouille_nb.notebook import link

            link.notify_state(self.session)

    def _guard(self, action: Any) -> None:
        try:
            action()
        except RatError as exc:
            self.status.value = f"<span style='color:var(--jp-error-color1,#b00)'>{html.escape(str(exc))}</span>"

    def _on_pick(self, change: dict) -> None:
        if not self._updating and change["new"] and change["new"] != self.session.branch:
            self._guard(lambda: self.switch(change["new"]))

    # -- actions ------------------------------------------------------------------------------

    def switch(self, name: str) -> None:
        """Check out `name`: the kernel session (and every cell after) follows."""
        branches.checkout(self.session, name)
        self._notify()
        self.status.value = f"switched to <code>{html.escape(name)}</code>"

    def create(self, name: str) -> None:
        """Create `name` from the current branch (zero-copy) and switch to it."""
        name = name.strip()
        if not name:
            raise RatError("type a branch name first")
        branches.create(self.session, name, checkout_=True)
        self._notify()
        self.new_name.value = ""
        self.status.value = f"created and switched to <code>{html.escape(name)}</code>"

    def preview(self) -> list[TableDiff]:
        """What a merge of the compared branch would bring (its changes since the fork point, rows
        counted exactly), and below it the current branch's own changes since then; "tip to tip"
        compares the two heads instead. Returns the first table (what the merge brings)."""
        other = self.compare.value
        if not other:
            self.diff_view.value = "<i>no other branch to compare with</i>"
            return []
        s = self.session
        current = s.branch
        if self.mode.value == "tips":
            diffs = branches.diff(s, current, other, rows=True, sample=SAMPLE_ROWS)
            self.diff_view.value = (
                f"<div>from <code>{html.escape(current)}</code> to <code>{html.escape(other)}</code>:</div>" + diff_html(diffs, samples=True)
            )
            return diffs
        fork = branches.fork_point(s, other, current)
        incoming = branches.diff(s, fork, other, rows=True, sample=SAMPLE_ROWS)
        ours = branches.diff(s, fork, current, rows=True, sample=SAMPLE_ROWS)
        self.diff_view.value = (
            f"<div class='rat-diff-fork'>fork point <code>{fork[:12]}</code></div>"
            f"<div>changes on <code>{html.escape(other)}</code> since it forked (a merge brings these):</div>"
            + diff_html(incoming, samples=True)
            + f"<div style='margin-top:.5em'>changes on <code>{html.escape(current)}</code> since then:</div>"
            + diff_html(ours, samples=True)
        )
        self.last_diffs = (incoming, ours)
        return incoming

    def _show_confirm(self, on: bool) -> None:
        self.confirm_button.layout.display = "" if on else "none"
        self.cancel_button.layout.display = "" if on else "none"
        self.merge_button.disabled = on

    def ask_merge(self) -> None:
        if not self.compare.value:
            raise RatError("pick a branch to merge")
        self._show_confirm(True)
        self.status.value = f"merge <code>{html.escape(self.compare.value)}</code> into <code>{html.escape(self.session.branch)}</code>?"

    def merge(self, source: str | None = None) -> Any:
        """Merge `source` (default: the compared branch) into the current branch; conflicts shown per table."""
        source = source or self.compare.value
        self._show_confirm(False)
        try:
            result = branches.merge(self.session, source)
        except MergeConflictError as exc:
            items = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in exc.tables)
            self.status.value = (
                f"<span style='color:var(--jp-error-color1,#b00)'>merge conflict: changed on both sides:</span><ul>{items}</ul>"
                "nothing was changed"
            )
            return exc
        self.refresh()
        self.status.value = f"merged <code>{html.escape(source)}</code> ({result.kind})"
        return result

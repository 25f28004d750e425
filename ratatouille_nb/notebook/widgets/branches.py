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


def diff_html(diffs: list[TableDiff]) -> str:
    """Per table: status, rows added/removed, schema changes."""
    if not diffs:
        return "<i>no differences</i>"
    rows = "".join(
        f"<tr><td>{html.escape(d.table)}</td><td>{d.status}</td><td style='color:var(--jp-success-color1,green)'>+{d.rows_added:,}</td>"
        f"<td style='color:var(--jp-error-color1,#b00)'>-{d.rows_removed:,}</td><td>"
        + html.escape(", ".join(f"{c.change} {c.name}" for c in d.schema_changes) or "–")
        + "</td></tr>"
        for d in diffs
    )
    return (
        "<table class='rat-diff' style='line-height:1.5'><thead><tr><th>table</th><th>status</th><th>rows added</th><th>rows removed</th>"
        f"<th>schema</th></tr></thead><tbody>{rows}</tbody></table>"
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
                w.HBox([self.compare]),
                self.diff_view,
                w.HBox([self.merge_button, self.confirm_button, self.cancel_button]),
                self.status,
            ]
        )
        self.add_class("rat-branch-picker")
        self._updating = False
        self.refresh()
        self.branches.observe(self._on_pick, names="value")
        self.compare.observe(lambda _c: self.preview(), names="value")
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
            names = [r.name for r in branches.list_refs(self.session) if r.kind == "branch"]
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
        self.status.value = f"switched to <code>{html.escape(name)}</code>"

    def create(self, name: str) -> None:
        """Create `name` from the current branch (zero-copy) and switch to it."""
        name = name.strip()
        if not name:
            raise RatError("type a branch name first")
        branches.create(self.session, name, checkout_=True)
        self.new_name.value = ""
        self.status.value = f"created and switched to <code>{html.escape(name)}</code>"

    def preview(self) -> list[TableDiff]:
        """Diff of the compared branch against the current one (what a merge would bring)."""
        other = self.compare.value
        if not other:
            self.diff_view.value = "<i>no other branch to compare with</i>"
            return []
        diffs = branches.diff_since_fork(self.session, other)
        self.diff_view.value = f"<div>changes on <code>{html.escape(other)}</code> since it forked:</div>" + diff_html(diffs)
        return diffs

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

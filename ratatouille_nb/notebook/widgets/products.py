"""The product browser: search the products this workspace may read; versions, schema, owner,
grants, freshness; subscribe; and a ready `%%rat sql` query to insert.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ratatouille_nb.errors import RatError
from ratatouille_nb.verbs import products
from ratatouille_nb.verbs import session as sessions

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} seconds ago"


def query_for(name: str, limit: int = 100) -> str:
    return f"%%rat sql\nSELECT *\nFROM products.{name}\nLIMIT {limit}\n"


class ProductBrowser(w.VBox):
    """Only products the current workspace may read are listed."""

    def __init__(self, session: Session | None = None, shell: Any = None) -> None:
        self._fixed = session
        self.shell = shell
        self.search = w.Text(placeholder="search products", description="Search", layout=w.Layout(width="320px"))
        self.listing = w.Select(options=[], rows=8, layout=w.Layout(width="320px"))
        self.detail = w.HTML()
        self.version = w.Text(value="latest", description="Version", layout=w.Layout(width="200px"))
        self.alias = w.Text(placeholder="alias (optional)", layout=w.Layout(width="160px"))
        self.subscribe_button = w.Button(description="Subscribe", icon="bell")
        self.insert_button = w.Button(description="Insert query", icon="plus")
        self.snippet = w.Textarea(layout=w.Layout(width="480px", height="90px", display="none"))
        self.status = w.HTML()
        super().__init__(
            [
                w.HBox([w.VBox([self.search, self.listing]), self.detail]),
                w.HBox([self.version, self.alias, self.subscribe_button, self.insert_button]),
                self.snippet,
                self.status,
            ]
        )
        self.add_class("rat-product-browser")
        self._names: list[str] = []
        self.refresh()
        self.search.observe(lambda _c: self.filter(self.search.value), names="value")
        self.listing.observe(lambda c: self.show(c["new"]) if c["new"] else None, names="value")
        if self.listing.value:
            self.show(self.listing.value)  # the first match is preselected: show it right away
        self.subscribe_button.on_click(lambda _b: self._guard(lambda: self.subscribe(self.listing.value, self.version.value, self.alias.value or None)))
        self.insert_button.on_click(lambda _b: self._guard(lambda: self.insert_query(self.listing.value)))
        sessions.on_change(lambda _s: self.refresh())

    @property
    def session(self) -> Session:
        return self._fixed or sessions.current()

    def _guard(self, action: Any) -> None:
        try:
            action()
        except RatError as exc:
            self.status.value = f"<span style='color:var(--jp-error-color1,#b00)'>{html.escape(str(exc))}</span>"

    def refresh(self) -> None:
        self._names = products.readable(self.session)
        self.filter(self.search.value)

    def filter(self, text: str) -> list[str]:
        """Products whose name, owner or description contains `text`."""
        needle = text.strip().lower()
        hits = []
        for name in self._names:
            if not needle or needle in name:
                hits.append(name)
                continue
            info = products.show(self.session, name)
            if needle in (info["description"] or "").lower() or needle in info["owner"]:
                hits.append(name)
        self.listing.options = hits
        if hits and self.listing.value not in hits:
            self.listing.value = hits[0]
        if not hits:
            self.detail.value = "<i>no products match</i>" if self._names else "<i>no products visible to this workspace yet</i>"
        return hits

    def show(self, name: str) -> dict[str, Any]:
        info = products.show(self.session, name)
        versions = ", ".join(v["version"] for v in info["versions"])
        schema = "".join(f"<tr><td>{html.escape(c['name'])}</td><td>{html.escape(c['type'])}</td></tr>" for c in info["schema"])
        grants = ", ".join(f"{html.escape(ws)}:{lvl}" for ws, lvl in info["grants"]) or "owner only"
        self.detail.value = (
            f"<div style='padding-left:12px;line-height:1.5'><b>{html.escape(name)}</b> · owner <code>{html.escape(info['owner'])}</code>"
            f" · updated {_age(info['freshness_seconds'])}<br>{html.escape(info['description'] or '')}"
            f"<br>versions: {html.escape(versions)} · your access: {info['access']} · grants: {grants}"
            f"<table><thead><tr><th>column</th><th>type</th></tr></thead><tbody>{schema}</tbody></table></div>"
        )
        return info

    def subscribe(self, name: str, version: str = "latest", alias: str | None = None) -> Any:
        if not name:
            raise RatError("pick a product first")
        resolved = products.subscribe(self.session, name, version or "latest", alias)
        self.status.value = f"subscribed to <b>{html.escape(name)}</b> {html.escape(version)} (now {resolved.release.version})"
        return resolved

    def insert_query(self, name: str) -> str:
        """A `%%rat sql` cell reading the product: offered as the next cell (and shown to copy)."""
        if not name:
            raise RatError("pick a product first")
        text = query_for(name)
        self.snippet.value = text
        self.snippet.layout.display = ""
        if self.shell is not None:
            self.shell.set_next_input(text, replace=False)
        self.status.value = "query ready: it is the next cell's input (or copy it from the box)"
        return text

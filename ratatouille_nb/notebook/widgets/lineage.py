"""Placeholder until the lineage graph widget lands: shows the graph as text."""

from __future__ import annotations

from typing import Any

import ipywidgets as w


class LineageGraphWidget(w.HTML):
    @classmethod
    def for_session(cls, session: Any, model: str | None = None, columns: bool = False) -> LineageGraphWidget:
        from ratatouille_nb.lineage import lineage

        graph = lineage(session, model=model, columns=columns)
        return cls(value=f"<pre>{graph.to_text()}</pre>")

"""The lineage graph widget: an interactive DAG of the workspace's tables (anywidget + cytoscape.js).

    w = LineageGraphWidget.for_session(session, model="gold.daily_sales_kpis")
    w.select("silver.sales")       # fills w.details: columns, schema, last run, …
    w.highlighted()                # node ids lit up by the selection (per w.highlight)
    w.set_mode("column")           # columns inside the tables, column-level edges

What is drawn comes from `LineageGraph.to_json()` (the `graph` trait). The browser side is
`static/lineage.js`, a bundle of `widgets/js/src` (cytoscape.js + dagre) built with
`npm run build` there; Python computes everything the view shows besides the drawing, so the
widget is fully usable (and testable) without a browser.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from ratatouille_nb.errors import RatError
from ratatouille_nb.lineage.errors import LineageError
from ratatouille_nb.lineage.graph import ColumnEdge, LineageEdge, LineageGraph, LineageNode, normalize_direction

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session

STATIC = Path(__file__).parent / "static"
ESM_PATH = STATIC / "lineage.js"
CSS_PATH = STATIC / "lineage.css"

MODES = ("table", "column")
HIGHLIGHTS = ("upstream", "downstream", "both", "none")


def graph_from_json(data: dict[str, Any]) -> LineageGraph:
    """The inverse of `LineageGraph.to_json()` (depth is recomputed, so it is not read)."""
    nodes = [
        LineageNode(
            id=n["id"],
            kind=n.get("kind", "source"),
            layer=n.get("layer"),
            model=n.get("model"),
            language=n.get("language"),
            materialized=n.get("materialized"),
            columns={c["name"]: c.get("type") or "" for c in n.get("columns", [])},
            path=n.get("path"),
            description=n.get("description"),
            exists=bool(n.get("exists")),
            snapshot_id=n.get("snapshot_id"),
            column_lineage=bool(n.get("column_lineage")),
            error=n.get("error"),
        )
        for n in data.get("nodes", [])
    ]
    edges = [LineageEdge(e["source"], e["target"], e.get("kind", "ref")) for e in data.get("edges", [])]
    column_edges = [ColumnEdge(c["source"], c["source_column"], c["target"], c["target_column"]) for c in data.get("column_edges", [])]
    return LineageGraph(nodes, edges, column_edges, focus=data.get("focus"), direction=data.get("direction"), meta=data.get("meta"))


class LineageGraphWidget(anywidget.AnyWidget):
    """Zoom/pan DAG; click a table for its columns, schema and last run; highlight up/downstream;
    a column mode with column-level edges. All state is in the synced traits below."""

    _esm = ESM_PATH
    _css = CSS_PATH

    #: `LineageGraph.to_json()`: nodes (kind, layer, model, columns, …), edges, column edges, meta.
    graph = t.Dict().tag(sync=True)
    #: The selected node id (None: nothing selected). Set from the browser by clicking a table.
    selected = t.Unicode(None, allow_none=True).tag(sync=True)
    #: A column of the selected node (column mode): highlights that column's lineage.
    selected_column = t.Unicode(None, allow_none=True).tag(sync=True)
    #: 'table': one box per table; 'column': each table's columns, with column-level edges.
    mode = t.Enum(MODES, default_value="table").tag(sync=True)
    #: What the selection lights up: 'upstream', 'downstream', 'both' or 'none'.
    highlight = t.Enum(HIGHLIGHTS, default_value="both").tag(sync=True)
    #: About the selected node: columns with types (and sources), schema, model, last run, …
    details = t.Dict().tag(sync=True)
    #: Height of the graph area in pixels.
    height = t.Int(480).tag(sync=True)
    #: A problem to show in the widget's status line (e.g. a failed refresh); '' when none.
    error = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        graph: LineageGraph | dict[str, Any] | None = None,
        *,
        session: Session | None = None,
        lineage_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Usually made with `for_session` or `from_graph`. `lineage_args` ({'model', 'columns'}) is
        how the graph was built from `session`, for refreshing it and for column mode."""
        self._session = session
        self._own_graph_update = True  # the `graph` trait is being set from self._graph
        if isinstance(graph, dict):
            graph = graph_from_json(graph)
        self._graph: LineageGraph = graph if graph is not None else LineageGraph()
        # "columns": column lineage was computed for this graph (so column mode needs no rebuild)
        self._build_args: dict[str, Any] = {"model": None, "columns": self._graph.has_columns, **(lineage_args or {})}
        selected = kwargs.pop("selected", None)
        super().__init__(graph=self._graph.to_json(), **kwargs)
        self._own_graph_update = False
        self.on_msg(self._on_message)
        if selected is not None:
            self.select(selected)

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_graph(cls, graph: LineageGraph | dict[str, Any], **kwargs: Any) -> LineageGraphWidget:
        """A widget over a graph you already have (a LineageGraph or its `to_json()`); no run history."""
        return cls(graph, **kwargs)

    @classmethod
    def for_session(cls, session: Session, model: str | None = None, columns: bool = False, **kwargs: Any) -> LineageGraphWidget:
        """The session's lineage (around `model` if given, which is then selected); columns=True
        starts in column mode with column-level edges."""
        from ratatouille_nb.lineage import lineage

        graph = lineage(session, model=model, columns=columns)
        kwargs.setdefault("mode", "column" if columns else "table")
        widget = cls(graph, session=session, lineage_args={"model": model, "columns": columns or graph.has_columns}, **kwargs)
        if graph.focus is not None and widget.selected is None:
            widget.select(graph.focus)
        return widget

    # -- the Python API -----------------------------------------------------------------------

    @property
    def lineage_graph(self) -> LineageGraph:
        """The LineageGraph behind the `graph` trait."""
        return self._graph

    def select(self, node_id: str | None, column: str | None = None) -> dict[str, Any]:
        """Select a node (id, or a pipeline name) and optionally one of its columns; returns `details`.
        None clears the selection. Unknown ids raise UnknownNodeError, unknown columns LineageError."""
        if node_id is None:
            self.selected_column = None
            self.selected = None
            return self.details
        resolved = self._graph.resolve(node_id)
        if column is not None and column not in self._graph.nodes[resolved].columns:
            known = ", ".join(self._graph.nodes[resolved].columns) or "none known"
            raise LineageError(f"'{resolved}' has no column '{column}'", hint=f"its columns: {known}")
        with self.hold_trait_notifications():
            self.selected = resolved
            self.selected_column = column
        self._refresh_details()
        return self.details

    def set_mode(self, mode: str) -> None:
        """'table' or 'column'. Column mode computes column lineage first if the graph lacks it."""
        if mode not in MODES:
            raise LineageError(f"unknown lineage mode '{mode}'", hint="use 'table' or 'column'")
        self.mode = mode

    def set_highlight(self, direction: str) -> None:
        """'upstream' ('up'), 'downstream' ('down'), 'both' or 'none'."""
        self.highlight = "none" if direction in (None, "none", "off") else (normalize_direction(direction) or "none")

    def highlighted(self) -> set[str]:
        """Node ids the current selection lights up: the selected node plus its upstream and/or
        downstream (per `highlight`); with a column selected in column mode, the tables holding
        the highlighted columns. Empty when nothing is selected or `highlight` is 'none'."""
        if self.selected is None or self.highlight == "none":
            return set()
        if self.mode == "column" and self.selected_column:
            return {table for table, _ in self.highlighted_columns()}
        out = {self.selected}
        if self.highlight in ("upstream", "both"):
            out |= set(self._graph.upstream(self.selected))
        if self.highlight in ("downstream", "both"):
            out |= set(self._graph.downstream(self.selected))
        return out

    def highlighted_columns(self) -> set[tuple[str, str]]:
        """(table, column) pairs lit up by the selected column through column edges (per `highlight`)."""
        if self.selected is None or not self.selected_column or self.highlight == "none":
            return set()
        start = (self.selected, self.selected_column)
        ups: dict[tuple[str, str], set[tuple[str, str]]] = {}
        downs: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for c in self._graph.column_edges:
            a, b = (c.source, c.source_column), (c.target, c.target_column)
            ups.setdefault(b, set()).add(a)
            downs.setdefault(a, set()).add(b)
        out = {start}
        for adjacency, on in ((ups, ("upstream", "both")), (downs, ("downstream", "both"))):
            if self.highlight not in on:
                continue
            stack = [start]
            while stack:
                for nxt in adjacency.get(stack.pop(), ()):
                    if nxt not in out:
                        out.add(nxt)
                        stack.append(nxt)
        return out

    def refresh(self) -> None:
        """Rebuild the graph from the session (its current branch), keeping the selection if it still exists."""
        if self._session is None:
            raise LineageError("this lineage widget was made from a graph, not a session: nothing to refresh from")
        from ratatouille_nb.lineage import lineage

        columns = self.mode == "column" or bool(self._build_args.get("columns"))
        graph = lineage(self._session, model=self._build_args.get("model"), columns=columns)
        self._set_graph(graph)

    # -- internals ----------------------------------------------------------------------------

    def _set_graph(self, graph: LineageGraph) -> None:
        self._graph = graph
        keep = self.selected if self.selected in graph.nodes else None
        column = self.selected_column if keep and self.selected_column in graph.nodes[keep].columns else None
        self._own_graph_update = True
        try:
            with self.hold_trait_notifications():
                self.graph = graph.to_json()
                self.selected = keep
                self.selected_column = column
        finally:
            self._own_graph_update = False
        self.error = ""
        self._refresh_details()

    @t.validate("selected")
    def _valid_selected(self, proposal: t.Bunch) -> str | None:
        value = proposal["value"]
        return None if value in (None, "") else self._graph.resolve(value)

    @t.observe("graph")
    def _graph_changed(self, change: t.Bunch) -> None:
        # Set from outside (e.g. `w.graph = other.to_json()`): keep the LineageGraph in step.
        if not self._own_graph_update:
            self._graph = graph_from_json(change["new"] or {})
            if self.selected is not None and self.selected not in self._graph.nodes:
                self.selected_column = None
                self.selected = None
            self._refresh_details()

    @t.observe("selected", "selected_column")
    def _selection_changed(self, change: t.Bunch) -> None:
        self._refresh_details()

    @t.observe("mode")
    def _mode_changed(self, change: t.Bunch) -> None:
        if change["new"] != "column" or self._session is None or self._build_args.get("columns"):
            return
        self._build_args["columns"] = True  # computed once: later switches reuse the graph
        if not self._graph.has_columns:
            try:
                from ratatouille_nb.lineage import lineage

                self._set_graph(lineage(self._session, model=self._build_args.get("model"), columns=True, ref=self._graph.meta.get("ref")))
            except RatError as exc:
                self.error = f"column lineage unavailable: {exc}"

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "refresh":
            try:
                self.refresh()
            except RatError as exc:
                self.error = str(exc)

    def _refresh_details(self) -> None:
        self.details = self._details(self.selected) if self.selected in self._graph.nodes else {}

    def _details(self, node_id: str) -> dict[str, Any]:
        node = self._graph.nodes[node_id]
        sources = self._graph.column_map(node_id) if node.column_lineage else {}
        return {
            "id": node.id,
            "name": node.name,
            "label": node.label(),
            "kind": node.kind,
            "schema": node.layer,
            "layer": node.layer,
            "model": node.model,
            "language": node.language,
            "materialized": node.materialized,
            "path": node.path,
            "description": node.description,
            "exists": node.exists,
            "snapshot_id": node.snapshot_id,
            "error": node.error,
            "ref": self._graph.meta.get("ref"),
            "columns": [
                {"name": name, "type": typ, "description": node.column_descriptions.get(name),
                 "sources": [{"table": s, "column": c} for s, c in sources.get(name, [])]}
                for name, typ in node.columns.items()
            ],
            "column_lineage": node.column_lineage,
            "selected_column": self.selected_column,
            "upstream": sorted({e.source for e in self._graph.edges if e.target == node_id}),
            "downstream": sorted({e.target for e in self._graph.edges if e.source == node_id}),
            "last_run": self._last_run(node),
        }

    def _last_run(self, node: LineageNode) -> dict[str, Any] | None:
        """The run that wrote the node's current snapshot; else the model's latest recorded run."""
        session = self._session
        if session is None or node.kind in ("file", "external"):
            return None
        from ratatouille_nb.lineage.build import producing_run

        ref = self._graph.meta.get("ref") or session.branch
        if node.exists:
            try:
                run = producing_run(session, node.id, ref=ref)
            except (RatError, sqlite3.Error):
                run = None
            if run is not None:
                out = run.to_json()
                out["status"] = "success"
                out["seconds"] = (run.finished_at - run.started_at) if run.finished_at else None
                return out
        if node.model:
            return _latest_model_run(session, node.model)
        return None

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple) and bundle and isinstance(bundle[0], dict):
            bundle[0]["text/plain"] = self._graph.to_text()
        return bundle

    def __repr__(self) -> str:
        return f"<LineageGraphWidget {len(self._graph)} nodes, mode={self.mode}, selected={self.selected!r}>"


def _latest_model_run(session: Session, model: str) -> dict[str, Any] | None:
    """The model's most recent run in this workspace, whatever its outcome (pipeline/runs.py)."""
    from ratatouille_nb.pipeline.runs import latest_model_run

    try:
        found = latest_model_run(session.settings.home, session.workspace.name, model)
    except sqlite3.Error:
        return None
    if found is None:
        return None
    out: dict[str, Any] = dict(found)
    out["model"] = model
    out["note"] = "the model's latest run; it did not write the table's current snapshot"
    return out

"""The lineage graph: tables (and the models that build them) as nodes, "reads from" as edges.

Nodes are tables named `layer.table` (plus `products.<name>`, landing-file globs and whatever
external ids a provider adds); an edge `a -> b` means b is built from a. Column edges
`(a, col) -> (b, col2)` say which source columns feed each output column. Everything a consumer
sees (`to_json`, the text/mermaid/dot renderings) is ordered deterministically.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ratatouille_nb.lineage.errors import LineageError, UnknownNodeError

#: model: a table built by a pipeline; view: a view model (or a view on the branch); source: a
#: table on the branch that no pipeline builds; product: `products.<name>`; file: landing files
#: read with source(); external: anything else an edge provider adds (e.g. another workspace).
NODE_KINDS = ("model", "view", "source", "product", "file", "external")
DIRECTIONS = {"upstream": "upstream", "up": "upstream", "downstream": "downstream", "down": "downstream", "both": "both"}
FORMATS = ("text", "mermaid", "dot", "json")
JSON_VERSION = 1


@dataclass
class LineageNode:
    """One table (or file set / product / external thing) in the graph."""

    id: str
    kind: str = "source"
    layer: str | None = None
    model: str | None = None
    language: str | None = None
    materialized: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    description: str | None = None
    exists: bool = False
    snapshot_id: int | None = None
    column_lineage: bool = False
    error: str | None = None
    column_descriptions: dict[str, str] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The table part of `layer.table` (the id itself otherwise)."""
        return self.id.split(".", 1)[1] if self.layer and "." in self.id else self.id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "layer": self.layer,
            "name": self.name,
            "model": self.model,
            "language": self.language,
            "materialized": self.materialized,
            "exists": self.exists,
            "snapshot_id": self.snapshot_id,
            "description": self.description,
            "path": self.path,
            "columns": [
                {"name": n, "type": t, **({"description": self.column_descriptions[n]} if n in self.column_descriptions else {})}
                for n, t in self.columns.items()
            ],
            **({"tests": list(self.tests)} if self.tests else {}),
            **({"tags": list(self.tags)} if self.tags else {}),
            "column_lineage": self.column_lineage,
            "error": self.error,
        }

    def label(self) -> str:
        """A short description: what kind of thing this is and who builds it."""
        if self.kind in ("model", "view") and self.model:
            parts = [f"{'view ' if self.kind == 'view' else ''}model {self.model}"]
            if self.language:
                parts.append(self.language)
            if self.materialized and self.language != "python" and self.kind != "view":
                parts.append(self.materialized)
            if self.materialized == "ephemeral":
                parts.append("inlined as a CTE")
            elif not self.exists:
                parts.append("not built yet")
            return ", ".join(parts)
        text = {"source": "source table", "view": "view", "product": "data product", "file": "landing files", "external": "external"}.get(
            self.kind, self.kind
        )
        if self.kind in ("source", "view") and not self.exists:
            text += ", not on this ref"
        return text


@dataclass(frozen=True, order=True)
class LineageEdge:
    """`target` is built from `source`; kind says how (ref, sql, file, python, publish, view, …)."""

    source: str
    target: str
    kind: str = "ref"

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "kind": self.kind}


@dataclass(frozen=True, order=True)
class ColumnEdge:
    """Column `target_column` of `target` is computed from column `source_column` of `source`."""

    source: str
    source_column: str
    target: str
    target_column: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "source_column": self.source_column, "target": self.target, "target_column": self.target_column}


def guess_kind(node_id: str) -> str:
    if "/" in node_id:
        return "file"
    if node_id.startswith("products."):
        return "product"
    if ":" in node_id:
        return "external"
    return "source"


class LineageGraph:
    """Nodes, table edges and (optionally) column edges; `focus`/`direction` when it is a subgraph."""

    def __init__(
        self,
        nodes: Iterable[LineageNode] = (),
        edges: Iterable[LineageEdge] = (),
        column_edges: Iterable[ColumnEdge] = (),
        *,
        focus: str | None = None,
        direction: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self.edges: set[LineageEdge] = set()
        self.column_edges: set[ColumnEdge] = set()
        self.focus = focus
        self.direction = direction
        self.meta: dict[str, Any] = dict(meta or {})
        for node in nodes:
            self.nodes[node.id] = node
        for edge in edges:
            self.add_edge(edge.source, edge.target, edge.kind)
        for cedge in column_edges:
            self.column_edges.add(cedge)

    # -- building -----------------------------------------------------------------------------

    def node(self, node_id: str, **fields: Any) -> LineageNode:
        """Get or create a node; given fields overwrite (None values are ignored)."""
        node = self.nodes.get(node_id)
        if node is None:
            layer = node_id.split(".", 1)[0] if "." in node_id and "/" not in node_id and ":" not in node_id else None
            node = LineageNode(id=node_id, kind=guess_kind(node_id), layer=layer)
            self.nodes[node_id] = node
        for key, value in fields.items():
            if value is not None:
                setattr(node, key, value)
        return node

    def add_edge(self, source: str, target: str, kind: str = "ref") -> None:
        if source == target:
            return
        self.node(source)
        self.node(target)
        self.edges.add(LineageEdge(source, target, kind))

    def add_column_edge(self, source: str, source_column: str, target: str, target_column: str) -> None:
        self.node(source)
        self.node(target)
        self.column_edges.add(ColumnEdge(source, source_column, target, target_column))

    # -- queries ------------------------------------------------------------------------------

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.nodes))

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        focus = f", focus={self.focus!r} ({self.direction})" if self.focus else ""
        return f"<LineageGraph {len(self.nodes)} nodes, {len(self.edges)} edges, {len(self.column_edges)} column edges{focus}>"

    def resolve(self, name: str) -> str:
        """A node id from a node id (`layer.table`) or a pipeline name; UnknownNodeError otherwise."""
        if name in self.nodes:
            return name
        by_model = sorted(n.id for n in self.nodes.values() if n.model == name)
        if by_model:
            return by_model[0]
        lowered = {n.lower(): n for n in self.nodes}
        if name.lower() in lowered:
            return lowered[name.lower()]
        models = sorted({n.model for n in self.nodes.values() if n.model})
        tables = sorted(n for n, node in self.nodes.items() if node.kind in ("model", "view", "source"))
        known = ", ".join(models + tables)
        raise UnknownNodeError(
            f"'{name}' is not a model or table in this workspace's lineage",
            hint=f"use a pipeline name or layer.table; known: {known}" if known else "this workspace has no pipelines or tables yet",
        )

    def parents(self, node: str) -> list[str]:
        """Direct upstream node ids."""
        node = self.resolve(node)
        return sorted({e.source for e in self.edges if e.target == node})

    def children(self, node: str) -> list[str]:
        """Direct downstream node ids."""
        node = self.resolve(node)
        return sorted({e.target for e in self.edges if e.source == node})

    def _closure(self, node: str, direction: str) -> set[str]:
        start = self.resolve(node)
        nxt: dict[str, set[str]] = {}
        for e in self.edges:
            a, b = (e.target, e.source) if direction == "upstream" else (e.source, e.target)
            nxt.setdefault(a, set()).add(b)
        out: set[str] = set()
        stack = [start]
        while stack:
            for n in nxt.get(stack.pop(), ()):
                if n not in out and n != start:
                    out.add(n)
                    stack.append(n)
        return out

    def upstream(self, node: str) -> list[str]:
        """Every node `node` is (transitively) built from, in topological order."""
        found = self._closure(node, "upstream")
        return [n for n in self.order() if n in found]

    def downstream(self, node: str) -> list[str]:
        """Every node (transitively) built from `node`, in topological order."""
        found = self._closure(node, "downstream")
        return [n for n in self.order() if n in found]

    def subgraph(self, node: str, direction: str | None = "both") -> LineageGraph:
        """`node` with its upstream, downstream or both; column edges kept where both ends stay."""
        direction = normalize_direction(direction) or "both"
        focus = self.resolve(node)
        keep = {focus}
        if direction in ("upstream", "both"):
            keep |= self._closure(focus, "upstream")
        if direction in ("downstream", "both"):
            keep |= self._closure(focus, "downstream")
        return LineageGraph(
            [replace(self.nodes[n], columns=dict(self.nodes[n].columns)) for n in keep],
            [e for e in self.edges if e.source in keep and e.target in keep],
            [c for c in self.column_edges if c.source in keep and c.target in keep],
            focus=focus,
            direction=direction,
            meta=self.meta,
        )

    def order(self) -> list[str]:
        """All node ids, upstream before downstream (ties by id)."""
        ups: dict[str, set[str]] = {n: set() for n in self.nodes}
        for e in self.edges:
            ups[e.target].add(e.source)
        done: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str) -> None:
            if state.get(n):
                return  # done, or on the stack (a cycle an edge provider added: broken here)
            state[n] = 1
            for up in sorted(ups[n]):
                visit(up)
            state[n] = 2
            done.append(n)

        for n in sorted(self.nodes):
            visit(n)
        return done

    def depth(self) -> dict[str, int]:
        """Longest distance from a root: a column index for drawing left to right."""
        ups: dict[str, set[str]] = {n: set() for n in self.nodes}
        for e in self.edges:
            ups[e.target].add(e.source)
        out: dict[str, int] = {}
        for n in self.order():
            out[n] = 1 + max((out[u] for u in ups[n] if u in out), default=-1)
        return out

    @property
    def has_columns(self) -> bool:
        return any(n.column_lineage for n in self.nodes.values())

    def column_map(self, node: str) -> dict[str, list[tuple[str, str]]]:
        """Output column -> sorted (table, column) sources, for a node with column lineage."""
        node = self.resolve(node)
        out: dict[str, list[tuple[str, str]]] = {c: [] for c in self.nodes[node].columns}
        for c in sorted(self.column_edges):
            if c.target == node:
                out.setdefault(c.target_column, []).append((c.source, c.source_column))
        return out

    def column_sources(self, node: str, column: str, *, transitive: bool = False) -> set[tuple[str, str]]:
        """The (table, column) pairs feeding `node.column`; transitive=True follows them to their origins."""
        node = self.resolve(node)
        incoming: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for c in self.column_edges:
            incoming.setdefault((c.target, c.target_column), set()).add((c.source, c.source_column))
        direct = incoming.get((node, column), set())
        if not transitive:
            return set(direct)
        out: set[tuple[str, str]] = set()
        seen: set[tuple[str, str]] = set()
        stack = list(direct)
        while stack:
            item = stack.pop()
            if item in seen:
                continue
            seen.add(item)
            feeding = incoming.get(item)
            if feeding:
                stack.extend(feeding)
            else:
                out.add(item)
        return out

    # -- output -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain data for the notebook widget: nodes (by id, with `depth`), edges, column edges."""
        depth = self.depth()
        nodes = []
        for n in sorted(self.nodes):
            item = self.nodes[n].to_json()
            item["depth"] = depth[n]
            nodes.append(item)
        return {
            "version": JSON_VERSION,
            "focus": self.focus,
            "direction": self.direction,
            "meta": dict(sorted(self.meta.items())),
            "nodes": nodes,
            "edges": [e.to_json() for e in sorted(self.edges)],
            "column_edges": [c.to_json() for c in sorted(self.column_edges)],
        }

    def _ids(self) -> dict[str, str]:
        return {n: f"n{i}" for i, n in enumerate(sorted(self.nodes))}

    def to_mermaid(self, columns: bool | None = None) -> str:
        """A Mermaid flowchart (left to right); with columns, each table is a box of its columns."""
        columns = self.has_columns if columns is None else columns
        ids = self._ids()
        shapes = {
            "model": ('["', '"]'),
            "view": ('(["', '"])'),
            "source": ('[("', '")]'),
            "product": ('{{"', '"}}'),
            "file": ('[/"', '"/]'),
            "external": ('>"', '"]'),
        }
        lines = ["flowchart LR"]
        col_ids: dict[tuple[str, str], str] = {}
        for n in sorted(self.nodes):
            node = self.nodes[n]
            if columns and node.columns:
                lines.append(f'  subgraph {ids[n]} ["{_mermaid_text(n)}"]')
                lines.append("    direction TB")
                for i, col in enumerate(node.columns):
                    cid = f"{ids[n]}_c{i}"
                    col_ids[(n, col)] = cid
                    lines.append(f'    {cid}["{_mermaid_text(col)}"]')
                lines.append("  end")
            else:
                left, right = shapes.get(node.kind, shapes["external"])
                lines.append(f"  {ids[n]}{left}{_mermaid_text(n)}{right}")
        column_pairs: set[tuple[str, str]] = set()
        if columns:
            for c in sorted(self.column_edges):
                src, dst = col_ids.get((c.source, c.source_column)), col_ids.get((c.target, c.target_column))
                if src and dst:
                    lines.append(f"  {src} --> {dst}")
                    column_pairs.add((c.source, c.target))
        for e in sorted(self.edges):
            if (e.source, e.target) in column_pairs:
                continue
            label = "" if e.kind == "ref" else f"|{_mermaid_text(e.kind)}|"
            lines.append(f"  {ids[e.source]} -->{label} {ids[e.target]}")
        colors = {"model": "#dbeafe", "view": "#e0e7ff", "source": "#f3f4f6", "product": "#fef3c7", "file": "#ecfccb", "external": "#fce7f3"}
        for kind in NODE_KINDS:
            members = [ids[n] for n in sorted(self.nodes) if self.nodes[n].kind == kind]
            if members:
                lines.append(f"  classDef {kind} fill:{colors[kind]},stroke:#555")
                lines.append(f"  class {','.join(members)} {kind}")
        if self.focus:
            lines.append("  classDef focus stroke-width:3px")
            lines.append(f"  class {ids[self.focus]} focus")
        return "\n".join(lines) + "\n"

    def to_dot(self, columns: bool | None = None) -> str:
        """Graphviz DOT (left to right); with columns, HTML-table nodes with one port per column."""
        columns = self.has_columns if columns is None else columns
        colors = {"model": "#dbeafe", "view": "#e0e7ff", "source": "#f3f4f6", "product": "#fef3c7", "file": "#ecfccb", "external": "#fce7f3"}
        shapes = {"model": "box", "view": "box", "source": "cylinder", "product": "hexagon", "file": "folder", "external": "box"}
        lines = [
            "digraph lineage {",
            "  rankdir=LR;",
            '  node [fontname="Helvetica", fontsize=10];',
            '  edge [fontname="Helvetica", fontsize=9];',
        ]
        ports: dict[tuple[str, str], str] = {}
        for n in sorted(self.nodes):
            node = self.nodes[n]
            pen = ", penwidth=2.5" if n == self.focus else ""
            if columns and node.columns:
                rows = [f'<TR><TD BGCOLOR="{colors.get(node.kind, "#ffffff")}"><B>{html.escape(n)}</B></TD></TR>']
                for i, (col, typ) in enumerate(node.columns.items()):
                    ports[(n, col)] = f"c{i}"
                    text = html.escape(col) + (f' <FONT COLOR="#666666">{html.escape(typ)}</FONT>' if typ else "")
                    rows.append(f'<TR><TD PORT="c{i}" ALIGN="LEFT">{text}</TD></TR>')
                table = f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0">{"".join(rows)}</TABLE>'
                lines.append(f"  {_dot_id(n)} [shape=plain, label=<{table}>{pen}];")
            else:
                label = _dot_text(n) + (f"\\n({_dot_text(node.model)})" if node.model else "")
                style = "filled,rounded" if node.kind in ("model", "view") else "filled"
                lines.append(
                    f'  {_dot_id(n)} [label="{label}", shape={shapes.get(node.kind, "box")}, '
                    f'style="{style}", fillcolor="{colors.get(node.kind, "#ffffff")}"{pen}];'
                )
        column_pairs: set[tuple[str, str]] = set()
        if columns:
            for c in sorted(self.column_edges):
                src, dst = ports.get((c.source, c.source_column)), ports.get((c.target, c.target_column))
                if src and dst:
                    lines.append(f"  {_dot_id(c.source)}:{src}:e -> {_dot_id(c.target)}:{dst}:w;")
                    column_pairs.add((c.source, c.target))
        for e in sorted(self.edges):
            if (e.source, e.target) in column_pairs:
                continue
            attrs = "" if e.kind == "ref" else f' [label="{_dot_text(e.kind)}", style=dashed]'
            lines.append(f"  {_dot_id(e.source)} -> {_dot_id(e.target)}{attrs};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_text(self, columns: bool | None = None) -> str:
        """An indented tree (downstream from the roots, or around the focus), then columns if asked."""
        columns = self.has_columns if columns is None else columns
        lines: list[str] = []
        if not self.nodes:
            return "no pipelines or tables yet\n"
        ups: dict[str, list[str]] = {n: [] for n in self.nodes}
        downs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for e in sorted(self.edges):
            if e.source not in ups[e.target]:
                ups[e.target].append(e.source)
            if e.target not in downs[e.source]:
                downs[e.source].append(e.target)
        if self.focus:
            if self.direction in ("upstream", "both"):
                lines.append(f"upstream of {self.focus} (each table is built from the tables below it):")
                lines += self._tree(self.focus, ups)
            if self.direction in ("downstream", "both"):
                if lines:
                    lines.append("")
                lines.append(f"downstream of {self.focus} (each table feeds the tables below it):")
                lines += self._tree(self.focus, downs)
        else:
            shown: set[str] = set()
            roots = [n for n in sorted(self.nodes) if not ups[n]]
            for root in roots:
                lines += self._tree(root, downs, shown)
            for rest in self.order():  # only on a cycle (which an edge provider could add)
                if rest not in shown:
                    lines += self._tree(rest, downs, shown)
        described = [n for n in ([self.focus] if self.focus else []) if n in self.nodes and self.nodes[n].description]
        if described:
            lines.append("")
        for n in described:
            node = self.nodes[n]
            lines.append(f"{n}: {' '.join((node.description or '').split())}")
            for col, text in node.column_descriptions.items():
                lines.append(f"  {col}: {' '.join(text.split())}")
        if columns:
            blocks = [n for n in self.order() if _has_column_block(self.nodes[n])]
            if blocks:
                lines.append("")
            for n in blocks:
                node = self.nodes[n]
                if not node.column_lineage:
                    why = "Python pipeline: table-level lineage only" if node.language == "python" else f"column lineage unavailable: {node.error}"
                    lines.append(f"columns of {n}: ({why})")
                    continue
                lines.append(f"columns of {n}:")
                cmap = self.column_map(n)
                width = max((len(c) for c in cmap), default=0)
                for col, sources in cmap.items():
                    text = ", ".join(f"{t}.{c}" for t, c in sources) if sources else "(no source column: computed)"
                    arrow = "<-" if sources else "  "
                    lines.append(f"  {col.ljust(width)}  {arrow} {text}")
        return "\n".join(lines) + "\n"

    def _tree(self, root: str, nxt: dict[str, list[str]], shown: set[str] | None = None) -> list[str]:
        shown = set() if shown is None else shown
        lines = [f"{root}  ({self.nodes[root].label()})"]
        expanded_root = root not in shown
        shown.add(root)
        if not expanded_root:
            lines[0] += "  (see above)"
            return lines

        def walk(n: str, prefix: str, path: tuple[str, ...]) -> None:
            kids = nxt.get(n, [])
            for i, kid in enumerate(kids):
                last = i == len(kids) - 1
                branch = "└── " if last else "├── "
                seen = kid in shown or kid in path
                lines.append(f"{prefix}{branch}{kid}  ({self.nodes[kid].label()}){'  (see above)' if seen else ''}")
                if not seen:
                    shown.add(kid)
                    walk(kid, prefix + ("    " if last else "│   "), (*path, kid))

        walk(root, "", (root,))
        return lines

    def render(self, fmt: str = "text", columns: bool | None = None) -> str:
        if fmt == "text":
            return self.to_text(columns)
        if fmt == "mermaid":
            return self.to_mermaid(columns)
        if fmt == "dot":
            return self.to_dot(columns)
        if fmt == "json":
            return json.dumps(self.to_json(), indent=2) + "\n"
        raise LineageError(f"unknown lineage format '{fmt}'", hint=f"use one of: {', '.join(FORMATS)}")

    def _repr_markdown_(self) -> str:
        """JupyterLab renders this as a diagram (Mermaid in Markdown) until the widget takes over."""
        return "```mermaid\n" + self.to_mermaid() + "```\n"


def _has_column_block(node: LineageNode) -> bool:
    return node.column_lineage or bool(node.model and (node.error or node.language == "python"))


def normalize_direction(direction: str | None) -> str | None:
    if direction is None:
        return None
    try:
        return DIRECTIONS[direction.lower()]
    except KeyError:
        raise LineageError(f"unknown direction '{direction}'", hint="use 'upstream', 'downstream' or 'both'") from None


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


_DOT_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(node_id: str) -> str:
    return node_id if _DOT_PLAIN.match(node_id) else '"' + node_id.replace("\\", "\\\\").replace('"', '\\"') + '"'

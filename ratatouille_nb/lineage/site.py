"""`rat docs`: a static HTML site of a workspace — models, columns, types, tests, descriptions,
the lineage graph and each table's last run — from the same lineage data as `rat lineage`.

One self-contained `index.html` (no network, no build step): the data is embedded as JSON, the
graph is an SVG laid out here (columns by dependency depth), and a few lines of script show the
node chosen in the list or the graph (`#node=<id>` in the URL).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.lineage.graph import LineageGraph
    from ratatouille_nb.pipeline.loader import Project

BOX_W, BOX_H, GAP_X, GAP_Y = 190, 34, 70, 16


def site_data(session: Session, ref: str | None = None, project: Project | None = None) -> dict[str, Any]:
    """Everything the site shows, as JSON-ready data."""
    from ratatouille_nb.lineage.build import build_lineage
    from ratatouille_nb.pipeline.loader import load_project
    from ratatouille_nb.pipeline.runs import RunHistory

    project = project or load_project(session.workspace.root)
    graph = build_lineage(session, columns=True, ref=ref, project=project)
    by_target = project.by_target()
    history = RunHistory(session.settings.home)
    try:
        runs = history.last_runs(session.workspace.name, sorted(graph.nodes))
    finally:
        history.close()
    nodes = []
    for node_id in graph.order():
        node = graph.nodes[node_id]
        model = by_target.get(node_id)
        item = node.to_json()
        item["label"] = node.label()
        item["columns"] = [{"name": n, "type": t, "description": node.column_descriptions.get(n)} for n, t in node.columns.items()]
        item["tests"] = [
            {"name": t.name, "kind": t.kind, "column": t.column, "severity": t.severity} for t in (model.all_tests() if model else [])
        ]
        item["materialized"] = model.materialized if model else node.materialized
        item["resource_type"] = model.resource_type if model else node.kind
        if node_id in runs:
            finished, status, rows = runs[node_id]
            item["last_run"] = {
                "at": datetime.fromtimestamp(finished, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if finished else None,
                "status": status,
                "rows": rows,
            }
        else:
            item["last_run"] = None
        nodes.append(item)
    for source in project.sources.values():
        key = source.relation if source.is_table else (source.location or f"{source.source}.{source.name}")
        for item in nodes:
            if item["id"] == key and not item.get("description"):
                item["description"] = source.description
    return {
        "workspace": session.workspace.name,
        "ref": ref or session.branch,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nodes": nodes,
        "edges": [e.to_json() for e in sorted(graph.edges)],
        "layout": layout(graph),
    }


def layout(graph: LineageGraph) -> dict[str, tuple[int, int]]:
    """Node -> (x, y): a column per dependency depth, nodes stacked in each column."""
    depth: dict[str, int] = {}
    ups: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        if e.target in ups and e.source in graph.nodes:
            ups[e.target].append(e.source)
    for node in graph.order():
        depth[node] = 1 + max((depth.get(u, 0) for u in ups[node]), default=-1)
    rows: dict[int, int] = {}
    out = {}
    for node in graph.order():
        col = depth[node]
        out[node] = (20 + col * (BOX_W + GAP_X), 20 + rows.get(col, 0) * (BOX_H + GAP_Y))
        rows[col] = rows.get(col, 0) + 1
    return out


def _svg(data: dict[str, Any]) -> str:
    pos = data["layout"]
    if not pos:
        return '<p class="empty">no models or tables yet</p>'
    width = max(x for x, _ in pos.values()) + BOX_W + 20
    height = max(y for _, y in pos.values()) + BOX_H + 20
    parts = [f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for e in data["edges"]:
        if e["source"] in pos and e["target"] in pos:
            (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
            a, b = (x1 + BOX_W, y1 + BOX_H // 2), (x2, y2 + BOX_H // 2)
            mid = (a[0] + b[0]) // 2
            parts.append(f'<path class="edge" d="M{a[0]},{a[1]} C{mid},{a[1]} {mid},{b[1]} {b[0]},{b[1]}"/>')
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    for node_id, (x, y) in pos.items():
        label = node_id if len(node_id) <= 26 else node_id[:25] + "…"
        parts.append(
            f'<g class="node kind-{html.escape(kinds.get(node_id, "source"))}" data-id="{html.escape(node_id)}" transform="translate({x},{y})">'
            f'<rect width="{BOX_W}" height="{BOX_H}" rx="6"/><text x="10" y="22">{html.escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}}
nav{{width:260px;overflow:auto;border-right:1px solid #ddd;padding:12px;background:#fafafa}}
nav h1{{font-size:16px;margin:0 0 8px}} nav h2{{font-size:12px;text-transform:uppercase;color:#777;margin:14px 0 4px}}
nav a{{display:block;padding:2px 4px;color:#1a5fb4;text-decoration:none;font-size:13px}} nav a.active{{background:#dbe7fb}}
main{{flex:1;overflow:auto;padding:16px}}
#graph .edge{{fill:none;stroke:#999;stroke-width:1.3}} #graph .node{{cursor:pointer}}
#graph rect{{fill:#fff;stroke:#7a8ba6}} #graph .kind-model rect{{fill:#e8f0fe}} #graph .kind-view rect{{fill:#eef7ea}}
#graph .kind-file rect,#graph .kind-source rect{{fill:#fdf5e6}} #graph .selected rect{{stroke:#c01c28;stroke-width:2.5}}
#graph text{{font-size:12px}} table{{border-collapse:collapse;margin:8px 0}} td,th{{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:left}}
.muted{{color:#777}} .desc{{white-space:pre-wrap}}
</style></head>
<body>
<nav><h1>{title}</h1><div class="muted">ref {ref} · {generated}</div>{toc}</nav>
<main><section id="details"><p class="muted">Choose a model in the list or the graph.</p></section>
<h3>Lineage</h3><div id="graph-box">{svg}</div></main>
<script type="application/json" id="rat-data">{data}</script>
<script>
const data = JSON.parse(document.getElementById('rat-data').textContent);
const byId = Object.fromEntries(data.nodes.map(n => [n.id, n]));
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({{'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}})[c]);
function show(id) {{
  const n = byId[id]; if (!n) return;
  document.querySelectorAll('nav a').forEach(a => a.classList.toggle('active', a.dataset.id === id));
  document.querySelectorAll('#graph .node').forEach(g => g.classList.toggle('selected', g.dataset.id === id));
  const up = data.edges.filter(e => e.target === id).map(e => e.source);
  const down = data.edges.filter(e => e.source === id).map(e => e.target);
  const run = n.last_run ? `${{esc(n.last_run.status)}} at ${{esc(n.last_run.at)}}, ${{n.last_run.rows}} rows` : 'never run';
  document.getElementById('details').innerHTML = `<h2 id="node-title">${{esc(n.id)}}</h2>
    <div class="muted">${{esc(n.label)}}${{n.path ? ' · ' + esc(n.path) : ''}}</div>
    <p class="desc" id="node-description">${{esc(n.description || 'No description.')}}</p>
    <p>Last run: <span id="last-run">${{run}}</span></p>
    <h3>Columns</h3><table id="columns"><tr><th>column</th><th>type</th><th>description</th></tr>
    ${{n.columns.map(c => `<tr><td>${{esc(c.name)}}</td><td>${{esc(c.type)}}</td><td>${{esc(c.description)}}</td></tr>`).join('')}}</table>
    <h3>Tests</h3><table id="tests"><tr><th>test</th><th>column</th><th>severity</th></tr>
    ${{n.tests.map(t => `<tr><td>${{esc(t.name)}}</td><td>${{esc(t.column)}}</td><td>${{esc(t.severity)}}</td></tr>`).join('')}}</table>
    <p>Upstream: ${{up.map(u => `<a href="#node=${{encodeURIComponent(u)}}">${{esc(u)}}</a>`).join(', ') || '—'}}<br>
    Downstream: ${{down.map(d => `<a href="#node=${{encodeURIComponent(d)}}">${{esc(d)}}</a>`).join(', ') || '—'}}</p>`;
}}
function route() {{ const m = location.hash.match(/node=([^&]+)/); if (m) show(decodeURIComponent(m[1])); }}
document.querySelectorAll('#graph .node').forEach(g => g.addEventListener('click', () => {{ location.hash = 'node=' + encodeURIComponent(g.dataset.id); }}));
window.addEventListener('hashchange', route); route();
</script></body></html>
"""


def write_site(session: Session, out: Path, *, ref: str | None = None, project: Project | None = None) -> Path:
    """Write the site into `out` (created); returns its index.html."""
    data = site_data(session, ref, project)
    groups: dict[str, list[dict[str, Any]]] = {}
    for node in data["nodes"]:
        groups.setdefault(node.get("layer") or node["kind"], []).append(node)
    toc = "".join(
        f"<h2>{html.escape(group)}</h2>"
        + "".join(f'<a href="#node={html.escape(n["id"])}" data-id="{html.escape(n["id"])}">{html.escape(n["name"])}</a>' for n in nodes)
        for group, nodes in sorted(groups.items())
    )
    page = PAGE.format(
        title=html.escape(f"{data['workspace']} docs"),
        ref=html.escape(data["ref"]),
        generated=html.escape(data["generated"]),
        toc=toc,
        svg=_svg(data),
        data=json.dumps(data, default=str).replace("</", "<\\/"),
    )
    out.mkdir(parents=True, exist_ok=True)
    index = out / "index.html"
    index.write_text(page)
    (out / "site.json").write_text(json.dumps(data, indent=2, default=str))
    return index

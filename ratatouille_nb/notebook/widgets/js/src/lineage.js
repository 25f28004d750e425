// The lineage graph widget's view (anywidget ESM): cytoscape.js draws the DAG, dagre lays it out
// left to right. Python owns the data (`graph`, `details`); this file owns the drawing and sends
// back what the user picks (`selected`, `selected_column`, `mode`, `highlight`).
//
// Rebuild with `npm run build` in this folder: it writes ../static/lineage.js and lineage.css.

import cytoscape from "cytoscape";
import cytoscapeDagre from "cytoscape-dagre";
import dagre from "dagre";
import { renderMarkdown } from "./markdown.js";

// anywidget loads this module once per widget (each its own copy, with its own `cytoscape`), so
// the dagre layout is registered on this module's cytoscape, never on a page-wide flag: a
// page-wide flag left every graph after the first without the layout ("No such layout dagre").
function ensureDagre() {
  if (typeof cytoscape("layout", "dagre") !== "function") cytoscape.use(cytoscapeDagre);
}
ensureDagre();

const LAYERS = ["bronze", "silver", "gold", "products"];
const ROW_H = 19; // one column row in column mode
const FONT_PX = 12; // table labels
const COLUMN_FONT_PX = 11; // column rows (code font)
const BOX_PAD = 4; // padding of a table box around its column rows
const HEADER_H = 34; // room for the table label above its box (two lines)
const MAX_ZOOM_ON_FIT = 1.25;
const SEP = "\u0000";

// -- small helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const colKey = (table, column) => `${table}${SEP}${column}`;

function when(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function fmtInt(n) {
  return typeof n === "number" ? n.toLocaleString() : String(n ?? "");
}

// -- theme --------------------------------------------------------------------------------------

const probe = document.createElement("canvas").getContext("2d");

/** Any CSS color as an opaque #rrggbb, blended over `over` when it has alpha. */
function solid(color, over = "#ffffff") {
  const parse = (c) => {
    probe.fillStyle = "#000000";
    probe.fillStyle = c;
    const v = probe.fillStyle;
    if (v.startsWith("#")) return [parseInt(v.slice(1, 3), 16), parseInt(v.slice(3, 5), 16), parseInt(v.slice(5, 7), 16), 1];
    const m = v.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 1];
    const parts = m[1].split(",").map((p) => parseFloat(p));
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const [r, g, b, a] = parse(color);
  const [br, bg, bb] = a < 1 ? parse(over) : [0, 0, 0];
  const mix = (x, y) => Math.round(a * x + (1 - a) * y);
  return "#" + [mix(r, br), mix(g, bg), mix(b, bb)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** `color` at `alpha` over `over`, as an opaque #rrggbb (a tint for highlighted rows). */
function tint(color, over, alpha) {
  const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
  const [r, g, b] = hex(color);
  return solid(`rgba(${r}, ${g}, ${b}, ${alpha})`, over);
}

function readPalette(root) {
  const cs = getComputedStyle(root);
  const raw = (name, fallback) => cs.getPropertyValue(`--rat-lineage-${name}`).trim() || fallback;
  const bg = solid(raw("bg", "#ffffff"));
  const c = (name, fallback) => solid(raw(name, fallback), bg);
  const pal = {
    bg,
    fg: c("fg", "#000000"),
    muted: c("fg-muted", "#757575"),
    edge: c("edge", "#9e9e9e"),
    select: c("select", "#1976d2"),
    upstream: c("upstream", "#1976d2"),
    downstream: c("downstream", "#f57c00"),
    error: c("error", "#d32f2f"),
    columnBg: c("column-bg", "#ffffff"),
    font: cs.fontFamily || "sans-serif",
    code: cs.getPropertyValue("--jp-code-font-family").trim() || "monospace",
    fills: {},
  };
  for (const key of [...LAYERS, "file", "external", "other"]) {
    pal.fills[key] = { fill: c(`${key}-fill`, "#eeeeee"), stroke: c(`${key}-stroke`, "#757575") };
  }
  pal.columnBg = solid(raw("column-bg", pal.bg), bg);
  pal.selectTint = tint(pal.select, pal.columnBg, 0.22);
  pal.upstreamTint = tint(pal.upstream, pal.columnBg, 0.14);
  pal.downstreamTint = tint(pal.downstream, pal.columnBg, 0.16);
  return pal;
}

function measure(text, font) {
  probe.font = font;
  return probe.measureText(text).width;
}

// -- graph data -> cytoscape elements ----------------------------------------------------------

function colorKey(node) {
  if (node.kind === "file" || node.kind === "external") return node.kind;
  if (node.kind === "product") return "products";
  if (LAYERS.includes(node.layer)) return node.layer;
  return "other";
}

const SHAPES = { model: "round-rectangle", view: "round-rectangle", source: "barrel", product: "cut-rectangle", file: "rhomboid", external: "octagon" };

function subtitle(node) {
  const parts = [];
  if (node.kind === "model") {
    if (node.language) parts.push(node.language);
    if (node.materialized && node.language !== "python") parts.push(node.materialized);
    if (!parts.length) parts.push("model");
  } else {
    parts.push({ view: "view", source: "source table", product: "data product", file: "landing files", external: "external" }[node.kind] || node.kind);
  }
  if (!node.exists && ["model", "view", "source"].includes(node.kind)) parts.push(node.kind === "source" ? "missing" : "not built");
  return parts.join(" · ");
}

function nodeData(node, pal) {
  const colors = pal.fills[colorKey(node)] || pal.fills.other;
  const label = `${node.id}\n${subtitle(node)}`;
  const font = `${FONT_PX}px ${pal.font}`;
  const textW = Math.max(...label.split("\n").map((line) => measure(line, font)));
  const extra = node.kind === "file" ? 26 : node.kind === "external" ? 16 : 0;
  return {
    id: node.id,
    kind: node.kind,
    label,
    fill: colors.fill,
    stroke: colors.stroke,
    shape: SHAPES[node.kind] || "round-rectangle",
    w: Math.ceil(textW + 24 + extra),
    h: 40,
    dashed: node.kind === "view",
    missing: !node.exists && ["model", "view", "source"].includes(node.kind),
    error: Boolean(node.error),
  };
}

function tableModeElements(graph, pal) {
  const nodes = graph.nodes.map((n) => ({ group: "nodes", data: nodeData(n, pal), classes: "table" }));
  const edges = graph.edges.map((e) => ({
    group: "edges",
    data: { id: `e${SEP}${e.source}${SEP}${e.target}${SEP}${e.kind}`, source: e.source, target: e.target, kind: e.kind, label: e.kind === "ref" ? "" : e.kind },
    classes: "tedge",
  }));
  return [...nodes, ...edges];
}

/** Column mode: each table is a box (a compound node) of its columns; column edges join them. */
function columnModeElements(graph, pal) {
  const elements = [];
  const codeFont = `${COLUMN_FONT_PX}px ${pal.code}`;
  const columnIds = new Set();
  const sizes = new Map();
  for (const n of graph.nodes) {
    const base = nodeData(n, pal);
    if (!n.columns.length) {
      elements.push({ group: "nodes", data: base, classes: "table" });
      sizes.set(n.id, { w: base.w, h: base.h, columns: false });
      continue;
    }
    // names only (types are in the details panel and the row's tooltip), padded so they line up
    const nameW = Math.max(...n.columns.map((c) => c.name.length));
    const texts = n.columns.map((c) => c.name.padEnd(nameW));
    const rowW = Math.max(...texts.map((t) => measure(t, codeFont))) + 16;
    const headW = Math.max(...base.label.split("\n").map((line) => measure(line, `bold ${FONT_PX}px ${pal.font}`))) + 8;
    const w = Math.ceil(Math.max(rowW, headW, 120));
    elements.push({ group: "nodes", data: { ...base, w, h: 10 }, classes: "table box" });
    n.columns.forEach((c, i) => {
      const id = colKey(n.id, c.name);
      columnIds.add(id);
      elements.push({
        group: "nodes",
        data: { id, parent: n.id, table: n.id, column: c.name, type: c.type, label: texts[i], w: w - 2 * BOX_PAD, h: ROW_H, stroke: base.stroke, index: i },
        classes: "col",
      });
    });
    sizes.set(n.id, { w, h: n.columns.length * ROW_H + 2 * BOX_PAD + HEADER_H, columns: true, count: n.columns.length });
  }
  const joined = new Set();
  for (const c of graph.column_edges) {
    const s = colKey(c.source, c.source_column);
    const t = colKey(c.target, c.target_column);
    if (!columnIds.has(s) || !columnIds.has(t)) continue;
    joined.add(`${c.source}${SEP}${c.target}`);
    elements.push({ group: "edges", data: { id: `c${SEP}${s}${SEP}${t}`, source: s, target: t, table_source: c.source, table_target: c.target }, classes: "cedge" });
  }
  for (const e of graph.edges) {
    if (joined.has(`${e.source}${SEP}${e.target}`)) continue; // drawn column by column
    elements.push({
      group: "edges",
      data: { id: `e${SEP}${e.source}${SEP}${e.target}${SEP}${e.kind}`, source: e.source, target: e.target, kind: e.kind, label: e.kind === "ref" ? "" : e.kind },
      classes: "tedge loose",
    });
  }
  return { elements, sizes };
}

/** Positions for column mode: dagre on the table boxes, then each box's rows stacked inside it. */
function columnModePositions(graph, sizes) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 56, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) {
    const s = sizes.get(n.id);
    g.setNode(n.id, { width: s.w, height: s.h });
  }
  for (const e of graph.edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const positions = new Map();
  for (const n of graph.nodes) {
    const { x, y } = g.node(n.id);
    const s = sizes.get(n.id);
    if (!s.columns) {
      positions.set(n.id, { x, y });
      continue;
    }
    const top = y - s.h / 2 + HEADER_H + BOX_PAD;
    n.columns.forEach((c, i) => positions.set(colKey(n.id, c.name), { x, y: top + ROW_H * (i + 0.5) }));
  }
  return positions;
}

// -- highlighting (mirrors LineageGraphWidget.highlighted() in Python) ------------------------

function closure(adjacency, start) {
  const seen = new Set();
  const stack = [start];
  while (stack.length) {
    for (const next of adjacency.get(stack.pop()) || []) {
      if (!seen.has(next) && next !== start) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return seen;
}

function adjacencies(pairs) {
  const up = new Map();
  const down = new Map();
  for (const [s, t] of pairs) {
    if (!up.has(t)) up.set(t, []);
    up.get(t).push(s);
    if (!down.has(s)) down.set(s, []);
    down.get(s).push(t);
  }
  return { up, down };
}

/** Which tables / columns the selection highlights, and in which role ('sel', 'up', 'down'). */
function highlightRoles(graph, selected, column, direction, mode) {
  const tables = new Map();
  const columns = new Map();
  if (!selected || direction === "none") return { tables, columns, active: false };
  if (mode === "column" && column) {
    const { up, down } = adjacencies(graph.column_edges.map((c) => [colKey(c.source, c.source_column), colKey(c.target, c.target_column)]));
    const start = colKey(selected, column);
    if (direction !== "downstream") for (const k of closure(up, start)) columns.set(k, "up");
    if (direction !== "upstream") for (const k of closure(down, start)) columns.set(k, "down");
    columns.set(start, "sel");
    for (const [k, role] of columns) {
      const table = k.split(SEP)[0];
      if (!tables.has(table) || role === "sel") tables.set(table, role);
    }
    return { tables, columns, active: true, byColumn: true };
  }
  const { up, down } = adjacencies(graph.edges.map((e) => [e.source, e.target]));
  if (direction !== "downstream") for (const n of closure(up, selected)) tables.set(n, "up");
  if (direction !== "upstream") for (const n of closure(down, selected)) tables.set(n, "down");
  tables.set(selected, "sel");
  return { tables, columns, active: true, byColumn: false };
}

// -- stylesheet -------------------------------------------------------------------------------

function stylesheet(pal) {
  return [
    {
      selector: "node",
      style: {
        shape: "data(shape)",
        width: "data(w)",
        height: "data(h)",
        "background-color": "data(fill)",
        "border-color": "data(stroke)",
        "border-width": 1.5,
        label: "data(label)",
        color: pal.fg,
        "font-family": pal.font,
        "font-size": FONT_PX,
        "text-valign": "center",
        "text-halign": "center",
        "text-wrap": "wrap",
        "line-height": 1.35,
        "overlay-opacity": 0,
      },
    },
    { selector: "node[?dashed]", style: { "border-style": "dashed" } },
    { selector: "node[?missing]", style: { "background-opacity": 0.4, "border-style": "dotted" } },
    { selector: "node[?error]", style: { "border-color": pal.error } },
    {
      selector: "node.box",
      style: {
        shape: "round-rectangle",
        "text-valign": "top",
        "text-halign": "center",
        "text-margin-y": -3,
        "font-weight": "bold",
        padding: BOX_PAD,
        "min-width": "data(w)",
        "compound-sizing-wrt-labels": "exclude",
      },
    },
    {
      selector: "node.col",
      style: {
        shape: "rectangle",
        "background-color": pal.columnBg,
        "border-width": 0.5,
        "border-color": "data(stroke)",
        "border-style": "solid",
        "background-opacity": 1,
        "font-family": pal.code,
        "font-size": COLUMN_FONT_PX,
        "font-weight": "normal",
        "text-wrap": "none",
      },
    },
    {
      selector: "edge",
      style: {
        width: 1.4,
        "curve-style": "bezier",
        "line-color": pal.edge,
        "target-arrow-color": pal.edge,
        "target-arrow-shape": "triangle",
        "arrow-scale": 0.9,
        label: "data(label)",
        "font-family": pal.font,
        "font-size": 9,
        color: pal.muted,
        "text-background-color": pal.bg,
        "text-background-opacity": 1,
        "text-background-padding": 1,
        "overlay-opacity": 0,
      },
    },
    { selector: "edge.loose", style: { "line-style": "dashed" } },
    {
      selector: "edge.cedge",
      style: {
        width: 1,
        "curve-style": "straight",
        "source-endpoint": "50% 0%",
        "target-endpoint": "-50% 0%",
        "arrow-scale": 0.6,
        label: "",
      },
    },
    { selector: ".faded", style: { opacity: 0.22 } },
    { selector: "node.up", style: { "border-color": pal.upstream, "border-width": 2.5 } },
    { selector: "node.down", style: { "border-color": pal.downstream, "border-width": 2.5 } },
    { selector: "node.col.up", style: { "border-width": 1.5, "background-color": pal.upstreamTint } },
    { selector: "node.col.down", style: { "border-width": 1.5, "background-color": pal.downstreamTint } },
    { selector: "edge.up", style: { "line-color": pal.upstream, "target-arrow-color": pal.upstream, width: 2.4 } },
    { selector: "edge.down", style: { "line-color": pal.downstream, "target-arrow-color": pal.downstream, width: 2.4 } },
    { selector: "edge.cedge.up, edge.cedge.down", style: { width: 1.8 } },
    {
      selector: "node.sel",
      style: {
        "border-color": pal.select,
        "border-width": 3.5,
        "underlay-color": pal.select,
        "underlay-opacity": 0.18,
        "underlay-padding": 6,
        "underlay-shape": "round-rectangle",
      },
    },
    { selector: "node.col.sel", style: { "border-width": 2, "underlay-padding": 2, "background-color": pal.selectTint, "font-weight": "bold" } },
  ];
}

// -- the view ---------------------------------------------------------------------------------

function render({ model, el }) {
  const root = h("div", { class: "rat-lineage" });
  el.append(root);

  // toolbar
  const tableBtn = h("button", { type: "button", title: "One box per table" }, "Tables");
  const columnBtn = h("button", { type: "button", title: "Columns inside each table, with column-level lineage" }, "Columns");
  const highlightSel = h(
    "select",
    { title: "What to highlight around the selected table" },
    h("option", { value: "both" }, "upstream + downstream"),
    h("option", { value: "upstream" }, "upstream"),
    h("option", { value: "downstream" }, "downstream"),
    h("option", { value: "none" }, "nothing"),
  );
  const datalist = h("datalist", { id: `rat-lineage-ids-${Math.random().toString(36).slice(2)}` });
  const find = h("input", { class: "rat-lineage-find", type: "search", placeholder: "find a table…", list: datalist.id });
  const fitBtn = h("button", { type: "button", title: "Fit the whole graph in view" }, "Fit");
  const zoomIn = h("button", { type: "button", title: "Zoom in" }, "+");
  const zoomOut = h("button", { type: "button", title: "Zoom out" }, "−");
  const resetBtn = h("button", { type: "button", title: "Clear the selection and lay the graph out again" }, "Reset");
  const refreshBtn = h("button", { type: "button", title: "Rebuild the graph from the workspace" }, "Refresh");
  const info = h("span", { class: "rat-lineage-info" });
  root.append(
    h(
      "div",
      { class: "rat-lineage-toolbar" },
      h("span", { class: "rat-lineage-segmented" }, tableBtn, columnBtn),
      h("label", {}, "Highlight"),
      highlightSel,
      find,
      datalist,
      h("span", { class: "rat-lineage-segmented" }, zoomOut, zoomIn),
      fitBtn,
      resetBtn,
      refreshBtn,
    ),
  );

  // graph + details panel
  const canvas = h("div", { class: "rat-lineage-canvas" });
  const empty = h("div", { class: "rat-lineage-empty" });
  const cyHost = h("div", { style: "position:absolute;inset:0" });
  canvas.append(cyHost, empty);
  const panel = h("div", { class: "rat-lineage-panel" });
  const body = h("div", { class: "rat-lineage-body" }, canvas, panel);
  root.append(body);

  // legend + status
  const legend = h("div", { class: "rat-lineage-legend" });
  const status = h("span", { class: "rat-lineage-status" });
  root.append(legend);

  let pal = readPalette(root);
  let cy = null;
  let userMoved = false;
  let pending = true;
  let lastSize = [0, 0];

  const graph = () => model.get("graph") || { nodes: [], edges: [], column_edges: [], meta: {} };
  const nodeById = () => new Map(graph().nodes.map((n) => [n.id, n]));

  function setHeight() {
    const px = Math.max(200, model.get("height") || 480);
    body.style.height = `${px}px`;
  }

  function select(id, column) {
    model.set("selected", id || null);
    model.set("selected_column", (id && column) || null);
    model.save_changes();
  }

  function fit() {
    if (!cy || !cy.elements().length) return;
    cy.fit(undefined, 24);
    if (cy.zoom() > MAX_ZOOM_ON_FIT) {
      cy.zoom(MAX_ZOOM_ON_FIT);
      cy.center();
    }
    userMoved = false;
  }

  function draw() {
    // cytoscape needs a container that is in the document and has a size (its first layout
    // reads them): until then (output not attached yet, hidden tab, …) the ResizeObserver waits.
    if (!canvas.isConnected || !canvas.clientWidth || !canvas.clientHeight) {
      pending = true;
      return;
    }
    pending = false;
    lastSize = [canvas.clientWidth, canvas.clientHeight];
    pal = readPalette(root);
    const g = graph();
    const mode = model.get("mode");
    if (cy) cy.destroy();
    cy = cytoscape({
      container: cyHost,
      style: stylesheet(pal),
      minZoom: 0.08,
      maxZoom: 4,
      boxSelectionEnabled: false,
      autounselectify: true,
      layout: { name: "preset" },
    });
    canvas.__cy = cy; // for browser tests and debugging: document.querySelector(".rat-lineage-canvas").__cy
    if (mode === "column") {
      const { elements, sizes } = columnModeElements(g, pal);
      cy.add(elements);
      const positions = columnModePositions(g, sizes);
      cy.nodes().forEach((n) => {
        const p = positions.get(n.id());
        if (p && !n.isParent()) n.position(p);
      });
    } else {
      cy.add(tableModeElements(g, pal));
      ensureDagre();
      cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 45, edgeSep: 10, fit: false, animate: false }).run();
    }
    cy.on("tap", "node", (evt) => {
      const n = evt.target;
      if (n.hasClass("col")) select(n.data("table"), n.data("column"));
      else select(n.id(), null);
    });
    cy.on("tap", (evt) => {
      if (evt.target === cy) select(null, null);
    });
    cy.on("mouseover", "node", (evt) => {
      const n = evt.target;
      cyHost.title = n.hasClass("col") ? `${n.data("table")}.${n.data("column")}${n.data("type") ? `: ${n.data("type")}` : ""}` : n.id();
    });
    cy.on("mouseout", "node", () => {
      cyHost.title = "";
    });
    cy.on("scrollzoom dragpan pinchzoom", () => {
      userMoved = true;
    });
    empty.textContent = g.nodes.length
      ? mode === "column" && !g.nodes.some((n) => n.columns.length)
        ? "no column information yet: build the tables, or open the graph with --columns"
        : ""
      : "no pipelines or tables in this workspace yet";
    fit();
    applyHighlight();
    drawInfo();
    drawLegend();
  }

  function redraw() {
    draw();
    if (pending) {
      drawInfo();
      drawLegend();
    }
  }

  function applyHighlight() {
    if (!cy) return;
    const g = graph();
    const mode = model.get("mode");
    const selected = model.get("selected");
    const column = model.get("selected_column");
    const { tables, columns, active, byColumn } = highlightRoles(g, selected, column, model.get("highlight"), mode);
    cy.batch(() => {
      cy.elements().removeClass("faded up down sel");
      if (selected) {
        const n = cy.getElementById(selected);
        if (n.nonempty() && !(byColumn && column)) n.addClass("sel");
        if (column && mode === "column") cy.getElementById(colKey(selected, column)).addClass("sel");
      }
      if (!active) return;
      cy.nodes().forEach((n) => {
        if (n.hasClass("col")) {
          if (byColumn) {
            const role = columns.get(n.id());
            if (role) n.addClass(role === "sel" ? "sel" : role);
            else n.addClass("faded");
          } else if (!tables.has(n.data("table"))) n.addClass("faded");
          return;
        }
        const role = tables.get(n.id());
        if (!role) n.addClass("faded");
        else if (role !== "sel" && !byColumn) n.addClass(role);
      });
      cy.edges().forEach((e) => {
        if (e.hasClass("cedge")) {
          if (byColumn) {
            const s = columns.get(e.source().id());
            const t = columns.get(e.target().id());
            if ((t === "up" || t === "sel") && s === "up") e.addClass("up");
            else if ((s === "down" || s === "sel") && t === "down") e.addClass("down");
            else e.addClass("faded");
            return;
          }
          const s = tables.get(e.data("table_source"));
          const t = tables.get(e.data("table_target"));
          if ((t === "up" || t === "sel") && s === "up") e.addClass("up");
          else if ((s === "down" || s === "sel") && t === "down") e.addClass("down");
          else e.addClass("faded");
          return;
        }
        const s = tables.get(e.source().id());
        const t = tables.get(e.target().id());
        if (!byColumn && (t === "up" || t === "sel") && s === "up") e.addClass("up");
        else if (!byColumn && (s === "down" || s === "sel") && t === "down") e.addClass("down");
        else e.addClass("faded");
      });
    });
  }

  function drawInfo() {
    const g = graph();
    const meta = g.meta || {};
    const bits = [];
    if (meta.workspace) bits.push(meta.workspace);
    if (meta.ref) bits.push(`@ ${meta.ref}`);
    bits.push(`· ${g.nodes.length} node${g.nodes.length === 1 ? "" : "s"}, ${g.edges.length} edge${g.edges.length === 1 ? "" : "s"}`);
    if (g.focus) bits.push(`· around ${g.focus} (${g.direction})`);
    info.textContent = bits.join(" ");
    info.title = info.textContent;
    datalist.replaceChildren(...g.nodes.map((n) => h("option", { value: n.id })));
    const mode = model.get("mode");
    tableBtn.classList.toggle("rat-lineage-on", mode !== "column");
    columnBtn.classList.toggle("rat-lineage-on", mode === "column");
    highlightSel.value = model.get("highlight");
  }

  function drawLegend() {
    const present = new Set(graph().nodes.map(colorKey));
    const items = [];
    for (const key of [...LAYERS, "file", "external", "other"]) {
      if (!present.has(key)) continue;
      const c = pal.fills[key];
      items.push(
        h("span", {}, h("span", { class: "rat-lineage-swatch", style: `background:${c.fill};border-color:${c.stroke}` }), key === "other" ? "other" : key),
      );
    }
    items.push(h("span", {}, h("span", { class: "rat-lineage-line", style: `border-color:${pal.upstream}` }), "upstream"));
    items.push(h("span", {}, h("span", { class: "rat-lineage-line", style: `border-color:${pal.downstream}` }), "downstream"));
    items.push(h("span", {}, "dashed border: view · faint: not built"));
    status.textContent = model.get("error") || "";
    legend.replaceChildren(...items, h("span", { class: "rat-lineage-spacer" }), status, info);
  }

  function drawPanel() {
    const selected = model.get("selected");
    const node = selected ? nodeById().get(selected) : null;
    if (!node) {
      const g = graph();
      panel.replaceChildren(
        h("h3", {}, "Lineage"),
        h("div", { class: "rat-lineage-hint" }, "Click a table for its columns, schema and last run. Drag to pan, scroll to zoom."),
        h("h4", {}, "Graph"),
        h(
          "table",
          {},
          h("tr", {}, h("th", {}, "tables"), h("td", {}, String(g.nodes.length))),
          h("tr", {}, h("th", {}, "edges"), h("td", {}, String(g.edges.length))),
          h("tr", {}, h("th", {}, "column edges"), h("td", {}, String((g.column_edges || []).length))),
        ),
      );
      return;
    }
    const d = model.get("details") || {};
    const details = d.id === node.id ? d : {};
    const column = model.get("selected_column");
    const parts = [h("h3", {}, node.id), h("div", { class: "rat-lineage-sub" }, details.label || subtitle(node))];
    if (node.description) {
      const description = renderMarkdown(node.description); // DOM nodes only: no HTML from the description
      description.classList.add("rat-lineage-description");
      parts.push(description);
    }
    if (node.error) parts.push(h("div", { class: "rat-lineage-error" }, node.error));
    const rows = [];
    const kv = (k, v) => v !== undefined && v !== null && v !== "" && rows.push(h("tr", {}, h("th", {}, k), h("td", {}, v)));
    kv("schema", node.layer);
    kv("kind", node.kind);
    kv("model", node.model);
    kv("language", node.language);
    kv("materialized", node.materialized);
    kv("path", node.path ? h("code", {}, node.path) : null);
    kv("snapshot", node.snapshot_id !== null && node.snapshot_id !== undefined ? h("code", {}, String(node.snapshot_id)) : node.exists ? "" : "not on this ref");
    parts.push(h("table", {}, rows));

    // columns
    const sources = new Map();
    const columnDescriptions = new Map();
    for (const c of details.columns || []) {
      sources.set(c.name, c.sources || []);
      if (c.description) columnDescriptions.set(c.name, c.description);
    }
    parts.push(h("h4", {}, `Columns (${node.columns.length})`));
    if (node.columns.length) {
      const anySources = node.column_lineage || [...sources.values()].some((s) => s.length);
      parts.push(
        h(
          "table",
          { class: "rat-lineage-cols" },
          node.columns.map((c) => {
            const from = (sources.get(c.name) || []).map((s) => `${s.table}.${s.column}`).join(", ");
            const attrs = {
              class: `rat-lineage-clickable${column === c.name ? " rat-lineage-col-on" : ""}`,
              title: "highlight this column's lineage (column mode)",
              onclick: () => {
                if (model.get("mode") !== "column") model.set("mode", "column");
                select(node.id, column === c.name ? null : c.name);
              },
            };
            const row = h("tr", attrs, h("td", {}, c.name), h("td", { class: "rat-lineage-type" }, c.type || ""));
            const text = columnDescriptions.get(c.name);
            const about = text ? h("tr", attrs, h("td", { class: "rat-lineage-coldesc", colspan: "2" }, renderMarkdown(text))) : null;
            if (!anySources) return about ? [row, about] : row;
            const note = from ? `← ${from}` : node.column_lineage ? "computed (no source column)" : "";
            return [row, about, h("tr", attrs, h("td", { class: "rat-lineage-from", colspan: "2" }, note))];
          }),
        ),
      );
    } else {
      parts.push(h("div", { class: "rat-lineage-hint" }, node.exists ? "schema unknown" : "not built yet: its columns are known once it is built, or in column mode"));
    }

    // last run
    parts.push(h("h4", {}, "Last run"));
    const run = details.last_run;
    if (details.id !== node.id) parts.push(h("div", { class: "rat-lineage-hint" }, "…"));
    else if (!run) parts.push(h("div", { class: "rat-lineage-hint" }, node.model ? "no recorded run" : "not built by a pipeline"));
    else {
      const runRows = [];
      const rk = (k, v) => v !== undefined && v !== null && v !== "" && runRows.push(h("tr", {}, h("th", {}, k), h("td", {}, v)));
      rk("run", h("code", {}, run.run_id));
      rk("status", run.status);
      rk("when", when(run.started_at));
      if (run.finished_at && run.started_at) rk("took", `${(run.finished_at - run.started_at).toFixed(1)} s`);
      rk("command", run.command ? `rat ${run.command}` : "");
      rk("branch", run.branch);
      rk("operation", run.operation);
      rk("rows written", fmtInt(run.rows_written));
      if (run.rows_updated) rk("rows updated", fmtInt(run.rows_updated));
      rk("commit", run.commit_hash ? h("code", {}, run.commit_hash.slice(0, 12)) : "");
      if (run.inputs && run.inputs.length) rk("read", run.inputs.map((i) => `${i.table}${i.snapshot_id ? ` @ ${i.snapshot_id}` : ""}`).join(", "));
      if (run.error) runRows.push(h("tr", {}, h("td", { colspan: "2", class: "rat-lineage-error" }, run.error)));
      parts.push(h("table", {}, runRows));
      if (run.note) parts.push(h("div", { class: "rat-lineage-hint" }, run.note));
    }

    // neighbours
    const g = graph();
    const ups = [...new Set(g.edges.filter((e) => e.target === node.id).map((e) => e.source))].sort();
    const downs = [...new Set(g.edges.filter((e) => e.source === node.id).map((e) => e.target))].sort();
    const chips = (ids) =>
      h(
        "div",
        { class: "rat-lineage-chips" },
        ids.length ? ids.map((id) => h("button", { type: "button", class: "rat-lineage-chip", onclick: () => select(id, null) }, id)) : h("span", { class: "rat-lineage-hint" }, "none"),
      );
    parts.push(h("h4", {}, "Reads from"), chips(ups), h("h4", {}, "Read by"), chips(downs));
    panel.replaceChildren(...parts);
  }

  // wiring
  tableBtn.addEventListener("click", () => {
    model.set("mode", "table");
    model.save_changes();
  });
  columnBtn.addEventListener("click", () => {
    model.set("mode", "column");
    model.save_changes();
  });
  highlightSel.addEventListener("change", () => {
    model.set("highlight", highlightSel.value);
    model.save_changes();
  });
  const findNode = (exact) => {
    const value = find.value.trim();
    if (!value || !cy) return;
    const nodes = graph().nodes;
    const hit = nodes.find((n) => n.id === value) || (!exact && nodes.find((n) => n.id.toLowerCase().includes(value.toLowerCase())));
    if (hit && hit.id !== model.get("selected")) {
      select(hit.id, null);
      cy.animate({ center: { eles: cy.getElementById(hit.id) }, duration: 200 });
    }
  };
  find.addEventListener("keydown", (evt) => {
    if (evt.key === "Enter") findNode(false);
  });
  find.addEventListener("input", () => findNode(true)); // a pick from the suggestions
  find.addEventListener("change", () => findNode(false));
  fitBtn.addEventListener("click", fit);
  zoomIn.addEventListener("click", () => cy && cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } }));
  zoomOut.addEventListener("click", () => cy && cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } }));
  resetBtn.addEventListener("click", () => {
    select(null, null);
    redraw();
  });
  refreshBtn.addEventListener("click", () => model.send({ type: "refresh" }));

  const onGraph = () => {
    redraw();
    drawPanel();
  };
  const onMode = () => {
    redraw();
    drawPanel();
  };
  const onSelection = () => {
    applyHighlight();
    drawPanel();
  };
  const onHighlight = () => {
    highlightSel.value = model.get("highlight");
    applyHighlight();
  };
  const onHeight = () => setHeight();
  const onError = () => drawLegend();
  model.on("change:graph", onGraph);
  model.on("change:mode", onMode);
  model.on("change:selected", onSelection);
  model.on("change:selected_column", onSelection);
  model.on("change:details", drawPanel);
  model.on("change:highlight", onHighlight);
  model.on("change:height", onHeight);
  model.on("change:error", onError);

  // Size: cytoscape needs a laid-out container; re-fit until the user moves the view themselves.
  const resize = new ResizeObserver(() => {
    const size = [canvas.clientWidth, canvas.clientHeight];
    if (!size[0] || !size[1]) return;
    if (pending || !cy) {
      draw();
      return;
    }
    if (size[0] === lastSize[0] && size[1] === lastSize[1]) return;
    lastSize = size;
    cy.resize();
    if (!userMoved) fit();
  });
  resize.observe(canvas);

  // Theme switches (light <-> dark) change the CSS variables the canvas colors come from.
  // JupyterLab flips the attribute before the new theme's CSS is in, so look again a few times.
  const timers = new Set();
  const recolor = () => {
    const fresh = readPalette(root);
    if (JSON.stringify(fresh) === JSON.stringify(pal)) return;
    const pan = cy && cy.pan();
    const zoom = cy && cy.zoom();
    const moved = userMoved;
    redraw();
    if (cy && moved) {
      cy.viewport({ zoom, pan });
      userMoved = true;
    }
  };
  const theme = new MutationObserver(() => {
    for (const ms of [0, 150, 500, 1200, 3000]) {
      const id = setTimeout(() => {
        timers.delete(id);
        recolor();
      }, ms);
      timers.add(id);
    }
  });
  theme.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  setHeight();
  redraw();
  drawPanel();

  return () => {
    resize.disconnect();
    theme.disconnect();
    for (const id of timers) clearTimeout(id);
    model.off("change:graph", onGraph);
    model.off("change:mode", onMode);
    model.off("change:selected", onSelection);
    model.off("change:selected_column", onSelection);
    model.off("change:details", drawPanel);
    model.off("change:highlight", onHighlight);
    model.off("change:height", onHeight);
    model.off("change:error", onError);
    if (cy) cy.destroy();
    root.remove();
  };
}

export default { render };

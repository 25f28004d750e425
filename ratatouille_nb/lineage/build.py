"""Build the lineage graph of a workspace on a ref, and answer "which run produced this snapshot".

Table edges come from the pipeline DAG (`ref()`, Python `depends_on`/`outputs`), plus tables a
SQL model names directly, landing files read with `source()`, views on the branch, the
workspace's declared products and any edges a provider adds (the data-products feature plugs
cross-workspace edges in with `register_edge_provider`). Column edges come from compiling each
SQL model (non-incremental, no transaction) and tracing it with sqlglot in DAG order, so a model
not built yet still gets a schema: the columns inferred from its SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.errors import RatError, TableNotFoundError
from ratatouille_nb.lineage.columns import SOURCE_SCHEMA, ColumnAnalysis, analyze, tables_read
from ratatouille_nb.lineage.errors import LineageError
from ratatouille_nb.lineage.graph import LineageEdge, LineageGraph
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.templating import RenderContext

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.loader import Project
    from ratatouille_nb.pipeline.model import Model

EdgeLike = LineageEdge | tuple[str, str] | tuple[str, str, str]
EdgeProvider = Callable[["Session", str], Iterable[EdgeLike]]

_EDGE_PROVIDERS: list[EdgeProvider] = []


def register_edge_provider(provider: EdgeProvider) -> EdgeProvider:
    """Add edges to every graph `build_lineage` makes: `provider(session, ref)` yields
    `(from_node, to_node, kind)` (or LineageEdge). Usable as a decorator; registering twice is a no-op."""
    if provider not in _EDGE_PROVIDERS:
        _EDGE_PROVIDERS.append(provider)
    return provider


def unregister_edge_provider(provider: EdgeProvider) -> None:
    if provider in _EDGE_PROVIDERS:
        _EDGE_PROVIDERS.remove(provider)


# -- compiling a model without a run ----------------------------------------------------------


@dataclass
class CompiledModel:
    """A SQL model rendered for lineage: its SQL and what it referenced."""

    sql: str
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


_MISSING_VAR = re.compile(r"var\('([^']+)'\) is not set")


def source_placeholder(relative: str) -> str:
    """What `source('landing/…')` compiles to for lineage: a named table sqlglot can trace."""
    return f'"{SOURCE_SCHEMA}"."' + relative.replace('"', '""') + '"'


def compile_model(
    project: Project,
    model: Model,
    *,
    variables: dict[str, Any] | None = None,
    aliases: dict[str, str] | None = None,
) -> CompiledModel:
    """Render a SQL model as a full (non-incremental) build would, without a transaction.

    `ref()` resolves to the target table (`aliases` maps subscription aliases to their product),
    `source()` to a placeholder table named after the files.
    """
    if model.kind != "sql":
        raise LineageError(f"{model.name} is a Python pipeline: it has no SQL to compile")
    assert project.templates is not None
    aliases = aliases or {}

    def resolve_source(key: str) -> str:
        found = project.sources.get(key.replace("/", ".", 1))
        if found is None:
            return source_placeholder(key)
        return found.relation if found.is_table else source_placeholder(found.location or key)

    def render(vars_: dict[str, Any]) -> tuple[str, RenderContext]:
        ctx = RenderContext(
            model_name=model.name,
            this=model.target,
            resolve_ref=lambda key: project.models[key].target if key in project.models else aliases.get(key, key),
            resolve_source=resolve_source,
            incremental=False,
            watermark=lambda column: "1970-01-01",
            variables={**project.variables, **vars_},
            model_config=dict(model.config),
            packages=frozenset(project.packages),
        )
        return project.templates.render(model.path, model.sql or "", ctx), ctx  # type: ignore[union-attr]

    vars_ = dict(variables or {})
    for _attempt in range(50):
        try:
            sql, ctx = render(vars_)
            break
        except PipelineError as exc:
            # a var() with no value and no default: lineage still compiles, with NULL in its place
            missing = _MISSING_VAR.search(str(exc))
            if missing is None or missing.group(1) in vars_:
                raise
            vars_[missing.group(1)] = "NULL"
    else:
        raise LineageError(f"{model.name}: too many var()s without a value to compile for lineage")
    return CompiledModel(sql=sql.strip().rstrip(";").strip(), refs=list(dict.fromkeys(ctx.refs)), sources=list(dict.fromkeys(ctx.sources)))


# -- the graph --------------------------------------------------------------------------------


def build_lineage(
    session: Session,
    *,
    columns: bool = False,
    ref: str | None = None,
    extra_edges: Iterable[EdgeLike] | None = None,
    variables: dict[str, Any] | None = None,
    project: Project | None = None,
) -> LineageGraph:
    """The lineage of the session's workspace as of `ref` (default: the session's branch)."""
    from ratatouille_nb.pipeline.dag import build_dag
    from ratatouille_nb.pipeline.loader import load_project

    project = project or load_project(session.workspace.root)
    dag = build_dag(project)
    ref = ref or session.branch
    contents = session.contents(ref)
    config = session.workspace.config
    root = session.workspace.root
    aliases = {s.alias: f"products.{s.product}" for s in config.subscriptions if s.alias}
    graph = LineageGraph(meta={"workspace": session.workspace.name, "ref": ref})
    order = dag.order()

    # Every table a model builds.
    for name in order:
        model = dag.models[name]
        for target in model.produces:
            entry = contents.get(target)
            graph.node(
                target,
                kind="view" if model.materialized == "view" else "model",
                layer=target.split(".", 1)[0],
                model=model.name,
                language=model.kind,
                materialized=model.materialized if model.kind == "sql" else None,
                path=_relative(model.path, root),
                description=(model.description or "").strip() or None,
                exists=entry is not None,
                snapshot_id=entry.snapshot_id if entry else None,
            )
            node = graph.nodes[target]
            node.column_descriptions = {c.name: c.description for c in model.columns if c.description}
            node.tests = [t.name for t in model.all_tests()]
            node.tags = list(model.tags)

    # Tables on the ref no model builds: sources, views, products.
    for key in sorted(contents):
        if key in graph.nodes or key.startswith("_"):
            continue  # `_rat.*`: Ratatouille's own bookkeeping (ingested files, …)
        entry = contents[key]
        kind = "view" if entry.view_sql is not None else "product" if key.startswith("products.") else "source"
        graph.node(key, kind=kind, layer=key.split(".", 1)[0], exists=True, snapshot_id=entry.snapshot_id)
        if entry.view_sql is not None:
            try:
                for table in sorted(tables_read(entry.view_sql)):
                    graph.add_edge(table, key, "view")
            except LineageError:
                graph.nodes[key].error = "cannot parse the view's SQL"

    # Edges of the DAG, plus what compiling each SQL model reveals.
    compiled: dict[str, CompiledModel] = {}
    for name in order:
        model = dag.models[name]
        for key in model.refs:
            upstream = project.models[key].target if key in project.models else aliases.get(key, key)
            for target in model.produces:
                graph.add_edge(upstream, target, "ref")
        if model.kind == "seed":
            graph.node(_relative(model.path, root), kind="file")
            graph.add_edge(_relative(model.path, root), model.target, "file")
        if model.kind != "sql":
            continue
        node = graph.nodes[model.target]
        try:
            compiled[name] = cm = compile_model(project, model, variables=variables, aliases=aliases)
        except RatError as exc:
            node.error = f"cannot compile: {exc}"
            continue
        for rel in cm.sources:
            declared = project.sources.get(rel.replace("/", ".", 1))
            if declared is not None and declared.is_table:
                graph.node(declared.relation, kind="source", layer=declared.relation.split(".")[0], description=declared.description)
                graph.add_edge(declared.relation, model.target, "source")
                continue
            name = (declared.location or rel) if declared is not None else rel
            graph.node(name, kind="file", description=declared.description if declared is not None else None)
            graph.add_edge(name, model.target, "file")
        try:
            named = tables_read(cm.sql)
        except LineageError:
            named = set()
        referenced = {e.source for e in graph.edges if e.target == model.target}
        for table in sorted(named - referenced - {model.target}):
            if "/" not in table and table.count(".") == 1:
                graph.add_edge(table, model.target, "sql")

    # Products this workspace declares and subscribes to.
    for product in config.products:
        pid = f"products.{product.name}"
        graph.node(pid, kind="product", layer="products", description=product.description)
        graph.add_edge(product.source, pid, "publish")
    for sub in config.subscriptions:
        graph.node(f"products.{sub.product}", kind="product", layer="products")

    # Edges from the caller and from registered providers (cross-workspace products, …).
    edges: list[EdgeLike] = list(extra_edges or ())
    for provider in _EDGE_PROVIDERS:
        edges += list(provider(session, ref) or ())
    for edge in edges:
        src, dst, kind = _edge_tuple(edge)
        graph.add_edge(src, dst, kind)

    # Physical schemas of the tables on the ref (Iceberg metadata only: no data is read).
    for key, node in graph.nodes.items():
        entry = contents.get(key)
        if entry is not None and entry.view_sql is None:
            node.columns = _physical_schema(session, entry)

    if columns:
        _column_lineage(graph, dag, compiled, contents)
    return graph


def _column_lineage(graph: LineageGraph, dag: Any, compiled: dict[str, CompiledModel], contents: dict[str, TableEntry]) -> None:
    """Trace every SQL model and branch view in dependency order; unbuilt models get inferred schemas."""
    schemas: dict[str, dict[str, str]] = {k: dict(n.columns) for k, n in graph.nodes.items() if n.columns}
    by_target = {t: m for m in dag.models.values() for t in m.produces}
    for key in graph.order():
        node = graph.nodes[key]
        model = by_target.get(key)
        if model is not None and model.kind == "python":
            continue  # table-level lineage only: what a Python function does to columns is opaque
        if model is not None:
            if model.name not in compiled:
                continue  # compile error already recorded on the node
            sql = compiled[model.name].sql
        elif node.kind == "view" and key in contents and contents[key].view_sql is not None:
            sql = contents[key].view_sql or ""
        else:
            continue
        try:
            result = analyze(sql, schemas)
        except LineageError as exc:
            node.error = str(exc)
            continue
        physical = dict(node.columns) if node.exists and contents.get(key) is not None and contents[key].view_sql is None else {}
        result = _match_physical(result, physical)
        node.columns = {col: physical.get(col) or typ for col, typ in result.outputs.items()}
        if not physical:
            schemas[key] = dict(node.columns)
        node.column_lineage = True
        if result.errors:
            node.error = "; ".join(f"{c}: {why}" for c, why in sorted(result.errors.items()))
        for out, sources in result.sources.items():
            for table, col in sorted(sources):
                graph.add_column_edge(table, col, key, out)
    # Tables whose schema is unknown (landing files, missing sources) show the columns used from them.
    for cedge in sorted(graph.column_edges):
        node = graph.nodes[cedge.source]
        if not node.exists or node.kind == "file":
            node.columns.setdefault(cedge.source_column, "")


def _match_physical(result: ColumnAnalysis, physical: dict[str, str]) -> ColumnAnalysis:
    """Name outputs as the built table does: sqlglot names unaliased expressions `_col_N`, DuckDB by
    their text. When the column counts agree, an output missing from the table takes its position's name."""
    if not physical or len(physical) != len(result.outputs) or set(physical) == set(result.outputs):
        return result
    names = list(physical)
    renamed = ColumnAnalysis(tables=result.tables)
    lowered = {p.lower(): p for p in physical}
    for i, (col, typ) in enumerate(result.outputs.items()):
        new = lowered.get(col.lower()) or names[i]
        if new in renamed.outputs:
            new = col
        renamed.outputs[new] = typ
        renamed.sources[new] = result.sources.get(col, set())
        if col in result.errors:
            renamed.errors[new] = result.errors[col]
    return renamed


def _physical_schema(session: Session, entry: TableEntry) -> dict[str, str]:
    from ratatouille_nb.catalog.tables import read_metadata

    try:
        meta = read_metadata(session.warehouse.file_io(), entry.metadata_location)
    except Exception:  # noqa: BLE001 - a missing/unreadable metadata file must not break lineage
        return {}
    from ratatouille_nb.catalog.typenames import duck_type_of

    return {f.name: duck_type_of(f.field_type) for f in meta.schema().fields}  # DuckDB's names, as in results


def _edge_tuple(edge: EdgeLike) -> tuple[str, str, str]:
    if isinstance(edge, LineageEdge):
        return edge.source, edge.target, edge.kind
    if isinstance(edge, tuple) and len(edge) in (2, 3) and all(isinstance(p, str) for p in edge):
        return edge[0], edge[1], edge[2] if len(edge) == 3 else "ref"
    raise LineageError(f"an extra lineage edge must be (from_node, to_node[, kind]), not {edge!r}")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# -- runs -------------------------------------------------------------------------------------


@dataclass
class ProducingRun:
    """The run (and model) that wrote a table's snapshot, and what it read to do so."""

    table: str
    snapshot_id: int | None
    run_id: str
    model: str
    workspace: str
    branch: str
    command: str
    started_at: float
    finished_at: float | None
    commit_hash: str | None
    operation: str
    rows_written: int
    rows_updated: int
    reads: dict[str, int | None] = field(default_factory=dict)

    @property
    def inputs(self) -> list[tuple[str, int | None]]:
        """(table, snapshot_id) pairs the model read, by table name."""
        return sorted(self.reads.items())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["inputs"] = [{"table": t, "snapshot_id": s} for t, s in self.inputs]
        del out["reads"]
        return out




def producing_run(session: Session, table: str, snapshot_id: int | None = None, *, ref: str | None = None) -> ProducingRun | None:
    """Which run produced `table`'s current snapshot on `ref` (or the given snapshot), or None if no
    recorded run did (e.g. it was written with `rat sql`). The earliest run whose commit left the
    table at that snapshot is the one that wrote it; later runs that changed nothing kept it."""
    from ratatouille_nb.pipeline.loader import load_project

    ref = ref or session.branch
    entry = session.contents(ref).get(table)
    if snapshot_id is None:
        if entry is None:
            raise TableNotFoundError(f"table '{table}' does not exist on '{ref}'", hint=f"list tables with `rat tables --branch {ref}`")
        snapshot_id = entry.snapshot_id
    if entry is not None and snapshot_id is not None and not entry.is_view:
        snapshot_id = _data_snapshot(session, entry.metadata_location, snapshot_id)
    from ratatouille_nb.pipeline.runs import successful_model_runs

    home, name = session.settings.home, session.workspace.name
    if snapshot_id is not None:
        rows = successful_model_runs(home, name, table, snapshot_id=snapshot_id)
        if rows:
            return _producing(table, snapshot_id, rows[0])
    # Outputs other than a Python model's primary target (and views) are found through the run's commit.
    try:
        producers = sorted({m.name for m in load_project(session.workspace.root).models.values() if table in m.produces})
    except RatError:
        producers = []
    if not producers:
        return None
    rows = successful_model_runs(home, name, table, models=tuple(producers))
    for row in rows:
        commit_hash = row[6]
        if not commit_hash:
            continue
        try:
            found = session.store.get_commit(commit_hash).contents.get(table)
        except RatError:
            continue
        if found is None:
            continue
        if (snapshot_id is not None and found.snapshot_id == snapshot_id) or (snapshot_id is None and entry is not None and found == entry):
            return _producing(table, snapshot_id, row)
    return None


def _data_snapshot(session: Session, metadata_location: str, snapshot_id: int) -> int:
    """The snapshot whose rows `snapshot_id` shows: compactions (`replace` snapshots) change no row."""
    from pyiceberg.table.snapshots import Operation

    from ratatouille_nb.catalog.tables import read_metadata

    meta = read_metadata(session.warehouse.file_io(), metadata_location)
    snap = meta.snapshot_by_id(snapshot_id)
    while snap is not None and snap.summary is not None and snap.summary.operation == Operation.REPLACE and snap.parent_snapshot_id is not None:
        snap = meta.snapshot_by_id(snap.parent_snapshot_id)
    return snap.snapshot_id if snap is not None else snapshot_id


def _producing(table: str, snapshot_id: int | None, row: tuple) -> ProducingRun:
    (run_id, workspace, branch, command, started, finished, commit_hash, model, _target, operation, rows_written, rows_updated, reads, _snap) = row
    return ProducingRun(
        table=table,
        snapshot_id=snapshot_id,
        run_id=run_id,
        model=model,
        workspace=workspace,
        branch=branch,
        command=command,
        started_at=started,
        finished_at=finished,
        commit_hash=commit_hash,
        operation=operation or "",
        rows_written=int(rows_written or 0),
        rows_updated=int(rows_updated or 0),
        reads={str(k): v for k, v in (json.loads(reads) if reads else {}).items()},
    )

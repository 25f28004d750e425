"""Lineage: which tables (and columns) each table is built from, and which run wrote a snapshot.

    from ratatouille_nb.lineage import lineage, producing_run
    g = lineage(session, "gold.daily_sales_kpis", direction="upstream", columns=True)
    g.to_json()      # what the notebook widget draws
    print(g.to_text())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratatouille_nb.lineage.build import (
    CompiledModel,
    ProducingRun,
    build_lineage,
    compile_model,
    producing_run,
    register_edge_provider,
    unregister_edge_provider,
)
from ratatouille_nb.lineage.columns import analyze, column_lineage, output_columns
from ratatouille_nb.lineage.errors import ColumnLineageError, LineageError, UnknownNodeError
from ratatouille_nb.lineage.graph import ColumnEdge, LineageEdge, LineageGraph, LineageNode, normalize_direction

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.lineage.build import EdgeLike

__all__ = [
    "ColumnEdge",
    "ColumnLineageError",
    "CompiledModel",
    "LineageEdge",
    "LineageError",
    "LineageGraph",
    "LineageNode",
    "ProducingRun",
    "UnknownNodeError",
    "analyze",
    "build_lineage",
    "column_lineage",
    "compile_model",
    "lineage",
    "output_columns",
    "producing_run",
    "register_edge_provider",
    "unregister_edge_provider",
]


def lineage(
    session: Session,
    model: str | None = None,
    direction: str | None = None,
    columns: bool = False,
    *,
    ref: str | None = None,
    extra_edges: Iterable[EdgeLike] | None = None,
    **options: Any,
) -> LineageGraph:
    """The workspace's lineage graph, or the part around `model` (pipeline name or layer.table).

    direction: 'upstream', 'downstream' or 'both' (default when a model is given); columns=True
    adds column-level edges for SQL models.
    """
    direction = normalize_direction(direction)
    if direction is not None and model is None:
        raise LineageError(f"--{direction} needs a MODEL", hint="e.g. `rat lineage gold.daily_sales_kpis --upstream`")
    graph = build_lineage(session, columns=columns, ref=ref, extra_edges=extra_edges, **options)
    if model is not None:
        graph = graph.subgraph(model, direction or "both")
    return graph

"""Lineage verbs: the table/column graph of the workspace and which run produced a snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.lineage import LineageGraph
    from ratatouille_nb.lineage.build import ProducingRun


def graph(s: Session, model: str | None = None, *, direction: str | None = None, columns: bool = False, ref: str | None = None) -> LineageGraph:
    """The whole graph, or `model` (pipeline name or layer.table) with its upstream/downstream."""
    from ratatouille_nb.lineage import lineage

    return lineage(s, model, direction, columns, ref=ref)


def producer(s: Session, model: str, *, snapshot: int | None = None, ref: str | None = None) -> tuple[str, ProducingRun | None]:
    """(table, the run that wrote its current — or the given — snapshot, if one is recorded)."""
    from ratatouille_nb.lineage import build_lineage, producing_run

    table = build_lineage(s, ref=ref).resolve(model)
    return table, producing_run(s, table, snapshot, ref=ref)

"""Materializations, one class per file, registered by name (see base.py)."""

from ratatouille_nb.pipeline.materializations import ephemeral, incremental, python, seed, snapshot, table, view
from ratatouille_nb.pipeline.materializations.base import REGISTRY, Materialization, ModelContext, Outcome, materialization, register

__all__ = [
    "REGISTRY", "Materialization", "ModelContext", "Outcome", "ephemeral", "incremental", "materialization", "python", "register",
    "seed", "snapshot", "table", "view",
]

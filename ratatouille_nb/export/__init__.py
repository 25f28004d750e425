"""Notebook -> pipeline export (`rat promote`, `%rat promote`, the JupyterLab button)."""

from ratatouille_nb.export.promote import PlannedFile, PlannedModel, PromoteResult, plan_promotion, promote

__all__ = ["PlannedFile", "PlannedModel", "PromoteResult", "plan_promotion", "promote"]

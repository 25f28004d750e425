"""Orchestration: a workspace's pipelines for schedulers (Dagster, the optional `[dagster]` extra).

The core never imports a scheduler: `ratatouille_nb.orchestration.dagster_defs` imports Dagster and
is only loaded by `ratatouille_nb.dagster` (the `dagster dev -m ratatouille_nb.dagster` entry).
"""

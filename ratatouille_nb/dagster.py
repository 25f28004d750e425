"""`dagster dev -m ratatouille_nb.dagster`: the workspace's pipelines as Dagster assets.

The workspace is `RAT_WORKSPACE` (a folder, or a name under `RAT_HOME/workspaces`), else the
nearest `workspace.yaml` upward from the current directory; `RAT_HOME`, `RAT_PROFILE`,
`RAT_BRANCH`, `RAT_CATALOG`, `NESSIE_URI`, `RAT_WAREHOUSE` and `S3_*` apply as everywhere else.
One asset per model, deps from the DAG, one schedule per cron declared on models, and every
Dagster run is one `rat build` of the selected assets (see `ratatouille_nb.orchestration.dagster_defs`).

Needs the optional extra: `pip install 'ratatouille_nb[dagster]'`.
"""

try:
    import dagster as _dagster  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ratatouille_nb.dagster needs Dagster: pip install 'ratatouille_nb[dagster]'"
    ) from exc

from ratatouille_nb.orchestration.dagster_defs import build_definitions

defs = build_definitions()

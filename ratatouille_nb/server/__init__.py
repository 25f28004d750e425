"""The Jupyter server extension: REST endpoints under `/ratatouille/` for the JupyterLab extension.

| method | path | answer |
|---|---|---|
| GET  | /ratatouille/session          | workspace, branch, home, catalog, profile |
| GET  | /ratatouille/branches         | branches and tags, the current one marked |
| GET  | /ratatouille/products?q=TEXT  | readable products with versions, owner, schema, freshness |
| GET  | /ratatouille/products/NAME    | one product (404 if unknown, 403 if not readable) |
| POST | /ratatouille/promote          | `{"path", "force", "dry_run", "skip"}`: preview / write pipeline files (409, 400: see promote.py) |
| GET  | /ratatouille/tables?path=&branch= | the notebook's workspace's layers and tables on a branch (server/tables.py) |
| …    | /ratatouille/branch/…, /ratatouille/workspaces | the branch and workspace menu (server/branches.py) |

Every endpoint takes `?path=` (the active notebook, relative to the server root): without
RAT_WORKSPACE the workspace is the nearest folder at or above it holding workspace.yaml or
dbt_project.yml (service.workspace_for); `?workspace=` and `?branch=` are the notebook kernel's.

Every endpoint needs Jupyter's authentication; POST also passes Jupyter's XSRF check. Enabled by
`jupyter-config/server-config/ratatouille_nb.json` (installed into
`etc/jupyter/jupyter_server_config.d`).
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "ratatouille_nb.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from ratatouille_nb.server.handlers import setup_handlers

    setup_handlers(server_app.web_app)
    from jupyter_server.utils import url_path_join

    from ratatouille_nb.server.branches import branch_handlers

    server_app.web_app.add_handlers(".*$", branch_handlers(url_path_join(server_app.web_app.settings["base_url"], "ratatouille")))
    server_app.log.info("ratatouille_nb.server: REST endpoints under %sratatouille/", server_app.web_app.settings["base_url"])


# The name jupyter_server looked for before 2.0.
load_jupyter_server_extension = _load_jupyter_server_extension

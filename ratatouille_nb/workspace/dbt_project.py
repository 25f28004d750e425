"""A dbt project folder without workspace.yaml: its workspace config, synthesized from dbt_project.yml.

The workspace is named after the project's `name` (lowercased, other characters as '-'), with the
default branch `workspace/<name>`, storage prefix `<name>` and profile. A workspace.yaml beside
dbt_project.yml takes over entirely (isolation, resources, layers, products, subscriptions).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from ratatouille_nb.errors import ConfigError
from ratatouille_nb.workspace.config import WorkspaceConfig
from ratatouille_nb.yamlfile import load_yaml_with_lines


def workspace_name(project_name: str) -> str:
    """A dbt project name as a workspace name (`Jaffle_Shop` -> `jaffle_shop`)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", project_name.strip().lower()).strip("-_")
    if not name or not name[0].isalpha():
        name = f"dbt-{name}".rstrip("-")
    return name[:63]


def config_from_dbt_project(path: Path) -> WorkspaceConfig:
    data, _lines = load_yaml_with_lines(path)
    if not isinstance(data, dict) or not data.get("name"):
        raise ConfigError(f"{path}:1: dbt_project.yml must be a mapping with a 'name'")
    try:
        return WorkspaceConfig(name=workspace_name(str(data["name"])), description=f"dbt project {data['name']}", layers={})
    except ValidationError as exc:
        raise ConfigError(f"{path}:1: {exc.errors()[0]['msg']}") from None

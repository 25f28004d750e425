"""Find, create and list workspaces; `rat init` scaffolds one in milliseconds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ratatouille_nb.access.registry import WorkspaceRecord
from ratatouille_nb.errors import WorkspaceError
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace.config import NAME_RE, WorkspaceConfig, load_workspace_config

CONFIG_NAME = "workspace.yaml"
DBT_PROJECT = "dbt_project.yml"  # a dbt project folder is a workspace too (workspace/dbt_project.py)
SCAFFOLD_DIRS = ("pipelines/bronze", "pipelines/silver", "pipelines/gold", "macros", "schemas", "notebooks")

WORKSPACE_TEMPLATE = """\
name: {name}
version: "1.0"
description: "{description}"

# Isolation: this workspace's own branch and storage prefix
isolation:
  nessie_branch: "workspace/{name}"
  s3_prefix: "{name}"

resources:
  profile: small        # tiny | small | medium | large, or a path to a profile YAML
  overrides: {{}}         # e.g. max_memory_mb: 2048

layers:
  bronze:
    retention_days: 90
    partition_by: []
  silver:
    retention_days: 365
    partition_by: []
  gold:
    retention_days: null
    partition_by: []

products: []
subscriptions: []
"""


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: its folder and validated config."""

    root: Path
    config: WorkspaceConfig

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def branch(self) -> str:
        return self.config.branch

    @property
    def prefix(self) -> str:
        return self.config.storage_prefix

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    @classmethod
    def load(cls, root: Path) -> Workspace:
        root = root.resolve()
        path = root / CONFIG_NAME
        if not path.is_file() and (root / DBT_PROJECT).is_file():
            from ratatouille_nb.workspace.dbt_project import config_from_dbt_project

            return cls(root=root, config=config_from_dbt_project(root / DBT_PROJECT))
        if not path.is_file():
            raise WorkspaceError(f"{root} is not a workspace (no {CONFIG_NAME})", hint=f"create one with `rat init {root}`")
        return cls(root=root, config=load_workspace_config(path))


def _search_upwards(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file() or (folder / DBT_PROJECT).is_file():
            return folder
    return None


def find_workspace(settings: Settings, cwd: Path | None = None) -> Workspace:
    """RAT_WORKSPACE / --workspace (a folder or a name under RAT_HOME/workspaces), else upward search."""
    wanted = settings.workspace
    if wanted:
        as_path = Path(wanted).expanduser()
        if (as_path / CONFIG_NAME).is_file() or (as_path / DBT_PROJECT).is_file():
            return Workspace.load(as_path)
        if NAME_RE.match(wanted):
            named = settings.workspaces_dir / wanted
            if (named / CONFIG_NAME).is_file():
                return Workspace.load(named)
            record = _registered(settings, wanted)
            if record and (Path(record.path) / CONFIG_NAME).is_file():
                return Workspace.load(Path(record.path))
        raise WorkspaceError(
            f"workspace '{wanted}' not found (neither a folder with {CONFIG_NAME} nor a known workspace name)",
            hint="see `rat workspace list`, or create it with `rat workspace create NAME`",
        )
    found = _search_upwards((cwd or Path.cwd()).resolve())
    if found is None:
        raise WorkspaceError(
            f"no {CONFIG_NAME} in {cwd or Path.cwd()} or any parent folder",
            hint="run inside a workspace, pass --workspace, or create one with `rat init PATH`",
        )
    return Workspace.load(found)


def _registered(settings: Settings, name: str) -> WorkspaceRecord | None:
    from ratatouille_nb.access import AccessRegistry, resolve_principal

    registry = AccessRegistry(settings.home, resolve_principal(settings))
    try:
        return registry.get(name)
    finally:
        registry.close()


def init_workspace(
    path: Path, settings: Settings, name: str | None = None, description: str = "", *, principal: str | None = None
) -> Workspace:
    """Scaffold a workspace folder, register it (the principal owns it), and create its branch from main.

    The name, storage prefix and branch are checked against the registry before any file is
    written, so a refused init leaves nothing behind.
    """
    from ratatouille_nb.access import AccessRegistry, resolve_principal
    from ratatouille_nb.workspace.config import WorkspaceConfig
    from ratatouille_nb.workspace.registration import check_free, register_workspace

    path = path.expanduser().resolve()
    name = name or path.name.lower().replace(" ", "-")
    if not NAME_RE.match(name):
        raise WorkspaceError(
            f"invalid workspace name '{name}': use lowercase letters, digits, '_' or '-', starting with a letter",
            hint="pass --name NAME",
        )
    config_path = path / CONFIG_NAME
    if config_path.exists():
        raise WorkspaceError(f"{path} already holds a workspace", hint="use it as it is, or pick another folder")
    who = principal or resolve_principal(settings)
    planned = WorkspaceConfig(name=name)
    registry = AccessRegistry(settings.home, who)
    try:
        check_free(registry, WorkspaceRecord(name, str(path), planned.branch, planned.storage_prefix))
    finally:
        registry.close()
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    for sub in SCAFFOLD_DIRS:
        (path / sub).mkdir(parents=True, exist_ok=True)
        keep = path / sub / ".gitkeep"
        if not any((path / sub).iterdir()):
            keep.touch()
    config_path.write_text(WORKSPACE_TEMPLATE.format(name=name, description=description or f"{name} workspace"))
    workspace = Workspace.load(path)
    try:
        register_workspace(workspace, settings, who)
    except BaseException:
        config_path.unlink(missing_ok=True)  # another init won the name meanwhile: leave no half workspace
        if created:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        raise
    return workspace


def list_workspaces(settings: Settings) -> list[WorkspaceRecord]:
    """Registered workspaces plus any folder under RAT_HOME/workspaces not yet registered."""
    from ratatouille_nb.access import AccessRegistry, resolve_principal

    registry = AccessRegistry(settings.home, resolve_principal(settings))
    try:
        records = {r.name: r for r in registry.all()}
    finally:
        registry.close()
    if settings.workspaces_dir.is_dir():
        for entry in sorted(os.scandir(settings.workspaces_dir), key=lambda e: e.name):
            if entry.is_dir() and (Path(entry.path) / CONFIG_NAME).is_file() and entry.name not in records:
                try:
                    ws = Workspace.load(Path(entry.path))
                except WorkspaceError:
                    continue
                records[ws.name] = WorkspaceRecord(ws.name, str(ws.root), ws.branch, ws.prefix)
    return sorted(records.values(), key=lambda r: r.name)


def register_workspace(workspace: Workspace, settings: Settings, principal: str | None = None) -> WorkspaceRecord:
    """Register `workspace` (or check its registration) and make sure its branch exists."""
    from ratatouille_nb.workspace.registration import register_workspace as register

    return register(workspace, settings, principal)

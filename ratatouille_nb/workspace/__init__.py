"""Workspaces: a folder with workspace.yaml, isolated by its own branch and storage prefix."""

from ratatouille_nb.workspace.config import WorkspaceConfig, load_workspace_config
from ratatouille_nb.workspace.manager import Workspace, find_workspace, init_workspace, list_workspaces

__all__ = ["Workspace", "WorkspaceConfig", "find_workspace", "init_workspace", "list_workspaces", "load_workspace_config"]

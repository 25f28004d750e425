"""Workspace and administration verbs: init, list, move, members and roles, RAT_HOME's administrators.

These work from settings (RAT_HOME and the acting principal), not from an open workspace session:
managing who belongs to a workspace must not need its data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ratatouille_nb.access import AccessPolicy, AccessRegistry, Role, resolve_principal, validate_principal
from ratatouille_nb.access.roles import ROLES
from ratatouille_nb.errors import WorkspaceError

if TYPE_CHECKING:
    from ratatouille_nb.access.registry import Member, WorkspaceRecord
    from ratatouille_nb.policies import Policies
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace import Workspace


@contextmanager
def _registry(settings: Settings) -> Iterator[tuple[AccessRegistry, str]]:
    principal = resolve_principal(settings)
    registry = AccessRegistry(settings.home, principal)
    try:
        yield registry, principal
    finally:
        registry.close()


def init(settings: Settings, path: Path, *, name: str | None = None, description: str = "") -> Workspace:
    """Scaffold and register a workspace; the acting principal owns it."""
    from ratatouille_nb.workspace import init_workspace

    return init_workspace(path, settings, name=name, description=description)


def create(settings: Settings, name: str, *, description: str = "") -> Workspace:
    """A workspace named `name` under RAT_HOME/workspaces."""
    return init(settings, settings.workspaces_dir / name, name=name, description=description)


@dataclass(frozen=True)
class WorkspaceLine:
    record: WorkspaceRecord
    role: Role | None


def listing(settings: Settings) -> list[WorkspaceLine]:
    """Every registered workspace (and unregistered folders under RAT_HOME/workspaces) with your role."""
    from ratatouille_nb.workspace import list_workspaces

    records = list_workspaces(settings)
    with _registry(settings) as (registry, principal):
        mine = registry.workspaces_of(principal)
    return [WorkspaceLine(r, mine.get(r.name)) for r in records]


def locate(settings: Settings, start: Path) -> Workspace | None:
    """The workspace holding `start`: the nearest folder with workspace.yaml (or dbt_project.yml)
    at or above it, or None when there is none."""
    from ratatouille_nb.workspace import find_workspace

    try:
        return find_workspace(settings.with_(workspace=None), cwd=start)
    except WorkspaceError:
        return None


def move(settings: Settings, name: str, path: Path) -> WorkspaceRecord:
    """An owner points a registered workspace at its new folder."""
    from ratatouille_nb.workspace import Workspace
    from ratatouille_nb.workspace.registration import move_workspace

    return move_workspace(settings, name, Workspace.load(path.expanduser()), resolve_principal(settings))


def _known(registry: AccessRegistry, workspace: str) -> None:
    if registry.get(workspace) is None:
        raise WorkspaceError(f"no registered workspace named '{workspace}'", hint="see `rat workspace list`")


def members(settings: Settings, workspace: str) -> list[Member]:
    """Who holds which role in `workspace` (any member, or an administrator, may look)."""
    with _registry(settings) as (registry, principal):
        _known(registry, workspace)
        policy = AccessPolicy(registry, principal, workspace)
        if not policy.is_admin:
            policy.require_member()
        return registry.members(workspace)


def grant(settings: Settings, workspace: str, member: str, role: str) -> Member:
    """Give `member` the role in `workspace` (owners of it, or administrators, may)."""
    from ratatouille_nb.access.registry import Member

    if role not in ROLES:
        raise WorkspaceError(f"unknown role '{role}'", hint="use viewer, editor or owner")
    validate_principal(member, source="the member's name")
    with _registry(settings) as (registry, principal):
        _known(registry, workspace)
        policy = AccessPolicy(registry, principal, workspace)
        if not policy.is_admin:
            policy.require_role("owner", f"manage the members of workspace '{workspace}'")
        registry.set_role(workspace, member, role, principal)
        return Member(workspace, member, role, principal)


def revoke(settings: Settings, workspace: str, member: str) -> bool:
    """Remove `member` from `workspace` (the last owner stays)."""
    with _registry(settings) as (registry, principal):
        _known(registry, workspace)
        policy = AccessPolicy(registry, principal, workspace)
        if not policy.is_admin:
            policy.require_role("owner", f"manage the members of workspace '{workspace}'")
        return registry.remove_member(workspace, member)


def admins(settings: Settings) -> list[str]:
    with _registry(settings) as (registry, _principal):
        return registry.admins()


def add_admin(settings: Settings, name: str) -> None:
    validate_principal(name, source="the administrator's name")
    with _registry(settings) as (registry, principal):
        AccessPolicy(registry, principal, None).require_admin("adding an administrator")
        registry.add_admin(name, principal)


def remove_admin(settings: Settings, name: str) -> bool:
    with _registry(settings) as (registry, principal):
        AccessPolicy(registry, principal, None).require_admin("removing an administrator")
        return registry.remove_admin(name)


def policies(settings: Settings, out: Path | None = None) -> tuple[Policies, list[Path]]:
    """S3 policies per workspace and Nessie rules from the roles and grants (administrators only)."""
    from ratatouille_nb.policies import build_policies
    from ratatouille_nb.products.registry import SqliteProductRegistry

    with _registry(settings) as (registry, principal):
        AccessPolicy(registry, principal, None).require_admin("`rat admin policies`")
        products = SqliteProductRegistry(settings.home)
        try:
            built = build_policies(settings, registry, products)
        finally:
            products.close()
    return built, (built.write(out) if out is not None else [])

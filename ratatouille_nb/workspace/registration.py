"""Workspaces are registered, not claimed: identity comes from RAT_HOME's access store, not from the YAML.

`rat init` registers a workspace's name, folder, storage prefix and branch with the acting
principal as owner. Opening a workspace checks its workspace.yaml against that record: a folder
that renames itself to another workspace's name, or points its prefix or branch at someone
else's, is refused. A folder no one registered yet (a fresh clone) is registered on first use,
by whoever opens it, if its name, prefix and branch are free.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ratatouille_nb.access import AccessPolicy, AccessRegistry, WorkspaceRecord, resolve_principal
from ratatouille_nb.errors import ReferenceNotFoundError, WorkspaceError

if TYPE_CHECKING:
    from ratatouille_nb.catalog.base import VersionStore
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace.manager import Workspace


def record_of(workspace: Workspace) -> WorkspaceRecord:
    return WorkspaceRecord(workspace.name, str(workspace.root), workspace.branch, workspace.prefix)


def check_free(registry: AccessRegistry, record: WorkspaceRecord) -> None:
    """Refuse (before anything is written) a name, prefix or branch another workspace holds."""
    problem = registry.clash(record)
    if problem is not None:
        raise WorkspaceError(problem, hint="pick another name (`rat init PATH --name NAME`), or give the workspace its own isolation settings")


def verify(registry: AccessRegistry, workspace: Workspace, principal: str) -> WorkspaceRecord:
    """The registered record of `workspace`, registering it if no one has; refuses any disagreement."""
    record = registry.get(workspace.name)
    if record is None:
        new = record_of(workspace)
        check_free(registry, new)
        return registry.register(new, principal)
    where = f"{workspace.root / 'workspace.yaml'}"
    if Path(record.path) != workspace.root:
        raise WorkspaceError(
            f"{where} names workspace '{workspace.name}', but that workspace is registered at {record.path} "
            f"(owner {record.owner or 'the administrators'})",
            hint=f"an owner moves it with `rat workspace move {workspace.name} {workspace.root}`; otherwise give this folder its own name",
        )
    for field, mine, theirs in (
        ("isolation.s3_prefix", workspace.prefix, record.prefix),
        ("isolation.nessie_branch", workspace.branch, record.branch),
    ):
        if mine != theirs:
            raise WorkspaceError(
                f"{where}: {field} is '{mine}', but workspace '{workspace.name}' is registered with '{theirs}'",
                hint=f"set {field} back to '{theirs}' (a workspace's storage and branch cannot be re-pointed)",
            )
    return record


def ensure_branch(store: VersionStore, branch: str) -> None:
    """Create the workspace's branch from the default branch if it is missing (zero-copy)."""
    from ratatouille_nb.errors import ReferenceExistsError

    try:
        store.get_reference(branch)
    except ReferenceNotFoundError:
        try:
            store.create_reference(branch, "branch", store.default_branch)
        except ReferenceExistsError:
            pass  # another process created it meanwhile


def register_workspace(workspace: Workspace, settings: Settings, principal: str | None = None) -> WorkspaceRecord:
    """Register `workspace` (or check its registration) and make sure its branch exists."""
    from ratatouille_nb.catalog import open_store

    who = principal or resolve_principal(settings)
    store = open_store(settings)  # first: a fresh RAT_HOME gets its catalog before anything is registered
    try:
        registry = AccessRegistry(settings.home, who)
        try:
            record = verify(registry, workspace, who)
        finally:
            registry.close()
        ensure_branch(store, workspace.branch)
    finally:
        store.close()
    return record


def open_access(settings: Settings, workspace: Workspace, principal: str) -> tuple[AccessPolicy, VersionStore]:
    """The access policy for `principal` in `workspace` (a member, or refused) and the raw version store."""
    from ratatouille_nb.catalog import open_store

    store = open_store(settings)
    try:
        registry = AccessRegistry(settings.home, principal)
    except BaseException:
        store.close()
        raise
    try:
        verify(registry, workspace, principal)
        policy = AccessPolicy(registry, principal, workspace.name, default_branch=store.default_branch)
        policy.require_member()
    except BaseException:
        registry.close()
        store.close()
        raise
    return policy, store


def move_workspace(settings: Settings, name: str, moved: Workspace, principal: str) -> WorkspaceRecord:
    """An owner points a registered workspace at its new folder `moved` (which must hold that workspace)."""
    registry = AccessRegistry(settings.home, principal)
    try:
        record = registry.get(name)
        if record is None:
            raise WorkspaceError(f"no registered workspace named '{name}'", hint="see `rat workspace list`")
        AccessPolicy(registry, principal, name).require_role("owner", f"move workspace '{name}'")
        if moved.name != name:
            raise WorkspaceError(f"{moved.root / 'workspace.yaml'} names workspace '{moved.name}', not '{name}'")
        if (moved.prefix, moved.branch) != (record.prefix, record.branch):
            raise WorkspaceError(
                f"{moved.root / 'workspace.yaml'}: its storage prefix or branch differ from workspace '{name}''s registration",
                hint=f"registered: isolation.s3_prefix '{record.prefix}', isolation.nessie_branch '{record.branch}'",
            )
        other = registry.by_path(str(moved.root))
        if other is not None and other.name != name:
            raise WorkspaceError(f"{moved.root} is already registered as workspace '{other.name}'")
        registry.move(name, str(moved.root))
        return WorkspaceRecord(name, str(moved.root), record.branch, record.prefix, record.owner, record.created_at)
    finally:
        registry.close()

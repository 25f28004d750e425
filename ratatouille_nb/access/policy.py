"""The access policy: what one principal, acting in one workspace, may do to refs and workspaces.

Every ref belongs to one workspace (recorded when it is created; a workspace's own branch when it
registers); the default branch `main` belongs to the RAT_HOME's administrators. A principal acts
in one workspace at a time (its session's): it reads that workspace's refs with the viewer role,
writes them as an editor, merges into protected ones, protects them and manages members as an
owner, and reads `main` as any member. Refs of other workspaces are out of reach: their data is
shared through data products. Each refusal is an `AccessDeniedError` naming the principal, the
workspace and the role needed.
"""

from __future__ import annotations

from collections.abc import Iterable

from ratatouille_nb.access.registry import AccessRegistry
from ratatouille_nb.access.roles import Role, at_least
from ratatouille_nb.errors import AccessDeniedError

ADMINS = None
"""`owner_of` returns this for refs that belong to the administrators (the default branch)."""


class AccessPolicy:
    """Decisions for `principal` working in `workspace` (None: no workspace, e.g. an admin tool)."""

    def __init__(self, registry: AccessRegistry, principal: str, workspace: str | None, *, default_branch: str = "main") -> None:
        self.registry = registry
        self.principal = principal
        self.workspace = workspace
        self.default_branch = default_branch

    # -- facts --------------------------------------------------------------------------------

    @property
    def is_admin(self) -> bool:
        return self.registry.is_admin(self.principal)

    def role(self, workspace: str | None = None) -> Role | None:
        """The principal's role in a workspace; administrators own workspaces nobody owns yet."""
        name = workspace or self.workspace
        if name is None:
            return None
        role = self.registry.role(name, self.principal)
        if role is None and self.is_admin:
            record = self.registry.get(name)
            if record is not None and record.owner is None:
                return "owner"
        return role

    def owner_of(self, ref: str, owners: dict[str, str] | None = None) -> str | None:
        """The workspace a ref belongs to; `ADMINS` (None) for the default branch and unowned refs."""
        if ref == self.default_branch:
            return ADMINS
        recorded = (owners if owners is not None else self.registry.ref_owners()).get(ref)
        if recorded is not None:
            return recorded
        # Refs made before ownership was recorded: the workspace whose branch prefixes them.
        for record in self.registry.all():
            if ref == record.branch or ref.startswith(record.branch + "/"):
                return record.name
        return ADMINS

    # -- checks -------------------------------------------------------------------------------

    def _deny(self, message: str, hint: str | None = None) -> AccessDeniedError:
        return AccessDeniedError(message, hint=hint)

    def require_member(self) -> Role:
        """The principal must hold a role in its workspace to work there at all."""
        role = self.role()
        if role is None:
            owners = [m.principal for m in self.registry.members(self.workspace or "") if m.role == "owner"]
            raise self._deny(
                f"principal '{self.principal}' is not a member of workspace '{self.workspace}'",
                hint=f"ask an owner ({', '.join(owners) or 'an administrator'}) to run "
                f"`rat workspace grant {self.workspace} {self.principal} viewer`",
            )
        return role

    def require_role(self, needed: Role, action: str, workspace: str | None = None) -> None:
        name = workspace or self.workspace
        role = self.role(name)
        if not at_least(role, needed):
            raise self._deny(
                f"principal '{self.principal}' needs the {needed} role in workspace '{name}' to {action} (has: {role or 'none'})",
                hint=f"ask an owner of '{name}' to run `rat workspace grant {name} {self.principal} {needed}`",
            )

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise self._deny(
                f"principal '{self.principal}' is not an administrator of this RAT_HOME: {action} is an administrator's verb",
                hint=f"administrators: {', '.join(self.registry.admins()) or 'none'}",
            )

    def _foreign(self, ref: str, owner: str | None, what: str) -> AccessDeniedError:
        if owner is ADMINS:
            return self._deny(
                f"principal '{self.principal}' may not {what} '{ref}': it belongs to the administrators of this RAT_HOME",
                hint=f"administrators: {', '.join(self.registry.admins()) or 'none'}",
            )
        return self._deny(
            f"principal '{self.principal}' may not {what} '{ref}' from workspace '{self.workspace}': it belongs to workspace '{owner}'",
            hint=f"work on it from its own workspace (`rat -w {owner} …`, as a member there), or share data through a data product",
        )

    def can_read(self, ref: str, owners: dict[str, str] | None = None) -> bool:
        owner = self.owner_of(ref, owners)
        if owner is ADMINS:
            return (ref == self.default_branch and self.role() is not None) or self.is_admin
        return owner == self.workspace and self.role() is not None

    def require_read(self, ref: str) -> None:
        if not self.can_read(ref):
            owner = self.owner_of(ref)
            if owner == self.workspace:
                self.require_member()
            raise self._foreign(ref, owner, "read")

    def require_write(self, ref: str, action: str, *, protected: bool = False) -> None:
        """Commit to, delete, tag from or merge into `ref` (protected targets need the owner role)."""
        owner = self.owner_of(ref)
        if owner is ADMINS:
            if not self.is_admin:
                raise self._foreign(ref, owner, action)
            return
        if owner != self.workspace:
            raise self._foreign(ref, owner, action)
        self.require_role("owner" if protected else "editor", f"{action} '{ref}'" + (" (a protected branch)" if protected else ""))

    def require_protect(self, ref: str) -> None:
        owner = self.owner_of(ref)
        if owner is ADMINS:
            if not self.is_admin:
                raise self._foreign(ref, owner, "protect or unprotect")
            return
        if owner != self.workspace:
            raise self._foreign(ref, owner, "protect or unprotect")
        self.require_role("owner", f"protect or unprotect '{ref}'")

    def readable(self, refs: Iterable[str]) -> list[str]:
        owners = self.registry.ref_owners()
        return [r for r in refs if self.can_read(r, owners)]

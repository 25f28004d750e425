"""Who may do what: principals, workspace roles and ref ownership (RAT_HOME/registry.db).

The version store consults this through `catalog/authorized.py`; the front ends never decide.
"""

from ratatouille_nb.access.policy import AccessPolicy
from ratatouille_nb.access.principal import resolve_principal, validate_principal
from ratatouille_nb.access.registry import AccessRegistry, WorkspaceRecord
from ratatouille_nb.access.roles import ROLES, Role

__all__ = ["ROLES", "AccessPolicy", "AccessRegistry", "Role", "WorkspaceRecord", "resolve_principal", "validate_principal"]

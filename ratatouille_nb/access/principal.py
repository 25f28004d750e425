"""The acting principal: RAT_USER, else the Jupyter server's authenticated user (REST), else the OS login.

It is recorded as the author of every commit, run, publication and grant, and it is what the
access policy checks roles for.
"""

from __future__ import annotations

import getpass
import re
from typing import TYPE_CHECKING

from ratatouille_nb.errors import ConfigError

if TYPE_CHECKING:
    from ratatouille_nb.settings import Settings

PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def validate_principal(name: str, *, source: str = "RAT_USER") -> str:
    """A principal is one word: letters, digits and . _ @ + - (e-mail-like names work)."""
    if not PRINCIPAL_RE.match(name or ""):
        raise ConfigError(
            f"invalid principal {name[:80]!r} (from {source})",
            hint="use letters, digits and . _ @ + - only, starting with a letter or digit (e.g. RAT_USER=alice)",
        )
    return name


def os_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def resolve_principal(settings: Settings, *, server_user: str | None = None) -> str:
    """RAT_USER wins; a REST call passes the server's authenticated user; else the OS login."""
    if settings.user:
        return validate_principal(settings.user)
    if server_user:
        return validate_principal(server_user, source="the Jupyter server's authenticated user")
    return validate_principal(os_login(), source="the OS login")

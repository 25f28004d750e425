"""Workspace roles, weakest first: each one includes what the ones before it may do.

viewer: reads the workspace's refs. editor: also commits, runs, builds, creates and deletes its
unprotected branches and tags. owner: also merges into protected branches, protects and
unprotects, publishes and grants products, manages members.
"""

from __future__ import annotations

from typing import Literal

Role = Literal["viewer", "editor", "owner"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "owner")


def rank(role: str | None) -> int:
    """0 for no role, then 1..3 from viewer to owner."""
    return ROLES.index(role) + 1 if role in ROLES else 0  # type: ignore[arg-type,unused-ignore]


def at_least(role: str | None, needed: Role) -> bool:
    return rank(role) >= rank(needed)

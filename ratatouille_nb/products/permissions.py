"""Access rules: grants per workspace pattern (`*`, globs), levels none < read < write.

An exact workspace grant wins over patterns; among matching patterns an explicit `none` beats any
wildcard read; the owner workspace always has write.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

LEVELS = {"none": 0, "read": 1, "write": 2}


def effective_level(workspace: str, owner: str, grants: Iterable[tuple[str, str]]) -> str:
    """The access level `workspace` has, given (pattern, level) grants."""
    if workspace == owner:
        return "write"
    grants = list(grants)
    exact = [level for pattern, level in grants if pattern == workspace]
    if exact:
        return max(exact, key=LEVELS.__getitem__) if "none" not in exact else "none"
    matching = [level for pattern, level in grants if fnmatchcase(workspace, pattern)]
    if not matching:
        return "none"
    if "none" in matching:
        return "none"
    return max(matching, key=LEVELS.__getitem__)


def allows(level: str, needed: str) -> bool:
    return LEVELS[level] >= LEVELS[needed]

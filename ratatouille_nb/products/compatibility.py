"""Semver against the schema: a version is a contract on its columns.

Removing or retyping a column needs a new major version; adding columns needs at least a new
minor; anything else may be a patch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import semver


@dataclass(frozen=True)
class SchemaChange:
    removed: list[str] = field(default_factory=list)
    retyped: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return bool(self.removed or self.retyped)

    def describe(self) -> str:
        parts = []
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        if self.retyped:
            parts.append("retyped " + ", ".join(self.retyped))
        if self.added:
            parts.append("added " + ", ".join(self.added))
        return "; ".join(parts) or "no column changes"


def schema_change(old: list[dict], new: list[dict]) -> SchemaChange:
    """Compare two schemas given as [{name, type, …}] lists."""
    before = {c["name"]: c["type"] for c in old}
    after = {c["name"]: c["type"] for c in new}
    return SchemaChange(
        removed=[c for c in before if c not in after],
        retyped=[f"{c} ({before[c]} -> {after[c]})" for c in before if c in after and before[c] != after[c]],
        added=[c for c in after if c not in before],
    )


def lowest_acceptable(previous: semver.Version, change: SchemaChange) -> semver.Version:
    """The smallest version allowed after `previous` for this schema change."""
    if change.breaking:
        return previous.bump_major()
    if change.added:
        return previous.bump_minor()
    return previous.bump_patch()


def is_acceptable(previous: semver.Version, candidate: semver.Version, change: SchemaChange) -> bool:
    if change.breaking:
        return candidate.major > previous.major
    if change.added:
        return (candidate.major, candidate.minor) > (previous.major, previous.minor)
    return candidate > previous

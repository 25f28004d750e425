"""Three-way merge of table maps: the one rule Nessie and lakeFS share, kept pure for testing."""

from __future__ import annotations

from collections.abc import Mapping

from ratatouille_nb.catalog.models import TableEntry

Contents = Mapping[str, TableEntry]


def changed_keys(before: Contents, after: Contents) -> set[str]:
    """Keys whose entry differs (added, removed or pointing at other metadata)."""
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def three_way(ancestor: Contents, source: Contents, target: Contents) -> tuple[dict[str, TableEntry], list[str]]:
    """Merge `source` into `target` given their common `ancestor`.

    A table changed on one side only takes that side; changed on both sides to different
    values is a conflict. Returns (merged contents, sorted conflicting keys).
    """
    merged = dict(target)
    conflicts = []
    for key in changed_keys(ancestor, source):
        src, tgt, base = source.get(key), target.get(key), ancestor.get(key)
        if tgt == base:
            if src is None:
                merged.pop(key, None)
            else:
                merged[key] = src
        elif tgt != src:
            conflicts.append(key)
    return merged, sorted(conflicts)

"""Three-way merge of table maps: the one rule Nessie and lakeFS share, kept pure for testing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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


def merge_base_contents(ancestors: Sequence[Contents], source: Contents, target: Contents) -> dict[str, TableEntry]:
    """The ancestor table map for `three_way`, given every nearest common ancestor.

    One ancestor (the usual case) is used as it is. After criss-cross merges there are several;
    then, per table, a side that still holds the version one of them had did not change it, so
    that version is the base; if neither side does, both changed it and any of them will do.
    """
    if not ancestors:
        return {}
    if len(ancestors) == 1:
        return dict(ancestors[0])
    base: dict[str, TableEntry] = {}
    for key in set().union(*ancestors, source, target):
        versions = [a.get(key) for a in ancestors]
        if source.get(key) in versions:
            entry = source.get(key)
        elif target.get(key) in versions:
            entry = target.get(key)
        else:
            entry = versions[0]
        if entry is not None:
            base[key] = entry
    return base


Parents = Callable[[str], Sequence[str]]


def ancestors(start: str, parents: Parents) -> dict[str, int]:
    """Every ancestor of a commit (inclusive) with its distance, breadth first."""
    seen = {start: 0}
    frontier = [start]
    while frontier:
        nxt = []
        for h in frontier:
            for p in parents(h):
                if p not in seen:
                    seen[p] = seen[h] + 1
                    nxt.append(p)
        frontier = nxt
    return seen


def best_common_ancestors(a: str, b: str, parents: Parents) -> list[str]:
    """Common ancestors of `a` and `b` that are not ancestors of another common one.

    Usually one; several after criss-cross merges. Sorted nearest first (by total distance).
    Shared by every version store, so local and Nessie merges pick the same bases.
    """
    ours, theirs = ancestors(a, parents), ancestors(b, parents)
    common = ours.keys() & theirs.keys()
    redundant: set[str] = set()
    for h in common:
        frontier = [p for p in parents(h) if p not in redundant]
        while frontier:
            nxt: list[str] = []
            for p in frontier:
                if p not in redundant:
                    redundant.add(p)
                    nxt.extend(q for q in parents(p) if q not in redundant)
            frontier = nxt
    return sorted(common - redundant, key=lambda h: (ours[h] + theirs[h], h))

"""Merge semantics of the version store, checked against a pure-Python model with hypothesis.

The model knows nothing about commits or merge bases. For every branch it keeps, per table, the
current value and the set of values ("write events") that branch's history has seen. Every write
is a fresh, unique value, so "changed since the branches diverged" means exactly "the other side
has never seen this value". Merging A into B, per table:

* the same value on both sides                 -> keep it;
* the target has already seen A's value        -> keep the target's (only B changed it);
* A has already seen B's value                 -> take A's (only A changed it);
* neither has seen the other's                 -> conflict (both changed it).

A merge with any conflict changes nothing; otherwise B's knowledge becomes the union of both.
This is the three-way rule with the *right* common ancestor, stated without one. (Drops are left
to the fixed tests below: "absent" is one state whatever dropped it, so create-then-drop on one
side is no change at all for a three-way merge, which this event model cannot express.)
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratatouille_nb.catalog.local import ROOT_HASH, LocalVersionStore
from ratatouille_nb.catalog.merge import changed_keys, three_way
from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.refs import RefSpec, parse_ref, parse_time, validate_ref_name
from ratatouille_nb.errors import (
    CatalogError,
    InvalidNameError,
    MergeConflictError,
    ReferenceExistsError,
    ReferenceNotFoundError,
)

BRANCHES = ("main", "b1", "b2")
FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # hundreds of tiny SQLite stores
TABLES = ("bronze.t0", "silver.t1", "gold.t2")


def E(n: int | str) -> TableEntry:
    return TableEntry(metadata_location=f"m-{n}")


# -- the model --------------------------------------------------------------------------------


class ModelBranch:
    def __init__(self, values: dict[str, str] | None = None, seen: dict[str, frozenset[str]] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})  # table -> current value ("m-3")
        self.seen: dict[str, frozenset[str]] = dict(seen or {})  # table -> values in this history

    def copy(self) -> ModelBranch:
        return ModelBranch(self.values, self.seen)

    def contents(self) -> dict[str, TableEntry]:
        return {t: TableEntry(metadata_location=v) for t, v in self.values.items()}

    def write(self, table: str, value: str) -> None:
        self.values[table] = value
        self.seen[table] = self.seen.get(table, frozenset()) | {value}


def model_merge(src: ModelBranch, tgt: ModelBranch) -> tuple[ModelBranch, list[str]]:
    """(new target, sorted conflicting tables) for merging `src` into `tgt`."""
    out = tgt.copy()
    conflicts = []
    for table in set(src.values) | set(tgt.values):
        a, b = src.values.get(table), tgt.values.get(table)
        seen_a, seen_b = src.seen.get(table, frozenset()), tgt.seen.get(table, frozenset())
        if a == b or a is None or a in seen_b:
            pass  # keep the target's value
        elif b is None or b in seen_a:
            out.values[table] = a
        else:
            conflicts.append(table)
        out.seen[table] = seen_a | seen_b
    return out, sorted(conflicts)


# -- operations -------------------------------------------------------------------------------
# Operations pick branches by index into the branches that exist at that step (so few are wasted),
# except `delete`, which names one of BRANCHES outright (main or a missing one is an error path).

idx_st = st.integers(0, len(BRANCHES) - 1)
# a branch mostly writes "its own" table (TABLES[its index in BRANCHES]), so merges often succeed
write_st = st.tuples(st.just("write"), idx_st, st.sampled_from([0, 0, 0, 1, 2]))
merge_st = st.tuples(st.just("merge"), idx_st, idx_st)
op_st = st.one_of(
    write_st,
    write_st,
    write_st,
    st.tuples(st.just("create"), idx_st, idx_st),
    st.tuples(st.just("delete"), idx_st, idx_st),
    merge_st,
    merge_st,
)
Op = tuple[str, int, int]


def _check(store: LocalVersionStore, model: dict[str, ModelBranch], step: object) -> None:
    refs = {r.name: r for r in store.list_references()}
    assert set(refs) == set(model), step
    for name, branch in model.items():
        assert refs[name].kind == "branch"
        assert store.contents(name) == branch.contents(), (step, name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op_st, min_size=15, max_size=40))
def test_merge_agrees_with_model(ops: list[Op]) -> None:
    run_against_model(ops)


def run_against_model(ops: list[Op]) -> None:
    """Apply `ops` to a fresh store and to the model, comparing after every step."""
    counter = itertools.count(1)
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        store = LocalVersionStore(Path(tmp) / "catalog.db")
        try:
            model = {"main": ModelBranch()}
            for step in ops:
                kind, i, j = step
                live = list(model)
                if kind == "write":  # a new version of a table on a branch
                    branch = live[i % len(live)]
                    table = TABLES[(BRANCHES.index(branch) + j) % len(TABLES)]
                    n = next(counter)
                    head = store.get_reference(branch).hash
                    new = store.commit(branch, head, {table: E(n)}, {table: "overwrite"}, message=f"w{n}", author="t")
                    assert new.parents == (head,)
                    model[branch].write(table, f"m-{n}")
                elif kind == "create":  # a branch from live[j]
                    free = [b for b in BRANCHES if b not in model]
                    start = live[j % len(live)]
                    if not free:
                        with pytest.raises(ReferenceExistsError):
                            store.create_reference(BRANCHES[i], "branch", start)
                    else:
                        name = free[i % len(free)]
                        store.create_reference(name, "branch", start)
                        model[name] = model[start].copy()
                elif kind == "delete":
                    name = BRANCHES[i]
                    if name == "main":
                        with pytest.raises(CatalogError, match="default branch"):
                            store.delete_reference(name)
                    elif name not in model:
                        with pytest.raises(ReferenceNotFoundError):
                            store.delete_reference(name)
                    else:
                        store.delete_reference(name)
                        del model[name]
                else:  # merge one branch into another (into itself only while main is alone)
                    src = live[i % len(live)]
                    tgt = live[(i + 1 + j % max(len(live) - 1, 1)) % len(live)]
                    before = store.get_reference(tgt).hash
                    if src == tgt:
                        with pytest.raises(InvalidNameError, match="into itself"):
                            store.merge(src, tgt)
                        assert store.get_reference(tgt).hash == before
                        continue
                    expected, conflicts = model_merge(model[src], model[tgt])
                    if conflicts:
                        with pytest.raises(MergeConflictError) as info:
                            store.merge(src, tgt)
                        assert info.value.tables == conflicts, step
                        for table in conflicts:
                            assert table in str(info.value)
                        assert store.get_reference(tgt).hash == before, step
                    else:
                        result = store.merge(src, tgt)
                        src_head = store.get_reference(src).hash
                        if result.kind == "merge":
                            assert result.commit.parents == (before, src_head)
                        elif result.kind == "fast-forward":
                            assert result.commit.hash == src_head
                        else:
                            assert result.commit.hash == before
                        assert store.get_reference(tgt).hash == result.commit.hash
                        model[tgt] = expected
                _check(store, model, step)
            _check_merge_bases(store)
            _probe_every_merge(store, model)
        finally:
            store.close()


def _check_merge_bases(store: LocalVersionStore) -> None:
    """For every pair of commits: merge_base is a common ancestor with no common descendant-ancestor."""
    commits = {c.hash: c for c in store.all_commits()}

    def ancestors(h: str) -> set[str]:
        out, todo = set(), [h]
        while todo:
            x = todo.pop()
            if x not in out:
                out.add(x)
                todo.extend(commits[x].parents)
        return out

    anc = {h: ancestors(h) for h in commits}
    for a in commits:
        for b in commits:
            common = anc[a] & anc[b]
            best = {c for c in common if not any(c in anc[d] for d in common if d != c)}
            base = store.merge_base(a, b)
            assert base is not None and base.hash in best, (a[:8], b[:8])


def _probe_every_merge(store: LocalVersionStore, model: dict[str, ModelBranch]) -> None:
    """Merge every branch into a throwaway copy of every other one and compare with the model."""
    for src in model:
        for tgt in model:
            if src == tgt:
                continue
            store.create_reference("probe", "branch", tgt)
            expected, conflicts = model_merge(model[src], model[tgt])
            try:
                if conflicts:
                    with pytest.raises(MergeConflictError) as info:
                        store.merge(src, "probe")
                    assert info.value.tables == conflicts, (src, tgt)
                else:
                    store.merge(src, "probe")
                    assert store.contents("probe") == expected.contents(), (src, tgt)
            finally:
                store.delete_reference("probe")


# -- fixed histories the model test found or that are easy to get wrong ------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalVersionStore]:
    s = LocalVersionStore(tmp_path / "catalog.db")
    yield s
    s.close()


def _write(store: LocalVersionStore, branch: str, **tables: int | None) -> str:
    changes = {k.replace("_", "."): (E(v) if v is not None else None) for k, v in tables.items()}
    ops = {k: ("overwrite" if v is not None else "drop") for k, v in changes.items()}
    return store.commit(branch, store.get_reference(branch).hash, changes, ops, message="w", author="t").hash


def test_fast_forward_merge_commit_and_up_to_date(store: LocalVersionStore) -> None:
    _write(store, "main", a_x=1)
    store.create_reference("dev", "branch", "main")
    _write(store, "dev", a_x=2)
    r = store.merge("dev", "main")
    assert r.kind == "fast-forward" and r.tables == ["a.x"] and store.contents("main") == {"a.x": E(2)}
    assert store.merge("dev", "main").kind == "up-to-date"
    _write(store, "dev", a_y=3)
    _write(store, "main", a_z=4)
    r = store.merge("dev", "main")
    assert r.kind == "merge" and len(r.commit.parents) == 2 and r.tables == ["a.y"]
    assert store.contents("main") == {"a.x": E(2), "a.y": E(3), "a.z": E(4)}
    assert r.commit.operations == {"a.y": "merge"}


def test_conflict_names_tables_and_changes_nothing(store: LocalVersionStore) -> None:
    _write(store, "main", a_x=1, a_y=1)
    store.create_reference("dev", "branch", "main")
    _write(store, "dev", a_x=2, a_y=None)
    _write(store, "main", a_x=3, a_y=4)
    head = store.get_reference("main").hash
    with pytest.raises(MergeConflictError, match=r"a\.x, a\.y") as info:
        store.merge("dev", "main")
    assert info.value.tables == ["a.x", "a.y"]
    assert store.get_reference("main").hash == head


def test_merge_base_is_the_nearest_common_ancestor_not_the_closest_to_the_target(store: LocalVersionStore) -> None:
    # main: Y(t1=1) - X(t1=3) - T1(t1=5) - T2(t1=6) - M(merge feature)
    # feature forks at Y; a forks at X and only adds t3. Merging a into main must use X as the
    # base (t1 unchanged on a), not Y, which a breadth-first walk from main's head reaches first.
    y = _write(store, "main", a_t1=1)
    store.create_reference("feature", "branch", y)
    _write(store, "feature", a_t2=2)
    _write(store, "main", a_t1=3)
    store.create_reference("a", "branch", "main")
    _write(store, "a", a_t3=4)
    _write(store, "main", a_t1=5)
    _write(store, "main", a_t1=6)
    assert store.merge("feature", "main").kind == "merge"
    r = store.merge("a", "main")
    assert r.kind == "merge"
    assert store.contents("main") == {"a.t1": E(6), "a.t2": E(2), "a.t3": E(4)}


def test_criss_cross_merge_uses_both_ancestors(store: LocalVersionStore) -> None:
    # A and B diverge, each merges the other's old head (criss-cross); A then changes t.
    # Both a1 and b1 are nearest common ancestors; taking only b1 (where t is unchanged) as the
    # base would report t as changed on both sides.
    _write(store, "main", k_t=0, k_u=0)
    store.create_reference("b", "branch", "main")
    _write(store, "main", k_t=1)  # a1
    _write(store, "b", k_u=2)  # b1
    store.create_reference("c", "branch", "b")
    store.merge("main", "b")  # b  = (b1, a1)
    store.merge("c", "main")  # main = (a1, b1)
    _write(store, "main", k_t=3)
    r = store.merge("main", "b")
    assert r.kind == "merge"
    assert store.contents("b") == {"k.t": E(3), "k.u": E(2)}


def test_merge_into_tag_or_unknown_or_itself(store: LocalVersionStore) -> None:
    _write(store, "main", a_x=1)
    store.create_reference("v1", "tag", "main")
    store.create_reference("dev", "branch", "main")
    with pytest.raises(ReferenceNotFoundError, match="tag"):
        store.merge("dev", "v1")
    with pytest.raises(ReferenceNotFoundError):
        store.merge("nope", "main")
    with pytest.raises(ReferenceNotFoundError):
        store.merge("dev", "nope")
    with pytest.raises(InvalidNameError, match="itself"):
        store.merge("main", "main")
    with pytest.raises(ReferenceNotFoundError, match="tags cannot be written"):
        store.commit("v1", store.get_reference("v1").hash, {"a.y": E(2)}, {}, message="x", author="t")


def test_merge_from_tag_and_hash(store: LocalVersionStore) -> None:
    first = _write(store, "main", a_x=1)
    store.create_reference("v1", "tag", "main")
    store.create_reference("dev", "branch", ROOT_HASH)
    assert store.merge("v1", "dev").kind == "fast-forward"
    assert store.contents("dev") == {"a.x": E(1)}
    _write(store, "main", a_x=2)
    store.create_reference("old", "branch", ROOT_HASH)
    assert store.merge(first, "old").commit.hash == first


# -- merge.three_way and changed_keys ----------------------------------------------------------


def test_three_way_rules() -> None:
    base = {"a": E(1), "b": E(1), "c": E(1), "d": E(1), "e": E(1)}
    source = {"a": E(2), "b": E(1), "c": E(3), "d": E(4), "new": E(5)}  # e dropped
    target = {"a": E(1), "b": E(6), "c": E(3), "d": E(7), "e": E(1), "t": E(8)}
    merged, conflicts = three_way(base, source, target)
    assert conflicts == ["d"]
    assert merged == {"a": E(2), "b": E(6), "c": E(3), "d": E(7), "new": E(5), "t": E(8)}


def test_three_way_edge_cases() -> None:
    assert three_way({}, {}, {}) == ({}, [])
    # added on both sides: the same entry is fine, different entries conflict
    assert three_way({}, {"x": E(1)}, {"x": E(1)}) == ({"x": E(1)}, [])
    assert three_way({}, {"x": E(1)}, {"x": E(2)})[1] == ["x"]
    # dropped on both sides
    assert three_way({"x": E(1)}, {}, {}) == ({}, [])
    # dropped on one side, changed on the other
    assert three_way({"x": E(1)}, {}, {"x": E(2)})[1] == ["x"]
    assert three_way({"x": E(1)}, {"x": E(2)}, {})[1] == ["x"]
    # dropped on the source only
    assert three_way({"x": E(1), "y": E(1)}, {"y": E(1)}, {"x": E(1), "y": E(1)}) == ({"y": E(1)}, [])
    # conflicts are sorted, and the inputs are not mutated
    base = {k: E(0) for k in "zyx"}
    src = {k: E(1) for k in "zyx"}
    tgt = {k: E(2) for k in "zyx"}
    assert three_way(base, src, tgt)[1] == ["x", "y", "z"]
    assert base == {k: E(0) for k in "zyx"} and tgt == {k: E(2) for k in "zyx"}
    # the snapshot id is part of the entry
    same_meta = TableEntry(metadata_location="m-1", snapshot_id=7)
    assert changed_keys({"x": E(1)}, {"x": same_meta}) == {"x"}


@settings(max_examples=200, deadline=None)
@given(
    base=st.dictionaries(st.sampled_from("abcd"), st.integers(0, 3).map(E), max_size=4),
    src=st.dictionaries(st.sampled_from("abcd"), st.integers(0, 3).map(E), max_size=4),
    tgt=st.dictionaries(st.sampled_from("abcd"), st.integers(0, 3).map(E), max_size=4),
)
def test_three_way_properties(base: dict, src: dict, tgt: dict) -> None:
    merged, conflicts = three_way(base, src, tgt)
    assert conflicts == sorted(conflicts)
    for key in set(base) | set(src) | set(tgt):
        b, s, t = base.get(key), src.get(key), tgt.get(key)
        if s in (t, b):
            assert merged.get(key) == t and key not in conflicts
        elif t == b:
            assert merged.get(key) == s and key not in conflicts
        else:
            assert key in conflicts
    # merging with nothing changed on the source is the target; symmetric conflict sets
    assert three_way(base, base, tgt) == (dict(tgt), [])
    assert three_way(base, tgt, src)[1] == conflicts


# -- refs.py ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["main", "dev", "workspace/acme", "workspace/acme/dev/feature-x", "release-1.2", "v1", "a_b", "UPPER", "x" * 200, "abc123"],
)
def test_valid_ref_names(name: str) -> None:
    assert validate_ref_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "", "bad..name", "-x", "a//b", "/a", "a/", "x.lock", "x.", ".hidden", "a/.b", "with space", " lead",
        "tab\tx", "new\nline", "a@{1}", "a@b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "é",
        "x" * 201, "0123456789abcdef0123456789abcdef01234567", "a/-b",
    ],
)
def test_invalid_ref_names(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid reference name"):
        validate_ref_name(name)


def test_parse_ref_forms() -> None:
    assert parse_ref("main") == RefSpec("main")
    assert parse_ref("  workspace/acme/dev  ") == RefSpec("workspace/acme/dev")
    assert parse_ref("main~2") == RefSpec("main", back=2)
    assert parse_ref("main@ABCDEF12") == RefSpec("main", hash="abcdef12")
    assert parse_ref("main@abcdef12~1") == RefSpec("main", hash="abcdef12", back=1)
    assert parse_ref("@abcdef12") == RefSpec(None, hash="abcdef12")
    assert parse_ref("abcdef12") == RefSpec("abcdef12")
    at = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_ref("main@2024-05-01T10:00") == RefSpec("main", at=at)
    assert parse_ref("main@2024-05-01T10:00:00Z") == RefSpec("main", at=at)
    assert parse_ref("main@2024-05-01T12:00:00+02:00").at == at
    assert parse_ref("main@2024-05-01") == RefSpec("main", at=datetime(2024, 5, 1, tzinfo=UTC))
    assert parse_ref("main*1714557600000") == RefSpec("main", at=at)
    assert parse_ref("main@2024-05-01T10:00~3") == RefSpec("main", at=at, back=3)
    for bad in ("", "   ", "main@not-a-time", "main*yesterday"):
        with pytest.raises(ReferenceNotFoundError):
            parse_ref(bad)


def test_parse_time() -> None:
    assert parse_time("0") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00.5").microsecond == 500000
    assert parse_time("2024-05-01T10:00:00-01:00").utcoffset() == timedelta(hours=-1)


def test_resolve_expressions(store: LocalVersionStore) -> None:
    c1 = _write(store, "main", a_x=1)
    c2 = _write(store, "main", a_x=2)
    c3 = _write(store, "main", a_x=3)
    commits = {h: store.get_commit(h) for h in (c1, c2, c3)}
    assert store.resolve("main").hash == c3
    assert store.resolve("main~1").hash == c2
    assert store.resolve("main~2").hash == c1
    assert store.resolve(f"main@{c1[:10]}").hash == c1
    assert store.resolve(c2[:8]).hash == c2
    assert store.resolve(c2.upper()).hash == c2
    assert store.resolve(f"{c2}~1").hash == c1
    middle = (commits[c1].created_at + commits[c2].created_at) / 2
    iso = datetime.fromtimestamp(middle, tz=UTC).isoformat()
    # the newest commit at or before the time, walking back from the branch head
    expected = (c1,) if commits[c2].created_at - commits[c1].created_at > 1e-5 else (c1, c2)
    assert store.resolve(f"main@{iso}").hash in expected
    assert store.resolve(f"main@{datetime.now(UTC).isoformat()}").hash == c3
    assert store.resolve("main@1999-01-01").hash == ROOT_HASH  # before the first commit: empty
    assert store.contents("main~3") == {}
    with pytest.raises(ReferenceNotFoundError, match="past the first commit"):
        store.resolve("main~4")
    with pytest.raises(ReferenceNotFoundError, match="unknown reference"):
        store.resolve("nope")
    with pytest.raises(ReferenceNotFoundError, match="unknown reference"):
        store.resolve("nope@" + c1)
    with pytest.raises(ReferenceNotFoundError):
        store.resolve("main@" + "f" * 12)
    assert [c.hash for c in store.log("main")] == [c3, c2, c1]
    assert [c.hash for c in store.log("main", limit=2)] == [c3, c2]

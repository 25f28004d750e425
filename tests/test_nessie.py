"""The Nessie backend: wire contract against the spec, store semantics, and the branch scenario end to end.

Three layers, all against `tests/nessie_fake.py` (an in-process Nessie REST API v2 whose every
request and response is validated against `tests/fixtures/nessie/nessie-openapi.yaml` + the schemas
transcribed from Nessie's model):

1. the contract itself: the spec's examples validate against the schemas, and the client parses them;
2. `NessieVersionStore` on its own: references, commits (content ids, namespaces, views, Nessie's
   optimistic concurrency), time travel, paging, merges, and a differential test against the
   embedded `LocalVersionStore` on random histories;
3. an engine `Session` with `RAT_CATALOG=nessie`: 1,000 rows on a branch, dev branch, diff, merge,
   conflicting merge, time travel, tags, and two sessions racing on one branch.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ratatouille_nb.catalog import open_store
from ratatouille_nb.catalog.base import StaleHeadError
from ratatouille_nb.catalog.diff import diff_refs
from ratatouille_nb.catalog.local import ROOT_HASH, LocalVersionStore
from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.nessie import (
    OPERATIONS_PROPERTY,
    VIEW_PLACEHOLDER,
    NessieVersionStore,
    _meta_from_log_entry,
    _stored_from_content,
)
from ratatouille_nb.catalog.nessie_client import (
    NO_ANCESTOR_HASH,
    NessieHTTPError,
    key_path_string,
    key_to_elements,
    normalize_uri,
    ref_path,
)
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import (
    CatalogError,
    CommitConflictError,
    ConfigError,
    InvalidNameError,
    MergeConflictError,
    ProtectedBranchError,
    ReferenceExistsError,
    ReferenceNotFoundError,
    SqlError,
)
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

from .nessie_fake import (
    EXAMPLE_SCHEMAS,
    REF_EXAMPLES,
    REF_NAME_PATH_REGEX,
    SPEC_FILE,
    UNUSED_EXAMPLES,
    FakeNessie,
    load_spec,
    shared_validator,
)


def test_the_spec_is_in_the_repository() -> None:
    assert SPEC_FILE.is_file(), f"the Nessie OpenAPI document belongs at {SPEC_FILE}"


@pytest.fixture(autouse=True)
def _quiet_metadata_warnings(caplog: pytest.LogCaptureFixture) -> None:
    # Store-level tests use made-up metadata locations; the store logs that it cannot read them.
    caplog.set_level(logging.ERROR, logger="ratatouille_nb.catalog.nessie")


@pytest.fixture
def fake() -> Iterator[FakeNessie]:
    with FakeNessie() as server:
        yield server
    assert server.violations == [], "spec violations:\n" + "\n".join(server.violations)


@pytest.fixture
def store(fake: FakeNessie) -> Iterator[NessieVersionStore]:
    s = NessieVersionStore(fake.uri)
    yield s
    s.close()


def E(n: int | str) -> TableEntry:
    return TableEntry(metadata_location=f"m-{n}")


def _write(store: Any, branch: str, **tables: int | None) -> str:
    changes = {k.replace("_", "."): (E(v) if v is not None else None) for k, v in tables.items()}
    ops = {k: ("overwrite" if v is not None else "drop") for k, v in changes.items()}
    return store.commit(branch, store.get_reference(branch).hash, changes, ops, message="w", author="t").hash


def _examples() -> dict[str, Any]:
    return {k: v["value"] for k, v in load_spec()["components"]["examples"].items()}


# -- 1. the contract --------------------------------------------------------------------------


def test_spec_has_no_schemas_so_the_contract_adds_them() -> None:
    spec = load_spec()
    assert spec["paths"] == {} and "schemas" not in spec["components"]
    doc = shared_validator().document
    assert set(doc["components"]["examples"]) == set(spec["components"]["examples"])
    assert {"/trees/{ref}/history/commit", "/trees/{ref}/history/merge"} <= set(doc["paths"])


def test_contract_document_is_valid_openapi() -> None:
    from openapi_spec_validator import validate

    validate(shared_validator().document)


@pytest.mark.parametrize("example", sorted(EXAMPLE_SCHEMAS))
def test_spec_example_matches_its_schema(example: str) -> None:
    errors = shared_validator().payload_errors(EXAMPLE_SCHEMAS[example], _examples()[example])
    assert errors == []


def test_every_spec_example_is_accounted_for() -> None:
    names = set(_examples())
    assert names == set(EXAMPLE_SCHEMAS) | set(REF_EXAMPLES) | UNUSED_EXAMPLES
    assert not set(EXAMPLE_SCHEMAS) & UNUSED_EXAMPLES


@pytest.mark.parametrize("example", REF_EXAMPLES)
def test_ref_path_examples_parse(example: str) -> None:
    import re

    value = _examples()[example]
    assert re.match(REF_NAME_PATH_REGEX, value), value
    with FakeNessie(validate=False) as server:
        name, hash_, _relative = server._parse(value)
    assert name or hash_


def test_client_ref_paths_match_the_ref_parameter_pattern() -> None:
    import re

    h = "a" * 64
    for path, expected in [
        (ref_path("main"), "main"),
        (ref_path("main", h), f"main@{h}"),
        (ref_path(None, h), f"@{h}"),
        (ref_path("workspace/acme"), "workspace/acme@"),
        (ref_path("workspace/acme", h, "~2"), f"workspace/acme@{h}~2"),
        (ref_path("main", h, "*2024-05-01T10:00:00.000000Z"), f"main@{h}*2024-05-01T10:00:00.000000Z"),
    ]:
        assert path == expected and re.match(REF_NAME_PATH_REGEX, path), path


def test_schema_validation_catches_bad_payloads(fake: FakeNessie) -> None:
    v = shared_validator()
    assert v.payload_errors("IcebergTable", {"type": "ICEBERG_TABLE", "metadataLocation": "x"})  # ids missing
    assert v.payload_errors("Operations", {"commitMeta": {"message": "m"}, "operations": [{"type": "PUT", "key": {"elements": ["a"]}}]})
    assert v.payload_errors("CommitMeta", {"message": "m", "hsah": "00"})  # closed objects catch typos
    assert v.payload_errors("Merge", {"fromRefName": "1abc", "fromHash": "zz"})
    # A client request that breaks the contract is refused and recorded.
    bad = requests.post(f"{fake.uri}/trees/main/history/commit", json={"operations": []}, timeout=10)
    assert bad.status_code == 400 and bad.json()["errorCode"] == "BAD_REQUEST"
    bad = requests.post(f"{fake.uri}/trees", params={"name": "x", "type": "FOLDER"}, json={"type": "BRANCH", "name": "main"}, timeout=10)
    assert bad.status_code == 400
    assert len(fake.violations) == 2 and "commitMeta" in fake.violations[0]
    fake.violations.clear()


def test_client_reads_spec_examples() -> None:
    ex = _examples()
    entry = ex["logResponseAdditionalInfo"]["logEntries"][0]
    hash_, meta = _meta_from_log_entry(entry)
    assert hash_ == entry["commitMeta"]["hash"]
    assert meta.parents == (entry["parentCommitHash"],)
    assert meta.author == "authorName <authorName@example.com>" and meta.message == "Example Commit Message"
    assert meta.created_at == datetime(2021, 4, 7, 14, 42, 25, 534748, tzinfo=UTC).timestamp()
    stored = _stored_from_content(ex["iceberg"])
    assert stored.entry == TableEntry(metadata_location="/path/to/metadata/", snapshot_id=1)
    assert stored.content_id == ex["iceberg"]["id"] and stored.type == "ICEBERG_TABLE"
    for item in ex["entriesResponseV2"]["entries"]:
        assert _stored_from_content(item["content"]).content_id == item["contentId"]
    # v2 commit metadata (as the server sends it) reads the same as v1 names
    v2 = {"commitMeta": {"hash": "ab" * 32, "authors": ["x"], "message": "m", "commitTime": "2024-01-01T00:00:00Z",
                         "allProperties": {OPERATIONS_PROPERTY: ['{"a.b":"append"}']}, "parentCommitHashes": ["cd" * 32, "ef" * 32]}}
    _h, meta2 = _meta_from_log_entry(v2)
    assert meta2.parents == ("cd" * 32, "ef" * 32) and meta2.author == "x" and meta2.operations == {"a.b": "append"}
    # conflicts in error details name the tables, whether the field is `conflictType` or `type`
    conflict = ex["mergeResponseFail"]["details"][0]["conflict"]
    err = NessieHTTPError(409, "REFERENCE_CONFLICT", "conflict", [conflict, {"conflictType": "VALUE_DIFFERS", "key": {"elements": ["a", "b"]}, "message": "m"}])
    assert err.conflict_keys() == ["a.b", "example.key"]


def test_key_escaping_follows_the_spec_readme() -> None:
    assert key_path_string(["bronze", "sales"]) == "bronze.sales"
    assert key_path_string(["a*b", "c"]) == "a*b.c"  # `*` is only escaped in the escaped form
    assert key_path_string(["foo", ".bar", "baz"]) == ".foo.*.bar.baz"
    assert key_path_string(["foo.", "*", "a/\\%aa"]) == ".foo*..**.a*{*}*[aa"
    assert key_to_elements("bronze.raw_sales") == ["bronze", "raw_sales"]
    assert key_to_elements("products") == ["products"]


def test_uri_forms() -> None:
    assert normalize_uri("http://h:19120") == "http://h:19120/api/v2"
    assert normalize_uri("http://h:19120/api/") == "http://h:19120/api/v2"
    assert normalize_uri("https://h/nessie/api/v2/") == "https://h/nessie/api/v2"
    with pytest.raises(ConfigError, match="v1"):
        normalize_uri("http://h:19120/api/v1")
    with pytest.raises(ConfigError, match="http"):
        normalize_uri("h:19120")


# -- 2. the store -----------------------------------------------------------------------------


def test_open_store_selects_nessie(fake: FakeNessie, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAT_CATALOG", "nessie")
    monkeypatch.setenv("NESSIE_URI", fake.uri)
    store = open_store(Settings.from_env(home=str(tmp_path)))
    assert isinstance(store, NessieVersionStore) and store.default_branch == "main"
    store.close()
    monkeypatch.delenv("NESSIE_URI")
    with pytest.raises(ConfigError, match="NESSIE_URI"):
        open_store(Settings.from_env(home=str(tmp_path)))


def test_unreachable_server_is_one_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CatalogError, match="cannot reach Nessie") as info:
        NessieVersionStore(f"http://127.0.0.1:{port}/api/v2", timeout=5)
    assert "NESSIE_URI" in str(info.value)


def test_a_server_that_is_not_nessie(fake: FakeNessie) -> None:
    base = fake.uri.removesuffix("/api/v2")
    with pytest.raises(CatalogError, match="does not answer like Nessie") as info:
        NessieVersionStore(base + "/iceberg/main")
    assert "NESSIE_URI" in str(info.value)


def test_references(store: NessieVersionStore, fake: FakeNessie) -> None:
    assert [(r.name, r.kind, r.hash) for r in store.list_references()] == [("main", "branch", NO_ANCESTOR_HASH)]
    first = _write(store, "main", a_x=1)
    dev = store.create_reference("dev", "branch", "main")
    tag = store.create_reference("v1", "tag", "main")
    assert dev.hash == tag.hash == first and tag.kind == "tag"
    nested = store.create_reference("workspace/acme", "branch", "v1")
    assert store.get_reference("workspace/acme") == nested
    assert store.create_reference("old", "branch", ROOT_HASH).hash == NO_ANCESTOR_HASH
    assert store.create_reference("at", "tag", first[:10]).hash == first
    assert [r.name for r in store.list_references()] == ["at", "dev", "main", "old", "v1", "workspace/acme"]
    with pytest.raises(ReferenceExistsError):
        store.create_reference("dev", "branch", "main")
    with pytest.raises(InvalidNameError):
        store.create_reference("1st", "branch")
    with pytest.raises(InvalidNameError):
        store.create_reference("a..b", "branch")
    with pytest.raises(ReferenceNotFoundError):
        store.get_reference("nope")
    with pytest.raises(ReferenceNotFoundError):
        store.create_reference("x", "branch", "nope")
    store.delete_reference("dev")
    store.delete_reference("v1")
    store.delete_reference("workspace/acme")
    with pytest.raises(ReferenceNotFoundError):
        store.delete_reference("dev")
    with pytest.raises(CatalogError, match="default branch"):
        store.delete_reference("main")
    with pytest.raises(CatalogError, match="authorization") as info:
        store.set_protected("main", True)
    assert "protected" in str(info.value)
    assert not any(r.protected for r in store.list_references())
    assert ("DELETE", f"/api/v2/trees/at@{first}?type=TAG", 200) not in fake.requests


def test_list_references_pages(fake: FakeNessie) -> None:
    fake.page_size = 2
    store = NessieVersionStore(fake.uri)
    for name in ("a", "b", "c", "d"):
        store.create_reference(name, "branch")
    assert [r.name for r in store.list_references()] == ["a", "b", "c", "d", "main"]
    store.close()
    assert any("page-token=" in path for _m, path, _s in fake.requests)


def _commits_ops(fake: FakeNessie, hash_: str) -> list[tuple[str, tuple[str, ...], bool]]:
    return [(o["type"], tuple(o["key"]["elements"]), "id" in o.get("content", {})) for o in fake.commits[hash_].operations]


def test_commit_writes_nessie_contents(store: NessieVersionStore, fake: FakeNessie) -> None:
    head = store.get_reference("main").hash
    c1 = store.commit(
        "main", head,
        {"bronze.t": TableEntry(metadata_location="/w/t/metadata/1.json"), "silver.v": TableEntry(metadata_location="", view_sql="SELECT 1 AS x")},
        {"bronze.t": "create", "silver.v": "create"},
        message="first", author="ann",
    )
    assert c1.parents == (NO_ANCESTOR_HASH,) and c1.author == "ann" and c1.message == "first"
    assert c1.operations == {"bronze.t": "create", "silver.v": "create"}
    assert c1.contents == {
        "bronze.t": TableEntry(metadata_location="/w/t/metadata/1.json"),
        "silver.v": TableEntry(metadata_location="", view_sql="SELECT 1 AS x"),
    }
    raw = fake.commits[c1.hash].contents
    assert raw[("bronze",)]["type"] == raw[("silver",)]["type"] == "NAMESPACE"
    assert raw[("bronze", "t")]["snapshotId"] == -1
    view = raw[("silver", "v")]
    assert (view["type"], view["metadataLocation"], view["sqlText"], view["dialect"]) == ("ICEBERG_VIEW", VIEW_PLACEHOLDER, "SELECT 1 AS x", "duckdb")
    assert json.loads(fake.commits[c1.hash].meta["allProperties"][OPERATIONS_PROPERTY][0]) == c1.operations
    # an append updates the same Nessie content (PUT with its id); a replace is DELETE + PUT without id
    c2 = store.commit("main", c1.hash, {"bronze.t": TableEntry(metadata_location="m2", snapshot_id=7)}, {"bronze.t": "append"}, message="a")
    assert _commits_ops(fake, c2.hash) == [("PUT", ("bronze", "t"), True)]
    assert fake.commits[c2.hash].contents[("bronze", "t")]["id"] == raw[("bronze", "t")]["id"]
    c3 = store.commit("main", c2.hash, {"bronze.t": TableEntry(metadata_location="m3")}, {"bronze.t": "replace"}, message="r")
    assert _commits_ops(fake, c3.hash) == [("DELETE", ("bronze", "t"), False), ("PUT", ("bronze", "t"), False)]
    assert fake.commits[c3.hash].contents[("bronze", "t")]["id"] != raw[("bronze", "t")]["id"]
    c4 = store.commit("main", c3.hash, {"bronze.t": None, "bronze.gone": None}, {"bronze.t": "drop"}, message="d")
    assert _commits_ops(fake, c4.hash) == [("DELETE", ("bronze", "t"), False)]
    assert store.contents("main") == {"silver.v": TableEntry(metadata_location="", view_sql="SELECT 1 AS x")}
    assert store.get_commit(c2.hash).contents["bronze.t"].snapshot_id == 7


def test_commit_on_a_moved_head(store: NessieVersionStore, fake: FakeNessie) -> None:
    base = _write(store, "main", a_x=1, a_y=1)
    ours = store.commit("main", base, {"a.x": E(2)}, {"a.x": "append"}, message="ours")
    # the same table from the old head: Nessie refuses (409) and the store reports the new head
    with pytest.raises(StaleHeadError) as info:
        store.commit("main", base, {"a.x": E(3)}, {"a.x": "append"}, message="theirs")
    assert (info.value.expected, info.value.current) == (base, ours.hash)
    assert store.get_reference("main").hash == ours.hash
    assert any(p.endswith("/history/commit") and s == 409 for _m, p, s in fake.requests)
    # another table from the old head: Nessie lands it on the current head (what a rebase would do)
    other = store.commit("main", base, {"a.y": E(4)}, {"a.y": "append"}, message="other")
    assert other.parents == (ours.hash,)
    assert store.contents("main") == {"a.x": E(2), "a.y": E(4)}
    # a namespace created concurrently is a conflict too (the rebase then sees it exists)
    _write(store, "main", b_w=1)
    with pytest.raises(StaleHeadError):
        store.commit("main", base, {"b.z": E(5)}, {"b.z": "create"}, message="ns")
    store.create_reference("v1", "tag", "main")
    with pytest.raises(ReferenceNotFoundError, match="tags cannot be written"):
        store.commit("v1", store.get_reference("v1").hash, {"a.z": E(1)}, {}, message="x")


def test_forbidden_commit_is_a_protected_branch_error(store: NessieVersionStore, fake: FakeNessie) -> None:
    fake.forbidden_commits.add("main")
    with pytest.raises(ProtectedBranchError, match="authorization"):
        _write(store, "main", a_x=1)


def test_resolve_expressions(store: NessieVersionStore) -> None:
    c1 = _write(store, "main", a_x=1)
    time.sleep(0.01)
    c2 = _write(store, "main", a_x=2)
    time.sleep(0.01)
    c3 = _write(store, "main", a_x=3)
    commits = {h: store.get_commit(h) for h in (c1, c2, c3)}
    assert store.resolve("main").hash == c3
    assert store.resolve("main~1").hash == c2
    assert store.resolve("main~2").hash == c1
    assert store.resolve(f"main@{c1[:10]}").hash == c1
    assert store.resolve(c2[:8]).hash == c2
    assert store.resolve(c2.upper()).hash == c2
    assert store.resolve(f"{c2}~1").hash == c1
    assert store.resolve(f"@{c1}").hash == c1
    middle = (commits[c1].created_at + commits[c2].created_at) / 2
    assert store.resolve(f"main@{datetime.fromtimestamp(middle, tz=UTC).isoformat()}").hash == c1
    assert store.resolve(f"main*{int(middle * 1000)}").hash == c1
    assert store.resolve(f"main@{datetime.now(UTC).isoformat()}").hash == c3
    assert store.resolve("main@1999-01-01").hash == NO_ANCESTOR_HASH  # before the first commit: empty
    assert store.contents("main~3") == {}
    with pytest.raises(ReferenceNotFoundError, match="past the first commit"):
        store.resolve("main~4")
    with pytest.raises(ReferenceNotFoundError, match="unknown reference"):
        store.resolve("nope")
    with pytest.raises(ReferenceNotFoundError, match="unknown reference"):
        store.resolve("nope@" + c1)
    with pytest.raises(ReferenceNotFoundError):
        store.resolve("main@" + "f" * 12)
    with pytest.raises(ReferenceNotFoundError):
        store.get_commit("f" * 64)
    assert [c.hash for c in store.log("main")] == [c3, c2, c1]
    assert [c.hash for c in store.log("main", limit=2)] == [c3, c2]
    assert store.log(ROOT_HASH) == []
    root = store.get_commit(ROOT_HASH)
    assert root.parents == () and root.contents == {}


def test_log_follows_pages(fake: FakeNessie) -> None:
    fake.page_size = 3
    store = NessieVersionStore(fake.uri)
    hashes = [_write(store, "main", a_x=i) for i in range(8)]
    assert [c.hash for c in store.log("main")] == hashes[::-1]
    assert [c.hash for c in store.log("main", limit=5)] == hashes[::-1][:5]
    assert store.resolve("main~7").hash == hashes[0]
    store.close()


def test_fast_forward_merge_commit_and_up_to_date(store: NessieVersionStore, fake: FakeNessie) -> None:
    _write(store, "main", a_x=1)
    store.create_reference("dev", "branch", "main")
    _write(store, "dev", a_x=2)
    r = store.merge("dev", "main")
    assert r.kind == "fast-forward" and r.tables == ["a.x"] and store.contents("main") == {"a.x": E(2)}
    assert any(m == "PUT" for m, _p, _s in fake.requests)  # a fast-forward is a CAS reassign
    assert store.merge("dev", "main").kind == "up-to-date"
    _write(store, "dev", a_y=3)
    _write(store, "main", a_z=4)
    dev_head, main_head = store.get_reference("dev").hash, store.get_reference("main").hash
    r = store.merge("dev", "main", message="bring dev in", author="bob")
    assert r.kind == "merge" and r.commit.parents == (main_head, dev_head) and r.tables == ["a.y"]
    assert r.commit.message == "bring dev in" and r.commit.author == "bob"
    assert store.contents("main") == {"a.x": E(2), "a.y": E(3), "a.z": E(4)}
    assert r.commit.operations == {"a.y": "merge"}
    assert store.merge_base("dev", "main").hash == dev_head
    assert store.merge("main", "dev").kind == "fast-forward"


def test_conflict_names_tables_and_changes_nothing(store: NessieVersionStore, fake: FakeNessie) -> None:
    _write(store, "main", a_x=1, a_y=1)
    store.create_reference("dev", "branch", "main")
    _write(store, "dev", a_x=2, a_y=None)
    _write(store, "main", a_x=3, a_y=4)
    head = store.get_reference("main").hash
    sent = len(fake.requests)
    with pytest.raises(MergeConflictError, match=r"a\.x, a\.y") as info:
        store.merge("dev", "main")
    assert info.value.tables == ["a.x", "a.y"]
    assert store.get_reference("main").hash == head
    assert not any(p.endswith("/history/merge") for _m, p, _s in fake.requests[sent:])


def test_nessie_side_merge_conflict_is_reported_by_table(store: NessieVersionStore, fake: FakeNessie, monkeypatch: pytest.MonkeyPatch) -> None:
    # If Nessie finds a conflict the client did not predict, its errorDetails name the tables.
    _write(store, "main", a_x=1)
    store.create_reference("dev", "branch", "main")
    _write(store, "dev", a_x=2)
    _write(store, "main", a_y=3)
    monkeypatch.setattr("ratatouille_nb.catalog.nessie.three_way", lambda base, src, tgt: (dict(tgt), []))
    fake_tree = fake.commits[store.get_reference("main").hash].contents
    fake_tree[("a", "x")] = {**fake_tree[("a", "x")], "metadataLocation": "m-changed-behind-our-back"}
    head = store.get_reference("main").hash
    with pytest.raises(MergeConflictError, match=re.escape("a.x")) as info:
        store.merge("dev", "main")
    assert info.value.tables == ["a.x"] and "Nessie" in str(info.value)
    assert store.get_reference("main").hash == head


def test_merge_base_is_the_nearest_common_ancestor(store: NessieVersionStore) -> None:
    y = _write(store, "main", a_t1=1)
    store.create_reference("feature", "branch", y)
    _write(store, "feature", a_t2=2)
    _write(store, "main", a_t1=3)
    store.create_reference("a", "branch", "main")
    _write(store, "a", a_t3=4)
    _write(store, "main", a_t1=5)
    _write(store, "main", a_t1=6)
    assert store.merge("feature", "main").kind == "merge"
    assert store.merge("a", "main").kind == "merge"
    assert store.contents("main") == {"a.t1": E(6), "a.t2": E(2), "a.t3": E(4)}


def test_criss_cross_merge_uses_both_ancestors(store: NessieVersionStore) -> None:
    _write(store, "main", k_t=0, k_u=0)
    store.create_reference("b", "branch", "main")
    _write(store, "main", k_t=1)
    _write(store, "b", k_u=2)
    store.create_reference("c", "branch", "b")
    store.merge("main", "b")
    store.merge("c", "main")
    _write(store, "main", k_t=3)
    assert store.merge("main", "b").kind == "merge"
    assert store.contents("b") == {"k.t": E(3), "k.u": E(2)}


def test_namespaces_created_on_both_sides_merge(store: NessieVersionStore, fake: FakeNessie) -> None:
    _write(store, "main", a_x=1)
    store.create_reference("dev", "branch", "main")
    _write(store, "dev", silver_p=1)  # both sides create the namespace `silver` (different ids)
    _write(store, "main", silver_q=2)
    r = store.merge("dev", "main")
    assert r.kind == "merge" and store.contents("main") == {"a.x": E(1), "silver.p": E(1), "silver.q": E(2)}
    sent = [body for path, body in fake.bodies if path.endswith("/history/merge")]
    assert sent[-1]["keyMergeModes"] == [{"key": {"elements": ["silver"]}, "mergeBehavior": "DROP"}]


def test_merge_into_tag_or_unknown_or_itself(store: NessieVersionStore) -> None:
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


def test_merge_from_tag_and_hash(store: NessieVersionStore) -> None:
    first = _write(store, "main", a_x=1)
    store.create_reference("v1", "tag", "main")
    store.create_reference("dev", "branch", ROOT_HASH)
    assert store.merge("v1", "dev").kind == "fast-forward"
    assert store.contents("dev") == {"a.x": E(1)}
    _write(store, "main", a_x=2)
    _write(store, "dev", b_y=1)
    store.create_reference("old", "branch", ROOT_HASH)
    assert store.merge(first, "old").commit.hash == first
    r = store.merge(store.get_reference("main").hash[:12], "dev")
    assert r.kind == "merge" and store.contents("dev") == {"a.x": E(2), "b.y": E(1)}


# Differential test: the same random history on the embedded store and on Nessie gives the same
# refs, contents, merge kinds and conflicts.

BRANCHES = ("main", "b1", "b2")
TABLES = ("bronze.t0", "silver.t1", "gold.t2")
_idx = st.integers(0, 2)
_op = st.one_of(
    st.tuples(st.just("write"), _idx, st.sampled_from([0, 0, 1, 2]), st.booleans()),
    st.tuples(st.just("write"), _idx, st.sampled_from([0, 0, 1, 2]), st.just(False)),
    st.tuples(st.just("create"), _idx, _idx, st.booleans()),
    st.tuples(st.just("delete"), _idx, _idx, st.booleans()),
    st.tuples(st.just("merge"), _idx, _idx, st.booleans()),
    st.tuples(st.just("merge"), _idx, _idx, st.booleans()),
)


def _apply(store: Any, step: tuple[str, int, int, bool], n: int) -> Any:
    kind, i, j, flag = step
    live = [r.name for r in store.list_references()]
    try:
        if kind == "write":
            branch = sorted(live)[i % len(live)]
            table = TABLES[j]
            entry = None if flag else E(n)
            head = store.get_reference(branch).hash
            if entry is None and table not in store.contents(branch):
                return ("skip",)
            store.commit(branch, head, {table: entry}, {table: "drop" if entry is None else "overwrite"}, message=f"w{n}", author="t")
            return ("ok",)
        if kind == "create":
            store.create_reference(BRANCHES[i], "branch", sorted(live)[j % len(live)])
            return ("ok",)
        if kind == "delete":
            store.delete_reference(BRANCHES[i])
            return ("ok",)
        src, tgt = sorted(live)[i % len(live)], sorted(live)[j % len(live)]
        result = store.merge(src, tgt)
        return ("merge", result.kind, sorted(result.tables))
    except MergeConflictError as exc:
        return ("conflict", exc.tables)
    except Exception as exc:
        return ("error", type(exc).__name__)


@hsettings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_op, min_size=8, max_size=22))
def test_same_history_same_outcome_as_the_embedded_store(steps: list[tuple[str, int, int, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeNessie() as server:
        local = LocalVersionStore(Path(tmp) / "catalog.db")
        nessie = NessieVersionStore(server.uri)
        try:
            for n, step in enumerate(steps, 1):
                assert _apply(nessie, step, n) == _apply(local, step, n), step
                refs_l = {r.name: r.kind for r in local.list_references()}
                assert {r.name: r.kind for r in nessie.list_references()} == refs_l
                for name in refs_l:
                    assert nessie.contents(name) == local.contents(name), (step, name)
            for ref in local.list_references():
                ours = [(c.message, len(c.parents), c.operations) for c in nessie.log(ref.name)]
                assert ours == [(c.message, len(c.parents), c.operations) for c in local.log(ref.name)], ref.name
        finally:
            local.close()
            nessie.close()
        assert server.violations == []


# -- 3. the engine on Nessie --------------------------------------------------------------------


@pytest.fixture
def nessie_settings(fake: FakeNessie, tmp_path: Path) -> Settings:
    return Settings.from_env(home=str(tmp_path / "rat-home"), catalog="nessie", nessie_uri=fake.uri)


@pytest.fixture
def nessie_workspace(nessie_settings: Settings, tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "acme", nessie_settings, name="acme")


@pytest.fixture
def nsession(nessie_settings: Settings, nessie_workspace: Workspace) -> Iterator[Session]:
    s = Session(nessie_settings, nessie_workspace)
    yield s
    s.close()


def count(session: Session, table: str, ref: str | None = None) -> int:
    return session.sql(f"SELECT count(*) FROM {table}", ref=ref).relation.fetchone()[0]


def test_branch_scenario_on_nessie(nsession: Session, fake: FakeNessie) -> None:
    s = nsession
    assert isinstance(s.store.inner, NessieVersionStore)
    main = s.branch
    assert "/" in main  # workspace branches (`workspace/acme`) exercise Nessie's `name@` path form
    r = s.sql("CREATE TABLE bronze.sales AS SELECT i AS id, i % 7 AS store, i * 1.5 AS amount FROM range(1000) t(i)")
    first = r.commit
    assert first is not None and count(s, "bronze.sales") == 1000
    meta = fake.commits[first.hash].contents[("bronze", "sales")]
    assert meta["type"] == "ICEBERG_TABLE" and meta["metadataLocation"].endswith(".metadata.json") and meta["snapshotId"] > 0
    assert meta["schemaId"] == 0 and meta["specId"] == 0

    s.store.create_reference("dev", "branch", main)
    s.sql("INSERT INTO bronze.sales SELECT i, i % 7, i * 1.5 FROM range(1000, 1010) t(i)", ref="dev")
    assert count(s, "bronze.sales", "dev") == 1010 and count(s, "bronze.sales") == 1000

    diffs = diff_refs(s.store, s.warehouse, main, "dev")
    assert [(d.table, d.status, d.rows_added, d.rows_removed) for d in diffs] == [("bronze.sales", "changed", 10, 0)]

    merged = s.store.merge("dev", main)
    assert merged.kind == "fast-forward" and merged.tables == ["bronze.sales"]
    assert count(s, "bronze.sales") == 1010

    # conflicting merge: both sides change bronze.sales; the merge names it and changes nothing
    s.sql("DELETE FROM bronze.sales WHERE id < 5", ref="dev")
    s.sql("INSERT INTO bronze.sales VALUES (5000, 1, 1.0)")
    s.sql("CREATE TABLE silver.stores AS SELECT DISTINCT store FROM bronze.sales")
    head = s.store.get_reference(main).hash
    with pytest.raises(MergeConflictError, match=re.escape("bronze.sales")) as info:
        s.store.merge("dev", main)
    assert info.value.tables == ["bronze.sales"]
    assert s.store.get_reference(main).hash == head and count(s, "bronze.sales") == 1011

    # a merge without conflicts creates a merge commit with both parents
    s.sql("CREATE TABLE gold.kpis AS SELECT count(*) AS n FROM bronze.sales", ref="dev")
    s.store.create_reference("side", "branch", head)
    s.sql("CREATE TABLE gold.extra AS SELECT 1 AS one", ref="side")
    s.sql("CREATE TABLE gold.here AS SELECT 2 AS two")
    before = s.store.get_reference(main).hash
    m = s.store.merge("side", main)
    assert m.kind == "merge" and m.commit.parents == (before, s.store.get_reference("side").hash)
    assert m.tables == ["gold.extra"]
    assert set(s.contents()) == {"bronze.sales", "silver.stores", "gold.extra", "gold.here"}
    assert count(s, "gold.extra") == 1 and count(s, "bronze.sales") == 1011

    # time travel by hash, by ~N and by time; tags are read-only snapshots
    assert count(s, "bronze.sales", f"{main}@{first.hash}") == 1000
    assert count(s, "bronze.sales", f"{main}@{first.hash[:12]}") == 1000
    assert count(s, "bronze.sales", f"{main}~4") == 1010  # first parents: before the insert of 5000
    after_first = datetime.fromtimestamp(first.created_at, tz=UTC) + timedelta(microseconds=1)
    assert count(s, "bronze.sales", f"{main}@{after_first.isoformat()}") == 1000
    s.store.create_reference("v1", "tag", main)
    s.sql("INSERT INTO bronze.sales VALUES (6000, 2, 2.0)")
    assert count(s, "bronze.sales", "v1") == 1011 and count(s, "bronze.sales") == 1012
    with pytest.raises(SqlError, match="not a branch head"):
        s.sql("INSERT INTO bronze.sales VALUES (1, 1, 1.0)", ref="v1")
    log = s.store.log(main)
    assert log[0].operations == {"bronze.sales": "append"} and log[-1].hash == first.hash
    assert fake.violations == []


def test_two_sessions_racing_on_one_branch(nsession: Session, nessie_settings: Settings, nessie_workspace: Workspace,
                                           fake: FakeNessie, monkeypatch: pytest.MonkeyPatch) -> None:
    a = nsession
    a.sql("CREATE TABLE bronze.events AS SELECT i AS id FROM range(1000) t(i)")
    a.sql("CREATE TABLE bronze.other AS SELECT 1 AS x")
    with Session(nessie_settings, nessie_workspace) as b:
        store_commit = a.store.commit
        interleave: list[str] = []

        def racing_commit(*args: Any, **kwargs: Any) -> Any:
            if interleave:
                b.sql(interleave.pop())  # B lands its commit between A's read and A's commit
            return store_commit(*args, **kwargs)

        monkeypatch.setattr(a.store, "commit", racing_commit)
        # 1. both append to the same table: Nessie answers 409, A rebases and replays its append
        interleave.append("INSERT INTO bronze.events SELECT i FROM range(1000, 1005) t(i)")
        sent = len(fake.requests)
        a.sql("INSERT INTO bronze.events SELECT i FROM range(2000, 2010) t(i)")
        assert count(a, "bronze.events") == 1015 and count(b, "bronze.events") == 1015
        assert [s for _m, p, s in fake.requests[sent:] if p.endswith("/history/commit")] == [200, 409, 200]
        # 2. A deletes (not replayable) while B appends: a conflict naming the table, nothing written by A
        interleave.append("INSERT INTO bronze.events VALUES (3000)")
        head_before = a.store.get_reference(a.branch).hash
        with pytest.raises(CommitConflictError, match=re.escape("bronze.events")) as info:
            a.sql("DELETE FROM bronze.events WHERE id < 500")
        assert info.value.tables == ["bronze.events"]
        assert count(a, "bronze.events") == 1016
        assert a.store.get_commit(a.store.get_reference(a.branch).hash).parents == (head_before,)
        # 3. different tables: Nessie lands A's commit on B's head without a 409
        interleave.append("INSERT INTO bronze.other VALUES (2)")
        sent = len(fake.requests)
        a.sql("DELETE FROM bronze.events WHERE id < 500")
        assert [s for _m, p, s in fake.requests[sent:] if p.endswith("/history/commit")] == [200, 200]
        assert count(b, "bronze.events") == 516 and count(b, "bronze.other") == 2


def test_threads_appending_to_one_table(nsession: Session, nessie_settings: Settings, nessie_workspace: Workspace) -> None:
    nsession.sql("CREATE TABLE bronze.t AS SELECT 0 AS w, 0 AS i")
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            with Session(nessie_settings, nessie_workspace) as s:
                for i in range(4):
                    s.sql(f"INSERT INTO bronze.t VALUES ({w}, {i})")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert count(nsession, "bronze.t") == 9
    assert len(nsession.store.log(nsession.branch)) == 9

"""The data products core: semver against the schema, version constraints, immutability, access, as_of, refresh."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import semver

from ratatouille_nb.api import Rat
from ratatouille_nb.engine.session import Session
from ratatouille_nb.products.compatibility import SchemaChange, is_acceptable, lowest_acceptable, schema_change
from ratatouille_nb.products.errors import (
    AccessDeniedError,
    IncompatibleVersionError,
    ProductError,
    ProductNotFoundError,
    VersionExistsError,
)
from ratatouille_nb.products.versions import parse_version, resolve, satisfies
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import init_workspace

V = semver.Version.parse

# -- the contract: what a schema change needs --------------------------------------------------

COLS = [{"name": "id", "type": "long"}, {"name": "amount", "type": "double"}]


def test_schema_change_classifies_columns() -> None:
    change = schema_change(COLS, [{"name": "id", "type": "string"}, {"name": "note", "type": "string"}])
    assert change == SchemaChange(removed=["amount"], retyped=["id (long -> string)"], added=["note"])
    assert change.breaking
    assert change.describe() == "removed amount; retyped id (long -> string); added note"
    assert schema_change(COLS, COLS).describe() == "no column changes" and not schema_change(COLS, COLS).breaking


@pytest.mark.parametrize(
    ("change", "previous", "lowest", "accepted", "refused"),
    [
        (SchemaChange(removed=["amount"]), "1.4.2", "2.0.0", ["2.0.0", "3.1.0", "2.0.0-rc.1"], ["1.5.0", "1.4.3", "1.99.0"]),
        (SchemaChange(retyped=["id (long -> string)"]), "0.3.0", "1.0.0", ["1.0.0"], ["0.4.0", "0.3.1"]),
        (SchemaChange(added=["note"]), "1.4.2", "1.5.0", ["1.5.0", "2.0.0", "1.10.0"], ["1.4.3", "1.4.9", "1.4.2"]),
        (SchemaChange(), "1.4.2", "1.4.3", ["1.4.3", "1.5.0", "2.0.0"], ["1.4.2", "1.4.2-rc.1", "1.0.0"]),
    ],
)
def test_is_acceptable_and_the_lowest_acceptable_version(
    change: SchemaChange, previous: str, lowest: str, accepted: list[str], refused: list[str]
) -> None:
    prev = V(previous)
    assert str(lowest_acceptable(prev, change)) == lowest
    assert is_acceptable(prev, V(lowest), change)
    for candidate in accepted:
        assert is_acceptable(prev, V(candidate), change), candidate
    for candidate in refused:
        assert not is_acceptable(prev, V(candidate), change), candidate


# -- constraints -------------------------------------------------------------------------------

PUBLISHED = ["0.9.0", "1.0.0", "1.2.0", "1.2.5", "1.10.1", "2.0.0-rc.1", "2.0.0", "2.1.0", "3.0.0-beta.2"]


@pytest.mark.parametrize(
    ("constraint", "chosen"),
    [
        ("latest", "2.1.0"),
        ("*", "2.1.0"),
        ("", "2.1.0"),
        ("^1.0.0", "1.10.1"),
        ("^1.2", "1.10.1"),
        ("^0.9.0", "0.9.0"),
        ("~1.2.0", "1.2.5"),
        ("~1.2", "1.2.5"),
        ("~1", "1.10.1"),
        ("1.x", "1.10.1"),
        ("1.2.x", "1.2.5"),
        ("2.x", "2.1.0"),
        ("2", "2.1.0"),
        ("1.2", "1.2.5"),
        ("1.2.0", "1.2.0"),
        ("v1.2.0", "1.2.0"),
        (">=1.0.0 <2.0.0", "1.10.1"),
        (">=1.0.0,<1.2.5", "1.2.0"),
        ("2.0.0-rc.1", "2.0.0-rc.1"),
        ("3.0.0-beta.2", "3.0.0-beta.2"),
    ],
)
def test_constraints_pick_the_newest_match(constraint: str, chosen: str) -> None:
    assert resolve(PUBLISHED, constraint, "p") == chosen


def test_pre_releases_only_when_named() -> None:
    assert not satisfies("2.0.0-rc.1", "^2.0.0") and not satisfies("2.0.0-rc.1", "latest") and not satisfies("2.0.0-rc.1", "2.x")
    assert satisfies("2.0.0-rc.1", "2.0.0-rc.1")
    with pytest.raises(ProductNotFoundError) as err:
        resolve(["3.0.0-beta.2"], "latest", "p")
    assert str(err.value) == "no version of product 'p' satisfies 'latest' (published: 3.0.0-beta.2)"


def test_no_match_and_bad_constraints_are_one_line() -> None:
    with pytest.raises(ProductNotFoundError) as err:
        resolve(PUBLISHED, "^4.0.0", "sales")
    assert str(err.value) == (
        "no version of product 'sales' satisfies '^4.0.0' (published: 0.9.0, 1.0.0, 1.2.0, 1.2.5, 1.10.1, 2.0.0-rc.1, 2.0.0, 2.1.0, 3.0.0-beta.2)"
    )
    with pytest.raises(ProductError) as bad:
        resolve(PUBLISHED, "newest", "sales")
    assert str(bad.value) == "invalid version constraint 'newest'\n  hint: use e.g. ^1.0.0, ~1.2, 1.x, latest or 1.2.3"
    with pytest.raises(ProductError, match=r"^invalid version 'one': use MAJOR.MINOR.PATCH"):
        parse_version("one")


# -- the service on real tables ----------------------------------------------------------------


@pytest.fixture
def owner(session: Session) -> Session:
    session.sql("CREATE TABLE gold.kpis AS SELECT i AS id, i * 1.5 AS amount FROM range(4) t(i)")
    return session


@pytest.fixture
def consumer(settings: Settings, tmp_path: object) -> Iterator[Session]:
    from pathlib import Path

    ws = init_workspace(Path(str(tmp_path)) / "analytics", settings, name="analytics")
    with Session(settings, ws) as s:
        yield s


def test_publish_enforces_semver_with_the_lowest_acceptable_version(owner: Session) -> None:
    svc = owner.products
    svc.publish("gold.kpis", "kpis", "1.0.0")
    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT i AS id FROM range(4) t(i)")  # `amount` removed
    with pytest.raises(IncompatibleVersionError) as err:
        svc.publish("gold.kpis", "kpis", "1.1.0")
    assert str(err.value) == (
        "product 'kpis' 1.1.0 vs 1.0.0: removed amount; the lowest acceptable version is 2.0.0\n"
        "  hint: removing or retyping columns needs a new major version, adding columns a new minor"
    )
    assert [r.version for r in svc.registry.releases("kpis")] == ["1.0.0"]  # nothing was published
    svc.publish("gold.kpis", "kpis", "2.0.0")

    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT i AS id, 'x' AS note FROM range(4) t(i)")  # `note` added
    with pytest.raises(IncompatibleVersionError, match=r"^product 'kpis' 2\.0\.1 vs 2\.0\.0: added note; the lowest acceptable version is 2\.1\.0\n"):
        svc.publish("gold.kpis", "kpis", "2.0.1")
    svc.publish("gold.kpis", "kpis", "2.1.0")

    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT CAST(i AS VARCHAR) AS id, 'x' AS note FROM range(4) t(i)")
    with pytest.raises(IncompatibleVersionError, match=r"retyped id \(long -> string\); the lowest acceptable version is 3\.0\.0"):
        svc.publish("gold.kpis", "kpis", "2.2.0")


def test_a_pre_release_carries_no_contract(owner: Session) -> None:
    """1.0.0 -> 2.0.0-rc.1 -> 2.0.0: the final release is held to 1.0.0's contract, not the candidate's."""
    svc = owner.products
    svc.publish("gold.kpis", "kpis", "1.0.0")
    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT i AS id, 'x' AS draft FROM range(4) t(i)")
    svc.publish("gold.kpis", "kpis", "2.0.0-rc.1")
    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT i AS id FROM range(4) t(i)")  # the draft column dropped again
    svc.publish("gold.kpis", "kpis", "2.0.0")
    assert resolve([r.version for r in svc.registry.releases("kpis")], "latest") == "2.0.0"


def test_versions_are_immutable(owner: Session) -> None:
    svc = owner.products
    svc.publish("gold.kpis", "kpis", "1.0.0")
    for same in ("1.0.0", "v1.0.0", "1.0.0+build.7"):
        with pytest.raises(VersionExistsError) as err:
            svc.publish("gold.kpis", "kpis", same)
        assert str(err.value).startswith("product 'kpis' version ")
        assert "already exists: versions are immutable" in str(err.value)
    assert len(svc.registry.releases("kpis")) == 1


def test_access_is_denied_without_a_grant_and_allowed_with_one(owner: Session, consumer: Session) -> None:
    owner.products.publish("gold.kpis", "kpis", "1.0.0")
    with pytest.raises(AccessDeniedError) as err:
        consumer.products.resolve("kpis")
    assert str(err.value) == (
        "workspace 'analytics' may not read product 'kpis' (access: none)\n"
        "  hint: ask the owner workspace 'acme' to run `rat products grant kpis analytics read`"
    )
    with pytest.raises(AccessDeniedError, match=r"^workspace 'analytics' may not change product 'kpis' \(access: none\)"):
        consumer.products.grant("kpis", "analytics", "read")
    assert consumer.products.readable() == []

    owner.products.grant("kpis", "analytics", "read")
    assert consumer.products.readable() == ["kpis"]
    assert consumer.products.resolve("kpis").release.version == "1.0.0"
    with pytest.raises(AccessDeniedError, match=r"may not change product 'kpis' \(access: read\)"):
        consumer.products.publish("gold.kpis", "kpis", "1.0.1")
    owner.products.grant("kpis", "*", "read")
    owner.products.grant("kpis", "analytics", "none")  # an exact grant beats the wildcard
    with pytest.raises(AccessDeniedError):
        consumer.products.resolve("kpis")


@pytest.fixture(autouse=True)
def _forget_the_process_session() -> Iterator[None]:
    """`_rat` makes a fixture's session the process's; forget it before the fixture closes it."""
    from ratatouille_nb.verbs import session as sessions

    yield
    sessions.forget()


def _rat(session: Session) -> Rat:
    r = Rat()
    r.use(session)
    return r


def test_consume_as_of_reads_the_pin_of_that_time(owner: Session, consumer: Session) -> None:
    svc = owner.products
    svc.publish("gold.kpis", "kpis", "1.0.0", access=[("*", "read")])
    published = time.time()
    time.sleep(0.05)
    owner.sql("INSERT INTO gold.kpis SELECT 10, 15.0")
    svc.refresh("kpis")
    refreshed = time.time()
    time.sleep(0.05)
    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT i AS id, i * 1.5 AS amount, 'n' AS note FROM range(2) t(i)")
    svc.publish("gold.kpis", "kpis", "1.1.0")

    rat = _rat(consumer)
    assert len(rat.consume("kpis", as_="arrow")) == 2  # latest: 1.1.0
    assert len(rat.consume("kpis", as_="arrow", as_of=refreshed)) == 5  # 1.0.0 after its refresh
    assert len(rat.consume("kpis", as_="arrow", as_of=published)) == 4  # 1.0.0 as first published
    assert len(rat.consume("kpis", "1.0.0", as_="arrow")) == 5
    with pytest.raises(ProductNotFoundError, match=r"^product 'kpis' had no version satisfying 'latest' at "):
        rat.consume("kpis", as_="arrow", as_of=published - 3600)


def test_refresh_after_a_schema_change_names_the_version_to_publish(owner: Session) -> None:
    svc = owner.products
    svc.publish("gold.kpis", "kpis", "1.0.0")
    owner.sql("INSERT INTO gold.kpis SELECT 9, 1.0")
    release, pin = svc.refresh("kpis")
    assert release.version == "1.0.0" and [p.reason for p in svc.registry.pins("kpis", "1.0.0")] == ["publish", "refresh"]
    assert pin.snapshot_id == owner.contents()["gold.kpis"].snapshot_id

    owner.sql("CREATE OR REPLACE TABLE gold.kpis AS SELECT i AS id, i * 1.5 AS amount, 'n' AS note FROM range(4) t(i)")
    with pytest.raises(IncompatibleVersionError) as err:
        svc.refresh("kpis")
    assert str(err.value) == (
        "cannot refresh product 'kpis' 1.0.0: the source schema changed (added note); publish version 1.1.0 instead"
    )
    assert len(svc.registry.pins("kpis", "1.0.0")) == 2  # the failed refresh pinned nothing
    svc.publish("gold.kpis", "kpis", "1.1.0")
    assert svc.refresh("kpis")[0].version == "1.1.0"


def test_unknown_product_and_bad_names(owner: Session) -> None:
    with pytest.raises(ProductNotFoundError) as err:
        owner.products.resolve("nope")
    assert str(err.value) == "no product named 'nope'\n  hint: see `rat products list`"
    with pytest.raises(ProductError, match=r"^invalid product name 'Sales/KPIs'"):
        owner.products.publish("gold.kpis", "Sales/KPIs", "1.0.0")
    with pytest.raises(ProductError, match=r"^invalid version 'latest'"):
        owner.products.publish("gold.kpis", "kpis", "latest")

"""The locked DuckDB sandbox (engine/sandbox.py): workspace b against workspace a under one RAT_HOME.

Each attack is refused with one clear error and changes nothing (files, branch heads, registry
rows); the positive controls show every legitimate path still works.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pytest

from ratatouille_nb.engine.errors import ForbiddenStatementError, SandboxError
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import AccessDeniedError, ConfigError
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

from .sandbox_fixtures import Pair, fingerprint, granted, pair

__all__ = ["granted", "pair"]


def _refused(pair: Pair, sql: str, error: type[Exception], match: str) -> None:
    """`sql` run by b fails with `error` matching `match`, and nothing of a's or b's changed."""
    before = fingerprint(pair.settings, pair.a.workspace.root, pair.b.workspace.root)
    with pytest.raises(error, match=match) as caught:
        pair.b.sql(sql)
    assert fingerprint(pair.settings, pair.a.workspace.root, pair.b.workspace.root) == before
    assert str(caught.value).splitlines()[0].strip(), "one clear first line"


# -- reads outside the workspace --------------------------------------------------------------


def test_glob_over_the_warehouse_is_refused(pair: Pair) -> None:
    root = pair.settings.warehouse
    _refused(pair, f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet')", SandboxError, "the warehouse root")


def test_another_workspaces_files_are_refused(pair: Pair) -> None:
    metadata = pair.a.contents()["silver.orders"].metadata_location
    _refused(pair, f"SELECT count(*) FROM iceberg_scan('{metadata}')", SandboxError, "workspace 'a''s storage root")
    _refused(pair, f"SELECT count(*) FROM read_parquet('{pair.data_file()}')", SandboxError, "workspace 'a''s storage root")
    _refused(pair, f"SELECT * FROM glob('{pair.settings.warehouse / 'a'}/**')", SandboxError, "workspace 'a''s storage root")
    _refused(pair, f"SELECT * FROM read_text('{pair.a.workspace.root / 'workspace.yaml'}')", SandboxError, "workspace 'a''s folder")


def test_rat_home_stores_are_refused(pair: Pair) -> None:
    for store in ("registry.db", "catalog.db", "runs.db", "access.db"):
        _refused(pair, f"SELECT size FROM read_blob('{pair.settings.home / store}')", SandboxError, f"RAT_HOME's {store}")


def test_another_workspaces_spill_folder_is_refused(pair: Pair) -> None:
    """Merge batches and DuckDB's temp files of workspace a stay out of b's reach."""
    theirs = pair.settings.workspace_spill_dir("a")
    theirs.mkdir(parents=True, exist_ok=True)
    (theirs / "batch.csv").write_text("x\n1\n")
    _refused(pair, f"SELECT * FROM read_csv('{theirs / 'batch.csv'}')", SandboxError, "cannot access .*/tmp/a/batch.csv.: it lies in workspace 'a''s spill folder")
    assert pair.b.spill_dir == pair.settings.workspace_spill_dir("b")
    from ratatouille_nb.engine.sandbox import build_policy
    from ratatouille_nb.errors import ConfigError

    with pytest.raises(ConfigError, match="would let SQL reach workspace 'a''s spill folder"):
        build_policy(
            pair.settings.with_(read_paths=(str(pair.settings.spill_dir),)), pair.b.workspace, pair.b.warehouse,
            pair.b.spill_dir, {}, pair.b.access.registry.all(),
        )


def test_dot_segments_cannot_climb_out(pair: Pair) -> None:
    own = pair.settings.warehouse / "b"
    _refused(pair, f"SELECT * FROM read_parquet('{own}/../a/silver/orders/data/*/*.parquet')", ForbiddenStatementError, "'..' segment")


def test_the_locked_connection_refuses_even_without_the_allow_list(pair: Pair) -> None:
    """Defense in depth: DuckDB itself refuses what the statement check would have stopped first."""
    con = pair.b.con
    before = fingerprint(pair.settings, pair.a.workspace.root, pair.b.workspace.root)
    target = pair.data_file()
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"COPY (SELECT 1 AS id) TO '{target}' (FORMAT parquet)")
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"ATTACH '{pair.settings.home / 'catalog.db'}' AS c")
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"LOAD '{pair.settings.home / 'x.duckdb_extension'}'")
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        con.execute("SET allowed_directories = ['/']")
    assert fingerprint(pair.settings, pair.a.workspace.root, pair.b.workspace.root) == before


def test_memory_cap_cannot_be_lifted(pair: Pair) -> None:
    cap = pair.b.sql("SELECT current_setting('memory_limit')").relation.fetchone()
    _refused(pair, "SET memory_limit = '500GB'", ForbiddenStatementError, "SET is not allowed")
    _refused(pair, "PRAGMA memory_limit = '500GB'", ForbiddenStatementError, "PRAGMA is not allowed")
    _refused(pair, "SELECT 1; RESET memory_limit", ForbiddenStatementError, "RESET is not allowed")
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        pair.b.con.execute("SET memory_limit = '500GB'")
    assert pair.b.sql("SELECT current_setting('memory_limit')").relation.fetchone() == cap


# -- product pins -------------------------------------------------------------------------------


def test_a_granted_pin_is_readable_and_a_revocation_applies_to_the_next_statement(granted: Pair) -> None:
    b = granted.b
    assert b.sql("SELECT count(*) FROM products.orders").relation.fetchone() == (100,)
    metadata = granted.pin.metadata_location
    assert b.sql(f"SELECT count(*) FROM iceberg_scan('{metadata}')").relation.fetchone() == (100,)
    # Unpublished snapshots of the same table stay out of reach: only the pin's files are allowed.
    granted.a.sql("INSERT INTO silver.orders SELECT 1000, 1")
    newer = granted.a.contents()["silver.orders"].metadata_location
    with pytest.raises(SandboxError, match="workspace 'a''s storage root"):
        b.sql(f"SELECT count(*) FROM iceberg_scan('{newer}')")

    granted.a.products.revoke("orders", "b")
    with pytest.raises(AccessDeniedError, match="may not read product 'orders'"):
        b.sql("SELECT count(*) FROM products.orders")
    with pytest.raises(SandboxError, match="workspace 'a''s storage root"):
        b.sql(f"SELECT count(*) FROM iceberg_scan('{metadata}')")


def test_a_refreshed_pin_becomes_readable_without_losing_the_session(granted: Pair) -> None:
    b = granted.b
    b.sql("CREATE TEMP TABLE scratch AS SELECT 42 AS answer")
    assert b.sql("SELECT count(*) FROM products.orders").relation.fetchone() == (100,)
    granted.a.sql("INSERT INTO silver.orders SELECT 1000, 1")
    granted.a.products.refresh("orders")
    b.sql("SELECT answer FROM scratch")  # a grant elsewhere does not reset the session
    assert b.sql("SELECT count(*) FROM products.orders").relation.fetchone() == (101,)


def test_pinned_release_files_are_immutable_and_survive_gc(granted: Pair) -> None:
    from ratatouille_nb.verbs.maintenance import gc

    files = {f: Path(f).read_bytes() for f in granted.pin_files()}
    for target in (granted.data_file(), granted.pin.metadata_location):
        for session in (granted.a, granted.b):  # the owner cannot rewrite its release either
            with pytest.raises((ForbiddenStatementError, SandboxError)):
                session.sql(f"COPY (SELECT 1 AS id, 2 AS amount) TO '{target}' (FORMAT parquet)")
    granted.a.sql("DROP TABLE silver.orders")
    report = gc(granted.settings, older_than_seconds=0)  # the administrator's gc: every product pin is a root
    assert report is not None
    assert {f: Path(f).read_bytes() for f in files} == files
    assert granted.b.sql("SELECT count(*) FROM products.orders").relation.fetchone() == (100,)


# -- positive controls ------------------------------------------------------------------------


def test_own_tables_landing_and_scratch_objects_work(pair: Pair) -> None:
    b = pair.b
    landing = pair.settings.warehouse / "b" / "landing"
    landing.mkdir(parents=True)
    (landing / "x.csv").write_text("id,name\n1,x\n2,y\n")
    assert b.sql(f"SELECT count(*) FROM read_csv('{landing}/*.csv')").relation.fetchone() == (2,)
    assert b.sql("SELECT x FROM silver.mine").relation.fetchone() == (1,)
    b.sql("CREATE TEMP VIEW v AS SELECT x + 1 AS y FROM silver.mine")
    b.sql("CREATE TEMP MACRO twice(n) AS n * 2")
    assert b.sql("SELECT twice(y) FROM v").relation.fetchone() == (4,)
    (pair.b.workspace.root / "seeds").mkdir()
    (pair.b.workspace.root / "seeds" / "s.csv").write_text("a\n1\n")
    assert b.sql(f"SELECT a FROM read_csv('{pair.b.workspace.root / 'seeds' / 's.csv'}')").relation.fetchone() == (1,)


def test_read_paths_let_sql_read_local_folders(pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "analyst-data"
    data.mkdir()
    (data / "x.csv").write_text("v\n7\n")
    with pytest.raises(SandboxError, match="read_paths") as caught:
        pair.b.sql(f"SELECT v FROM read_csv('{data}/x.csv')")
    assert "RAT_READ_PATHS" in str(caught.value)

    config = pair.b.workspace.root / "workspace.yaml"
    config.write_text(config.read_text() + f"\nread_paths:\n  - {data}\n")
    with Session(pair.settings, Workspace.load(pair.b.workspace.root)) as s:
        assert s.sql(f"SELECT v FROM read_csv('{data}/x.csv')").relation.fetchone() == (7,)

    other = tmp_path / "other-data"
    other.mkdir()
    (other / "y.csv").write_text("w\n8\n")
    monkeypatch.setenv("RAT_READ_PATHS", os.pathsep.join([str(other), str(tmp_path / "missing")]))
    with Session(Settings.from_env(home=str(pair.settings.home)), Workspace.load(pair.b.workspace.root)) as s:
        assert s.sql(f"SELECT w FROM read_csv('{other}/y.csv')").relation.fetchone() == (8,)


@pytest.mark.parametrize("where", ["rat_home", "warehouse", "a_root", "a_folder", "root"])
def test_read_paths_never_reach_stores_or_other_workspaces(pair: Pair, where: str) -> None:
    folder = {
        "rat_home": pair.settings.home,
        "warehouse": pair.settings.warehouse,
        "a_root": pair.settings.warehouse / "a" / "silver",
        "a_folder": pair.a.workspace.root,
        "root": Path("/"),
    }[where]
    config = pair.b.workspace.root / "workspace.yaml"
    config.write_text(config.read_text() + f"\nread_paths: ['{folder}']\n")
    with Session(pair.settings, Workspace.load(pair.b.workspace.root)) as s, pytest.raises(ConfigError, match="would let SQL reach"):
        s.sql("SELECT 1")


def test_copy_into_exports_works(pair: Pair) -> None:
    exports = pair.b.workspace.root / "exports"
    pair.b.sql(f"COPY (SELECT x FROM silver.mine) TO '{exports}/mine.csv' (HEADER true)")
    assert (exports / "mine.csv").read_text().splitlines() == ["x", "1"]


# -- the same on S3 ---------------------------------------------------------------------------


def test_s3_prefixes_and_pins_are_enforced(s3_settings: Settings, tmp_path: Path) -> None:
    from .sandbox_fixtures import make_pair

    made = make_pair(s3_settings, tmp_path, grant=True)
    try:
        root = s3_settings.warehouse_root
        b = made.b
        assert b.sql("SELECT x FROM silver.mine").relation.fetchone() == (1,)
        assert b.sql("SELECT count(*) FROM products.orders").relation.fetchone() == (100,)  # allowed_paths on s3://
        own_table = b.contents()["silver.mine"].metadata_location
        assert own_table.startswith(f"{root}/b/")
        with pytest.raises(SandboxError, match="workspace 'a''s storage root"):
            b.sql(f"SELECT count(*) FROM read_parquet('{root}/a/**/*.parquet')")
        with pytest.raises(SandboxError, match="the warehouse root"):
            b.sql(f"SELECT * FROM glob('{root}/**')")
        made.a.sql("INSERT INTO silver.orders SELECT 1000, 1")
        newer = made.a.contents()["silver.orders"].metadata_location
        with pytest.raises(SandboxError, match="workspace 'a''s storage root"):
            b.sql(f"SELECT count(*) FROM iceberg_scan('{newer}')")
        # DuckDB checks s3:// prefixes before httpfs folds '..' (measured on 1.5.5): literal dot segments are refused.
        with pytest.raises(ForbiddenStatementError, match=re.escape("'..' segment")):
            b.sql(f"SELECT count(*) FROM read_parquet('{root}/b/../a/silver/orders/data/*/*.parquet')")
        with pytest.raises(ForbiddenStatementError, match="exports folder"):
            b.sql(f"COPY (SELECT 1) TO '{root}/b/landing/x.csv'")
    finally:
        made.a.close()
        made.b.close()

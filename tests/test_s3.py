"""S3 storage, for real: the engine against an S3-compatible server (moto) on 127.0.0.1.

`RAT_WAREHOUSE=s3://<bucket>/wh` with `S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`: pyiceberg
writes metadata through its FileIO, DuckDB (httpfs) writes data files and reads tables, landing
files and listings go to the bucket, and each workspace writes only under `wh/<s3_prefix>/`.
Nothing here mocks the engine: the only stand-in is the S3 server.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ratatouille_nb.catalog.diff import diff_refs
from ratatouille_nb.engine.session import Session, warehouse_for
from ratatouille_nb.errors import ConfigError, MergeConflictError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.ingest import LEDGER
from ratatouille_nb.pipeline.runs import RunRecord
from ratatouille_nb.settings import Settings
from ratatouille_nb.storage.warehouse import StoragePrefixError, Warehouse
from ratatouille_nb.verbs.maintenance import session_gc
from ratatouille_nb.workspace import Workspace, init_workspace

from .s3_server import S3Server


def count(session: Session, table: str, ref: str | None = None) -> int:
    return session.sql(f"SELECT count(*) FROM {table}", ref=ref).relation.fetchone()[0]


def ok(record: RunRecord) -> RunRecord:
    assert record.status == "success", record.error
    return record


def by_model(record: RunRecord) -> dict[str, Any]:
    return {m.model: m for m in record.models}


@pytest.fixture
def s3_workspace(s3_settings: Settings, tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "acme", s3_settings, name="acme")


@pytest.fixture
def s3_session(s3_settings: Settings, s3_workspace: Workspace) -> Iterator[Session]:
    s = Session(s3_settings, s3_workspace)
    yield s
    s.close()


# -- configuration ----------------------------------------------------------------------------


def test_settings_from_env_select_an_s3_warehouse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAT_WAREHOUSE", "s3://lake/warehouse/")
    monkeypatch.setenv("S3_ENDPOINT", "http://minio:9000")
    monkeypatch.setenv("S3_ACCESS_KEY", "minio")
    monkeypatch.setenv("S3_SECRET_KEY", "minio-secret")
    settings = Settings.from_env()
    assert "minio-secret" not in repr(settings)
    wh = warehouse_for(settings)
    assert wh.is_s3 and not wh.is_local and wh.root == "s3://lake/warehouse"
    assert wh.location("acme", "landing") == "s3://lake/warehouse/acme/landing"
    assert wh.io_properties["s3.endpoint"] == "http://minio:9000"
    assert wh.io_properties["s3.access-key-id"] == "minio" and wh.io_properties["s3.secret-access-key"] == "minio-secret"
    assert "minio-secret" not in repr(wh)
    secret = wh.duckdb_secret_sql()
    assert secret is not None
    for part in ("TYPE S3", "KEY_ID 'minio'", "SECRET 'minio-secret'", "ENDPOINT 'minio:9000'", "URL_STYLE 'path'", "USE_SSL false", "REGION 'us-east-1'"):
        assert part in secret
    monkeypatch.setenv("S3_ENDPOINT", "https://s3.example.com")
    assert "USE_SSL true" in (warehouse_for(Settings.from_env()).duckdb_secret_sql() or "")
    with pytest.raises(ConfigError, match="S3"):
        _ = settings.warehouse  # no local folder for an S3 warehouse

    # Default: RAT_HOME/warehouse; a local RAT_WAREHOUSE is a folder anywhere.
    monkeypatch.delenv("RAT_WAREHOUSE")
    assert warehouse_for(Settings.from_env()).root == str(tmp_path / "home" / "warehouse")
    monkeypatch.setenv("RAT_WAREHOUSE", str(tmp_path / "elsewhere"))
    local = warehouse_for(Settings.from_env())
    assert local.is_local and local.root == str(tmp_path / "elsewhere") and local.duckdb_secret_sql() is None
    monkeypatch.setenv("RAT_WAREHOUSE", "gs://bucket/x")
    with pytest.raises(ConfigError, match="s3://"):
        warehouse_for(Settings.from_env())


# -- the Branches scenario --------------------------------------------------------------------


def test_branch_scenario_on_s3(s3_session: Session, s3_server: S3Server, s3_bucket: str, s3_settings: Settings) -> None:
    s = s3_session
    assert s.warehouse.is_s3
    main = s.branch
    r = s.sql("CREATE TABLE bronze.sales AS SELECT i AS id, i % 7 AS store, i * 1.5 AS amount FROM range(1000) t(i)")
    first = r.commit
    assert first is not None and count(s, "bronze.sales") == 1000
    meta = s.contents()["bronze.sales"].metadata_location
    assert meta.startswith(f"s3://{s3_bucket}/wh/acme/bronze/sales/metadata/") and meta.endswith(".metadata.json")

    s.store.create_reference("dev", "branch", main)
    s.sql("INSERT INTO bronze.sales SELECT i, i % 7, i * 1.5 FROM range(1000, 1010) t(i)", ref="dev")
    assert count(s, "bronze.sales", "dev") == 1010 and count(s, "bronze.sales") == 1000

    diffs = diff_refs(s.store, s.warehouse, main, "dev")
    assert [(d.table, d.status, d.rows_added, d.rows_removed) for d in diffs] == [("bronze.sales", "changed", 10, 0)]

    merged = s.store.merge("dev", main)
    assert merged.kind == "fast-forward" and merged.tables == ["bronze.sales"]
    assert count(s, "bronze.sales") == 1010

    # A conflicting merge names the table and changes nothing.
    s.sql("DELETE FROM bronze.sales WHERE id < 5", ref="dev")
    s.sql("UPDATE bronze.sales SET amount = 0 WHERE id = 7")
    head = s.store.get_reference(main).hash
    with pytest.raises(MergeConflictError, match=re.escape("bronze.sales")) as info:
        s.store.merge("dev", main)
    assert info.value.tables == ["bronze.sales"]
    assert s.store.get_reference(main).hash == head and count(s, "bronze.sales") == 1010
    assert count(s, "bronze.sales", "dev") == 1005

    # Time travel to the first commit shows the original 1,000 rows.
    assert count(s, "bronze.sales", f"{main}@{first.hash}") == 1000
    assert s.sql("SELECT sum(id) FROM bronze.sales", ref=f"{main}@{first.hash}").relation.fetchone()[0] == sum(range(1000))

    # Every file went to the bucket, under this workspace's prefix; nothing landed on local disk.
    keys = s3_server.keys(s3_bucket)
    assert keys and all(k.startswith("wh/acme/bronze/sales/") for k in keys)
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".avro") for k in keys)
    assert not (s3_settings.home / "warehouse").exists()


def test_failed_write_on_s3_leaves_no_files(s3_session: Session, s3_server: S3Server, s3_bucket: str) -> None:
    s = s3_session
    s.sql("CREATE TABLE bronze.t AS SELECT i::INTEGER AS id FROM range(100) t(i)")
    before = s3_server.keys(s3_bucket)
    head = s.store.get_reference(s.branch).hash
    with pytest.raises(Exception, match="oops"):
        s.sql("INSERT INTO bronze.t SELECT CASE WHEN i < 300000 THEN i::VARCHAR ELSE 'oops' END FROM range(400000) t(i)")
    assert s.store.get_reference(s.branch).hash == head and count(s, "bronze.t") == 100
    assert s3_server.keys(s3_bucket) == before  # the statement's data folder was removed from the bucket


# -- a pipeline run on S3 ---------------------------------------------------------------------

INGEST = '''\
"""Orders from the landing zone: every CSV not ingested yet, appended to bronze.orders."""

from ratatouille import pipeline
from ratatouille.parsers import csv_parser


@pipeline(name="bronze_orders", layer="bronze")
def ingest_orders():
    for path in rat.ls("landing/orders/*.csv"):
        if rat.is_ingested(path):
            continue
        df = csv_parser(rat.read_file(path))
        df["_source_file"] = path
        rat.append("bronze.orders", df)
        rat.mark_ingested(path)
'''

REGIONS = """\
-- @materialized: table
SELECT customer, region FROM {{ source('landing/regions.csv') }}
"""

SILVER = """\
-- @materialized: incremental
-- @unique_key: order_id
SELECT order_id, customer, CAST(amount AS DECIMAL(10, 2)) AS amount, batch
FROM {{ ref('bronze.orders') }}
{% if is_incremental() %}
WHERE batch > {{ watermark('batch') }}
{% endif %}
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY batch DESC) = 1
"""

GOLD = """\
-- @materialized: table
SELECT r.region, count(*) AS orders, sum(o.amount) AS revenue
FROM {{ ref('silver.orders') }} AS o JOIN {{ ref('bronze.regions') }} AS r USING (customer)
GROUP BY r.region
"""


def _orders_csv(ids: range, batch: int) -> bytes:
    lines = ["order_id,customer,amount,batch"]
    lines += [f"{i},c{i % 5},{i * batch}.50,{batch}" for i in ids]
    return ("\n".join(lines) + "\n").encode()


def _write(workspace: Workspace, rel: str, text: str) -> None:
    path = workspace.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_pipeline_run_on_s3(s3_session: Session, s3_workspace: Workspace, s3_server: S3Server, s3_bucket: str) -> None:
    s, ws = s3_session, s3_workspace
    _write(ws, "pipelines/bronze/ingest_orders.py", INGEST)
    _write(ws, "pipelines/bronze/regions.sql", REGIONS)
    _write(ws, "pipelines/silver/orders.sql", SILVER)
    _write(ws, "pipelines/gold/region_revenue.sql", GOLD)
    landing = f"wh/{ws.prefix}/landing"
    s3_server.put(s3_bucket, f"{landing}/regions.csv", b"customer,region\nc0,north\nc1,north\nc2,south\nc3,south\nc4,east\n")
    s3_server.put(s3_bucket, f"{landing}/orders/orders_0001.csv", _orders_csv(range(1, 101), 1))
    s3_server.put(s3_bucket, f"{landing}/other/ignored.csv", b"x\n1\n")

    first = ok(Runner(s).run())
    models = by_model(first)
    assert models["bronze_orders"].rows_written == 100
    assert (models["silver_orders"].operation, models["silver_orders"].rows_written) == ("create", 100)
    assert count(s, "bronze.regions") == 5 and count(s, "silver.orders") == 100
    assert s.sql(f"SELECT path, pipeline FROM {LEDGER}").relation.fetchall() == [("landing/orders/orders_0001.csv", "bronze_orders")]

    # A second file: 50 new orders and 10 updated ones; the silver merge rewrites only what it must.
    s3_server.put(s3_bucket, f"{landing}/orders/orders_0002.csv", _orders_csv(range(91, 151), 2))
    second = ok(Runner(s).run())
    models = by_model(second)
    assert models["bronze_orders"].rows_written == 60  # only the new file
    m = models["silver_orders"]
    assert (m.operation, m.rows_written, m.rows_updated) == ("merge", 60, 10)
    assert count(s, "bronze.orders") == 160 and count(s, "silver.orders") == 150
    assert s.sql("SELECT count(*) - count(DISTINCT order_id) FROM silver.orders").relation.fetchone()[0] == 0
    assert s.sql("SELECT amount, batch FROM silver.orders WHERE order_id = 95").relation.fetchone() == (190.5, 2)
    got = dict(s.sql("SELECT region, orders FROM gold.region_revenue").relation.fetchall())
    assert got == {"north": 60, "south": 60, "east": 30}

    # A run with nothing new ingests nothing and merges nothing.
    third = by_model(ok(Runner(s).run()))
    assert third["bronze_orders"].rows_written == 0 and third["silver_orders"].rows_written == 0

    # The tables' files are all in the bucket under the workspace prefix.
    keys = s3_server.keys(s3_bucket)
    table_keys = [k for k in keys if not k.startswith(f"{landing}/")]
    assert table_keys and all(k.startswith(f"wh/{ws.prefix}/") for k in table_keys)
    assert {k.split("/")[2] for k in table_keys} == {"bronze", "silver", "gold", "_rat"}


def test_rat_ls_and_read_file_on_s3(s3_session: Session, s3_workspace: Workspace, s3_server: S3Server, s3_bucket: str) -> None:
    from ratatouille_nb.api import rat

    s3_server.put(s3_bucket, f"wh/{s3_workspace.prefix}/landing/a/one.csv", b"x\n1\n")
    s3_server.put(s3_bucket, f"wh/{s3_workspace.prefix}/landing/a/two.csv", b"x\n2\n")
    s3_server.put(s3_bucket, "wh/someone-else/landing/a/three.csv", b"x\n3\n")
    from ratatouille_nb.verbs import session as sessions

    rat.use(s3_session)
    try:
        assert rat.ls("landing/a/*.csv") == ["landing/a/one.csv", "landing/a/two.csv"]
        assert rat.read_file("landing/a/two.csv") == b"x\n2\n"
        with pytest.raises(Exception, match="relative"):
            rat.read_file("../someone-else/landing/a/three.csv")
    finally:
        sessions.forget()


# -- isolation by prefix ----------------------------------------------------------------------


def test_two_workspaces_on_one_bucket_are_isolated_by_prefix(
    s3_settings: Settings, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    a = init_workspace(tmp_path / "alpha", s3_settings, name="alpha")
    b = init_workspace(tmp_path / "beta", s3_settings, name="beta")
    with Session(s3_settings, a) as sa, Session(s3_settings, b) as sb:
        sa.sql("CREATE TABLE bronze.t AS SELECT i AS id FROM range(10) t(i)")
        sb.sql("CREATE TABLE bronze.t AS SELECT i AS id FROM range(20) t(i)")
        assert count(sa, "bronze.t") == 10 and count(sb, "bronze.t") == 20
        keys = s3_server.keys(s3_bucket)
        assert {k.split("/")[1] for k in keys} == {"alpha", "beta"}
        assert sa.contents()["bronze.t"].metadata_location.startswith(f"s3://{s3_bucket}/wh/alpha/")
        assert sb.contents()["bronze.t"].metadata_location.startswith(f"s3://{s3_bucket}/wh/beta/")

        # alpha's table reaches main; beta, branching from main, may read it but not write into
        # alpha's prefix: the guard refuses before a byte is written, and nothing is committed.
        sa.sql("CREATE TABLE silver.shared AS SELECT 1 AS one")
        sa.store.merge(sa.branch, sa.store.default_branch)
        sb.store.create_reference("beta-dev", "branch", sb.store.default_branch)
        sb.use_branch("beta-dev")
        assert count(sb, "silver.shared") == 1
        alpha_keys = s3_server.keys(s3_bucket, "wh/alpha/")
        head = sb.store.get_reference("beta-dev").hash
        with pytest.raises(StoragePrefixError, match="outside this workspace's storage root"):
            sb.sql("INSERT INTO silver.shared VALUES (2)")
        with pytest.raises(StoragePrefixError):
            sb.sql("DELETE FROM silver.shared WHERE one = 1")
        assert s3_server.keys(s3_bucket, "wh/alpha/") == alpha_keys
        assert sb.store.get_reference("beta-dev").hash == head
        # A copy in beta's own prefix is fine.
        sb.sql("CREATE TABLE silver.mine AS SELECT * FROM silver.shared")
        assert sb.contents()["silver.mine"].metadata_location.startswith(f"s3://{s3_bucket}/wh/beta/")


def test_prefix_guard_refuses_metadata_and_data_outside_the_prefix(s3_session: Session, s3_bucket: str) -> None:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    s = s3_session
    wh = s.warehouse
    assert wh.within("acme", f"s3://{s3_bucket}/wh/acme/bronze/t/data/x.parquet")
    assert wh.within("acme", f"s3a://{s3_bucket}/wh/acme/x")
    for outside in (
        f"s3://{s3_bucket}/wh/acme",  # the root itself is not a file
        f"s3://{s3_bucket}/wh/acme-other/x",  # a sibling sharing the name's start
        f"s3://{s3_bucket}/wh/acme/../beta/x",  # climbing out
        f"s3://{s3_bucket}/elsewhere/x",
        "s3://other-bucket/wh/acme/x",
    ):
        assert not wh.within("acme", outside), outside
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    with s.transaction("escape") as txn, pytest.raises(StoragePrefixError, match=re.escape("table bronze.escape")):
        txn.tables.create_table("bronze.escape", schema, location=f"s3://{s3_bucket}/wh/beta/bronze/escape")
    assert "bronze.escape" not in s.contents()

    # Local warehouses get the same guard.
    local = Warehouse(root="/data/wh")
    assert local.within("acme", "/data/wh/acme/bronze/t/metadata/v1.metadata.json")
    assert local.within("acme", "file:///data/wh/acme/x")
    assert not local.within("acme", "/data/wh/other/x") and not local.within("acme", "/data/wh/acme/../other/x")


def test_local_prefix_guard_on_writes(session: Session, settings: Settings, tmp_path: Path) -> None:
    other = init_workspace(tmp_path / "other", settings, name="other")
    session.sql("CREATE TABLE bronze.mine AS SELECT 1 AS x")
    session.store.merge(session.branch, session.store.default_branch)
    with Session(settings, other) as o:
        o.store.create_reference("other-dev", "branch", o.store.default_branch)
        o.use_branch("other-dev")
        with pytest.raises(StoragePrefixError, match=str(settings.warehouse / "other")):
            o.sql("INSERT INTO bronze.mine VALUES (2)")
        assert count(o, "bronze.mine") == 1


# -- listing and gc on S3 ---------------------------------------------------------------------


def test_list_files_delete_and_gc_on_s3(s3_session: Session, s3_server: S3Server, s3_bucket: str) -> None:
    s = s3_session
    wh = s.warehouse
    s.sql("CREATE TABLE bronze.t AS SELECT i AS id FROM range(100) t(i)")
    s.sql("CREATE OR REPLACE TABLE bronze.t AS SELECT i AS id FROM range(50) t(i)")
    listed = dict(wh.list_files(wh.location()))
    assert sorted(listed) == sorted(f"s3://{s3_bucket}/{k}" for k in s3_server.keys(s3_bucket))
    assert all(mtime > 0 for mtime in listed.values())
    assert dict(wh.list_files(wh.location("nobody"))) == {}

    # An orphan (a killed writer's folder) and gc: only unreachable files go, the table still reads.
    orphan = "wh/acme/bronze/t/data/w-0123456789abcdef/part-00000000-0000-0000-0000-000000000000.parquet"
    s3_server.put(s3_bucket, orphan, b"junk")
    dry = session_gc(s, older_than_seconds=0, dry_run=True)
    assert f"s3://{s3_bucket}/{orphan}" in dry.deleted
    report = session_gc(s, older_than_seconds=0)
    assert report.files_deleted == dry.files_deleted and report.files_deleted > 0
    assert orphan not in s3_server.keys(s3_bucket)
    assert count(s, "bronze.t") == 50 and count(s, "bronze.t", f"{s.branch}~1") == 100

    # delete/remove_tree: a missing path is not an error; a whole bucket is never removed.
    wh.delete(f"s3://{s3_bucket}/wh/acme/nothing-here")
    wh.remove_tree(f"s3://{s3_bucket}/wh/acme/no-such-folder")
    with pytest.raises(StoragePrefixError):
        wh.remove_tree(f"s3://{s3_bucket}")

"""`collect_garbage` / `rat gc`: unreferenced files go, everything any ref can read stays readable."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ratatouille_nb.catalog.gc import GcReport, collect_garbage
from ratatouille_nb.catalog.local import ROOT_HASH
from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.cli.maintenance import parse_duration
from ratatouille_nb.engine.rows import one_row
from ratatouille_nb.engine.session import Session
from ratatouille_nb.engine.writer import TableWriter
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs.maintenance import session_gc
from ratatouille_nb.workspace import Workspace

from .conftest import scalar


def _files(settings: Settings) -> set[str]:
    return {str(p) for p in Path(settings.warehouse).rglob("*") if p.is_file()}


def _reachable(session: Session) -> set[str]:
    """Commits reachable from any ref through all parents (computed here, independently of gc)."""
    seen: set[str] = set()
    stack = [r.hash for r in session.store.list_references()]
    while stack:
        h = stack.pop()
        if h not in seen:
            seen.add(h)
            stack.extend(session.store.get_commit(h).parents)
    return seen - {ROOT_HASH}


def _snapshot_reads(session: Session) -> dict[tuple[str, str], tuple]:
    """Row count and content checksum of every table at every ref name and reachable commit hash.

    The checksum makes DuckDB open every data file (a bare count(*) may come from metadata alone).
    """
    refs = [r.name for r in session.store.list_references()] + sorted(_reachable(session))
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for ref in refs:
        for key in sorted(session.store.contents(ref)):
            rel = session.sql(f"SELECT count(*), sum(hash(t)) FROM {key} AS t", ref=ref).relation
            out[(ref, key)] = one_row(rel)
    return out


def _referenced_data_files(session: Session) -> set[str]:
    """Data files of every table at every reachable commit, as pyiceberg's `inspect.files()` lists them."""
    from ratatouille_nb.catalog.tables import BranchTables

    out: set[str] = set()
    for h in _reachable(session):
        tables = BranchTables(session.warehouse, session.workspace.prefix, session.store.get_commit(h).contents)
        for key in tables.keys():  # noqa: SIM118 - BranchTables is a catalog, not a mapping
            if tables.entry(key).view_sql is not None:
                continue
            out |= set(tables.load_table(key).inspect.files().column("file_path").to_pylist())
    return out


def _kill_mid_write(session: Session, key: str) -> None:
    """What a writer SIGKILLed before its commit leaves: data, manifests and metadata, no commit."""
    txn = session.transaction("killed")
    session.bind(f"SELECT * FROM {key}", txn.tables.base)
    TableWriter(session.con, txn, session.resources).insert(key, "SELECT * FROM range(5000, 5010)")
    # no commit(), no abort(): the process "died" here


def _scan(metadata_location: str, select: str) -> tuple:
    """Read a table from its metadata file with plain DuckDB, as a product consumer does."""
    import duckdb

    from ratatouille_nb.engine.extensions import load_extensions

    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        load_extensions(con, ("avro", "iceberg"))
        location = metadata_location.replace("'", "''")
        return con.execute(f"SELECT {select} FROM iceberg_scan('{location}')").fetchone()  # type: ignore[return-value]
    finally:
        con.close()


def _age(paths: set[str], seconds: float) -> None:
    old = time.time() - seconds
    for p in paths:
        os.utime(p, (old, old))


def _backdate_catalog(settings: Settings, seconds: float) -> None:
    import sqlite3

    con = sqlite3.connect(settings.catalog_db)
    with con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'created_at'", (repr(time.time() - seconds),))
    con.close()


@pytest.fixture
def history(settings: Settings, workspace: Workspace) -> Iterator[Session]:
    """Writes, deletes, replaces, a dropped table, a merged-then-deleted branch, a deleted branch, a tag."""
    path = workspace.root / "workspace.yaml"
    text = path.read_text()
    assert text.count("retention_days: null\n    partition_by: []") == 1
    path.write_text(text.replace("retention_days: null\n    partition_by: []", "retention_days: null\n    partition_by: [p]"))
    with Session(settings, Workspace.load(workspace.root)) as s:
        _write_history(s)
        yield s


def _write_history(s: Session) -> None:
    s.sql("CREATE TABLE bronze.a AS SELECT i AS id FROM range(100) t(i)")
    s.sql("INSERT INTO bronze.a SELECT i FROM range(100, 110) t(i)")
    s.sql("DELETE FROM bronze.a WHERE id < 20")
    s.store.create_reference("v1", "tag", s.branch)
    s.sql("CREATE OR REPLACE TABLE bronze.a AS SELECT i AS id FROM range(7) t(i)")  # same schema: overwrite
    s.sql("CREATE TABLE silver.r AS SELECT i AS x FROM range(3) t(i)")
    s.sql("CREATE OR REPLACE TABLE silver.r AS SELECT 'a' AS y")  # new schema: a new table
    s.sql("CREATE TABLE gold.dropped AS SELECT 1 AS z")
    s.sql("DROP TABLE gold.dropped")
    # One transaction, two appends to one table: the first snapshot is never committed.
    with s.transaction("two appends") as txn:
        s.bind("SELECT * FROM bronze.a", txn.tables.base)
        w = TableWriter(s.con, txn, s.resources)
        w.insert("bronze.a", "SELECT 1000")
        w.insert("bronze.a", "SELECT 1001")
        w.delete("bronze.a", "id = 1001")  # its file is only ever a DELETED entry of a commit
    # A branch that is merged (merge commit with two parents) and then deleted.
    s.store.create_reference("feature", "branch", s.branch)
    s.sql("CREATE TABLE silver.f AS SELECT i AS v FROM range(4) t(i)", ref="feature")
    s.sql("INSERT INTO silver.f SELECT 99", ref="feature")
    s.sql("INSERT INTO bronze.a SELECT 2000")
    assert s.store.merge("feature", s.branch).kind == "merge"
    s.store.delete_reference("feature")
    # A branch deleted without merging: its tables become garbage.
    s.store.create_reference("scratch", "branch", s.branch)
    s.sql("CREATE TABLE silver.only_scratch AS SELECT i AS v FROM range(50) t(i)", ref="scratch")
    s.sql("INSERT INTO bronze.a SELECT 3000", ref="scratch")
    s.store.delete_reference("scratch")
    s.store.create_reference("keep", "branch", f"{s.branch}~2")
    # A view model: a table-map entry with SQL and no files.
    head = s.store.get_reference(s.branch).hash
    view = TableEntry(metadata_location="", view_sql="SELECT id FROM bronze.a WHERE id < 5")
    s.store.commit(s.branch, head, {"gold.small_a": view}, {"gold.small_a": "create"}, message="view", author="t")
    # Partitioned (gold): several data files per manifest; a delete rewrites one of them.
    s.sql("CREATE TABLE gold.parts AS SELECT i AS id, i % 4 AS p FROM range(40) t(i)")
    s.sql("DELETE FROM gold.parts WHERE p = 1 AND id < 20")


def test_gc_deletes_only_unreachable_files(history: Session, settings: Settings) -> None:
    s = history
    scratch_dir = settings.warehouse / s.workspace.prefix / "silver" / "only_scratch"
    dropped_dir = settings.warehouse / s.workspace.prefix / "gold" / "dropped"
    assert any(p.is_file() for p in scratch_dir.rglob("*"))
    _kill_mid_write(s, "bronze.a")
    orphan_dirs = {p for p in (settings.warehouse / s.workspace.prefix / "bronze" / "a" / "data").iterdir()}
    before_reads = _snapshot_reads(s)
    before_files = _files(settings)
    reachable = _reachable(s)
    assert len(reachable) >= 12 and any(len(s.store.get_commit(h).parents) == 2 for h in reachable)

    report = session_gc(s, older_than_seconds=0)

    assert isinstance(report, GcReport) and not report.dry_run
    after_files = _files(settings)
    assert report.files_deleted == len(report.deleted) > 0 and set(report.deleted) == before_files - after_files
    assert report.files_kept == len(after_files) == report.live_files and report.too_recent == ()
    assert report.bytes_freed > 0
    assert report.snapshots_expired >= 1  # the uncommitted first append of the two-append transaction
    # Everything any ref or reachable commit reads is unchanged.
    assert _snapshot_reads(s) == before_reads
    assert scalar(s, "SELECT count(*) FROM bronze.a", ref="v1") == 90
    assert scalar(s, "SELECT sum(v) FROM silver.f") == 6 + 99
    # The unmerged deleted branch's own table is gone entirely; the dropped table is still
    # readable by time travel to the commits before its drop, so its files stay.
    assert not any(p.is_file() for p in scratch_dir.rglob("*"))
    assert any(p.is_file() for p in dropped_dir.rglob("*"))
    # The killed write left a data folder and metadata; all of it is gone, folder included.
    data_dir = settings.warehouse / s.workspace.prefix / "bronze" / "a" / "data"
    live_data_dirs = {p for p in data_dir.iterdir()}
    assert live_data_dirs < orphan_dirs
    assert all(any(q.is_file() for q in p.iterdir()) for p in live_data_dirs)
    # Metadata no commit points at (e.g. the 00000 files written before a CREATE's data) is gone.
    referenced = {e.metadata_location for h in reachable for e in s.store.get_commit(h).contents.values() if not e.is_view}
    assert {f for f in after_files if f.endswith(".metadata.json")} == referenced
    # Exactly the data files some reachable commit scans are left.
    assert {f for f in after_files if f.endswith(".parquet")} == _referenced_data_files(s)

    again = session_gc(s, older_than_seconds=0)
    assert again.files_deleted == 0 and again.snapshots_expired == 0 and _files(settings) == after_files


def test_dry_run_deletes_nothing(history: Session, settings: Settings) -> None:
    _kill_mid_write(history, "bronze.a")
    before = _files(settings)
    dry = session_gc(history, older_than_seconds=0, dry_run=True)
    assert dry.dry_run and dry.files_deleted > 0 and dry.bytes_freed > 0
    assert _files(settings) == before
    real = session_gc(history, older_than_seconds=0)
    assert real.deleted == dry.deleted and real.bytes_freed == dry.bytes_freed
    assert real.snapshots_expired == dry.snapshots_expired


def test_recent_files_are_kept_by_default(history: Session, settings: Settings) -> None:
    s = history
    before = _files(settings)
    orphan_start = set(before)
    _kill_mid_write(s, "bronze.a")
    orphans = _files(settings) - orphan_start
    assert orphans

    report = session_gc(s)  # default: older than one hour
    assert report.files_deleted == 0 and set(orphans) <= set(report.too_recent)
    assert _files(settings) == before | orphans

    # Once the killed write's files are two hours old, only they go; younger garbage stays.
    # (The catalog that wrote them is then at least as old: gc refuses files older than their catalog.)
    _age(orphans, 7200)
    _backdate_catalog(settings, 7200)
    report = session_gc(s)
    assert set(report.deleted) == orphans
    assert _files(settings) == before
    assert scalar(s, "SELECT count(*) FROM bronze.a") == 7 + 2


def test_gc_cli(history: Session, settings: Settings) -> None:
    from ratatouille_nb.cli.main import cli

    _kill_mid_write(history, "bronze.a")
    before = _files(settings)
    runner = CliRunner()
    res = runner.invoke(cli, ["--home", str(settings.home), "gc", "--older-than", "0", "--dry-run"], obj={})
    assert res.exit_code == 0, res.output
    assert "gc (dry run): would delete" in res.output
    assert _files(settings) == before
    res = runner.invoke(cli, ["--home", str(settings.home), "gc"], obj={})
    assert res.exit_code == 0 and "deleted 0 file(s)" in res.output
    res = runner.invoke(cli, ["--home", str(settings.home), "gc", "--older-than", "0"], obj={})
    assert res.exit_code == 0, res.output
    assert "gc: deleted" in res.output and "deleted 0 file(s)" not in res.output
    assert len(_files(settings)) < len(before)
    res = runner.invoke(cli, ["--home", str(settings.home), "gc", "--older-than", "soon"], obj={})
    assert res.exit_code == 2 and "not a duration" in res.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("0.5h", 1800)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_non_table_files_are_never_deleted(history: Session, settings: Settings) -> None:
    """Landing files pipelines ingest live under the warehouse root too; gc leaves them alone."""
    root = settings.warehouse / history.workspace.prefix
    landing = [root / "landing" / "sales" / "batch-001.csv", root / "landing" / "data" / "x.parquet", root / "notes.txt"]
    for path in landing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id\n1\n")
    _age({str(p) for p in landing}, 30 * 86400)
    report = session_gc(history, older_than_seconds=0)
    assert all(p.is_file() for p in landing)
    assert report.files_ignored == len(landing) and not set(report.deleted) & {str(p) for p in landing}
    assert report.files_deleted > 0  # the table garbage next to them did go


def test_product_pins_are_roots(session: Session, settings: Settings) -> None:
    """A product release pins a metadata file; gc keeps it even once no branch reaches it."""
    from ratatouille_nb.products.service import ProductService

    home_branch = session.branch
    session.store.create_reference("release-prep", "branch", home_branch)
    session.use_branch("release-prep")
    session.sql("CREATE TABLE gold.kpis AS SELECT i AS day, i * 10 AS revenue FROM range(30) t(i)")
    session.sql("DELETE FROM gold.kpis WHERE day < 10")
    ProductService(session).publish("gold.kpis", "kpis", "1.0.0")
    session.use_branch(home_branch)
    session.store.delete_reference("release-prep")

    report = session_gc(session, older_than_seconds=0)
    assert report.files_deleted > 0  # the branch's first version of gold.kpis is garbage
    entry = ProductService(session).resolve("kpis").entry
    assert _scan(entry.metadata_location, "count(*), sum(revenue)") == (20, 3900)
    # Without the registry's pins (pinned=()), the release's files would be collected.
    dry = collect_garbage(session.store, session.warehouse, older_than_seconds=0, dry_run=True, pinned=())
    assert entry.metadata_location in dry.deleted

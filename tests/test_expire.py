"""Snapshot expiry by layer retention, then gc: what a head, a tag, a product pin or the retention window reaches stays.

The workspace from `rat init` keeps bronze 90 days, silver 365, gold forever. Time is moved by
passing `now` to `expire` (commits keep their real times), so "100 days later" costs nothing.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.catalog.expiry import ExpiryLog
from ratatouille_nb.catalog.gc import GcReport
from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import RatError
from ratatouille_nb.maintenance.expire import expire
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs.maintenance import session_gc
from ratatouille_nb.workspace import Workspace, init_workspace

DAY = 86400.0


def _gc(s: Session) -> GcReport:
    return session_gc(s, older_than_seconds=0)  # every product pin is a root


def _count(s: Session, key: str, ref: str) -> int:
    return int(s.sql(f"SELECT count(*) FROM {key}", ref=ref).relation.fetchone()[0])


def test_expiry_keeps_the_window_heads_tags_and_pins_then_gc_collects_the_rest(session: Session) -> None:
    s = session
    hashes = []
    for i in range(4):  # bronze.t: 10, 20, 30, 40 rows, one commit each (a merge-on-read DELETE in between)
        sql = "CREATE TABLE bronze.t AS SELECT i AS id FROM range(10) t(i)" if i == 0 else f"INSERT INTO bronze.t SELECT {i} * 100 + i FROM range(10) t(i)"
        commit = s.sql(sql).commit
        assert commit is not None
        hashes.append(commit.hash)
        time.sleep(0.01)
    s.sql("DELETE FROM bronze.t WHERE id = 1")
    deleted_head = s.store.get_reference(s.branch).hash
    s.sql("CREATE TABLE silver.s AS SELECT 1 AS x")
    s.sql("INSERT INTO silver.s VALUES (2)")
    gold_first = s.sql("CREATE TABLE gold.g AS SELECT 1 AS x").commit
    assert gold_first is not None
    s.sql("INSERT INTO gold.g VALUES (2)")
    s.store.create_reference("old-tag", "tag", hashes[0])  # a tag on the first version
    s.sql("CREATE TABLE gold.kpi AS SELECT count(*) AS n FROM bronze.t", ref=s.branch)
    s.products.publish("gold.kpi", "kpi", "1.0.0")
    s.sql("INSERT INTO gold.kpi VALUES (0)")  # the pin now names an older version of gold.kpi

    # The cutoff falls between the second and third commit of bronze.t: the third and later are
    # within the window, the second is the version current at the cutoff, the first has a tag.
    created = [s.store.get_commit(h).created_at for h in hashes]
    now = (created[1] + created[2]) / 2 + 90 * DAY
    dry = expire(s, dry_run=True, now=now)
    assert dry.expired == () and ExpiryLog(s.settings.home).expired() == {}
    later = expire(s, now=(created[2] + created[3]) / 2 + 90 * DAY)  # the cutoff moves past the third commit
    assert {v.table for v in later.expired} == {"bronze.t"}
    assert [v.committed_at for v in later.expired] == [created[1]]  # only the second version goes

    far = expire(s, now=created[-1] + 400 * DAY)
    assert {v.table for v in far.expired} == {"bronze.t", "silver.s"}  # gold keeps everything (retention null)
    report = _gc(s)
    assert report.files_deleted > 0 and report.versions_retired > 0

    # Heads, tags and pins still read; the history they do not reach is gone.
    assert _count(s, "bronze.t", s.branch) == 39
    assert _count(s, "bronze.t", "old-tag") == 10
    assert s.sql("SELECT count(*) FROM products.kpi").relation.fetchone()[0] == 1
    assert _count(s, "gold.g", gold_first.hash) == 1  # gold: forever
    with pytest.raises(RatError, match=r"Cannot open file"):  # expired and collected: one line, no traceback
        _count(s, "bronze.t", hashes[2])
    # The delete files of the head stay live with it.
    assert s.table_stats("bronze.t")["delete_files"] == 1 and deleted_head


def test_a_branch_made_later_from_expired_history_keeps_its_files(session: Session) -> None:
    s = session
    first = s.sql("CREATE TABLE bronze.t AS SELECT i AS id FROM range(5) t(i)").commit
    assert first is not None
    s.sql("INSERT INTO bronze.t VALUES (99)")
    expire(s, now=time.time() + 100 * DAY)
    s.store.create_reference("revive", "branch", first.hash)  # after the expiry: its head is a root
    _gc(s)
    assert _count(s, "bronze.t", "revive") == 5
    assert _count(s, "bronze.t", s.branch) == 6


def test_row_retention_drops_old_partitions_on_request(settings: Settings, tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ret", settings, name="ret")
    config = ws.root / "workspace.yaml"
    config.write_text(config.read_text().replace("partition_by: []", "partition_by: [d]", 1))
    today = date.today()
    with Session(settings, Workspace.load(ws.root)) as s:
        s.sql(f"CREATE TABLE bronze.ev AS SELECT i AS id, DATE '{today.isoformat()}' - (i % 200)::INTEGER AS d FROM range(1000) t(i)")
        s.sql("DELETE FROM bronze.ev WHERE id % 10 = 0")
        cutoff = today - timedelta(days=90)
        expected = s.sql(f"SELECT count(*) FROM bronze.ev WHERE d >= DATE '{cutoff.isoformat()}'").relation.fetchone()[0]
        dropped_rows = s.sql("SELECT count(*) FROM bronze.ev").relation.fetchone()[0] - expected

        dry = expire(s, rows=True, dry_run=True)
        assert dry.partitions[0].rows == dropped_rows and dry.commit_hash is None
        assert s.sql("SELECT count(*) FROM bronze.ev").relation.fetchone()[0] == expected + dropped_rows
        report = expire(s, rows=True)
        [p] = report.partitions
        assert (p.table, p.cutoff, p.rows) == ("bronze.ev", cutoff.isoformat(), dropped_rows)
        # 109 day partitions are older than the cutoff; the DELETE emptied (and dropped) every tenth one.
        assert p.files == 109 - 10
        assert s.sql(f"SELECT count(*), bool_and(d >= DATE '{cutoff.isoformat()}') FROM bronze.ev").relation.fetchone() == (expected, True)
        assert s.store.get_commit(report.commit_hash or "").operations == {"bronze.ev": "delete"}
        # Without --rows nothing is dropped: row retention is opt-in.
        assert expire(s).partitions == ()


def test_rat_expire_cli(settings: Settings, tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "cli", settings, name="cli")
    with Session(settings, ws) as s:
        s.sql("CREATE TABLE bronze.a AS SELECT 1 AS id")
        s.sql("INSERT INTO bronze.a VALUES (2)")
    runner = CliRunner()
    out = runner.invoke(cli, ["--home", str(settings.home), "-w", str(ws.root), "expire", "--dry-run"], obj={}, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "expire (dry run): 0 table version(s) would expire, 2 kept" in out.output

"""Compaction: `rat optimize` and the automatic one after a run fold deletes in and bin-pack, changing no row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ratatouille_nb.catalog.deletes import live_files
from ratatouille_nb.catalog.transaction import TableTransaction
from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.engine.writer import TableWriter
from ratatouille_nb.errors import CommitConflictError, TableNotFoundError
from ratatouille_nb.lineage.build import producing_run
from ratatouille_nb.maintenance.optimize import _compact, optimize
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs import pipelines
from ratatouille_nb.workspace import Workspace, init_workspace

CHECK = "SELECT count(*), count(DISTINCT id), sum(hash(t)) FROM {key} AS t"


def _lake(settings: Settings, tmp_path: Path, overrides: str = "{}", silver_partitions: str = "[]") -> Session:
    ws = init_workspace(tmp_path / "opt", settings, name="opt")
    config = ws.root / "workspace.yaml"
    text = config.read_text().replace("overrides: {}", f"overrides: {overrides}")
    head, sep, tail = text.partition("silver:")
    config.write_text(head + sep + tail.replace("partition_by: []", f"partition_by: {silver_partitions}", 1))
    return Session(settings, Workspace.load(ws.root))


@pytest.fixture
def lake(settings: Settings, tmp_path: Path) -> Any:
    with _lake(settings, tmp_path) as s:
        yield s


def _check(s: Session, key: str, ref: str | None = None) -> tuple:
    row = s.sql(CHECK.format(key=key), ref=ref).relation.fetchone()
    assert row is not None
    return row


def _pyiceberg_check(s: Session, key: str) -> tuple[int, int]:
    data = s.transaction("read").load(key).scan().to_arrow()
    return data.num_rows, len(set(data["id"].to_pylist()))


def _layout(s: Session, key: str) -> tuple[int, int]:
    st = s.table_stats(key)
    return st["files"], st["delete_files"]


def test_optimize_folds_deletes_and_bin_packs_without_changing_a_row(lake: Session) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, 'v' || i AS v FROM range(1000) t(i)")
    for i in range(5):
        s.sql(f"INSERT INTO silver.t SELECT 1000 + {i} * 10 + j, 'new' FROM range(10) r(j)")
    s.sql("DELETE FROM silver.t WHERE id % 7 = 0")
    s.sql("UPDATE silver.t SET v = 'upd' WHERE id % 11 = 0")
    before = _check(s, "silver.t")
    files, deletes = _layout(s, "silver.t")
    assert files >= 7 and deletes >= 6
    head = s.store.get_reference(s.branch).hash

    report = optimize(s)
    [t] = report.tables
    assert t.changed and t.files_rewritten == files and t.delete_files_after == 0
    assert t.deleted_rows_purged == s.table_stats("silver.t", head)["deleted_rows"]
    assert _check(s, "silver.t") == before == _check(s, "silver.t", head)  # time travel to before still reads the same
    assert _layout(s, "silver.t") == (1, 0)
    assert _pyiceberg_check(s, "silver.t") == (before[0], before[1])
    commit = s.store.get_commit(report.commit_hash or "")
    assert commit.parents == (head,) and commit.operations == {"silver.t": "optimize"}
    snap = s.transaction("read").load("silver.t").current_snapshot()
    assert snap is not None and snap.summary is not None and snap.summary.operation.value == "replace"
    assert snap.summary["total-records"] == str(before[0]) and snap.summary["total-position-deletes"] == "0"

    again = optimize(s, ["silver.t"])  # nothing left to do: no commit
    assert again.commit_hash is None and again.tables[0].reason == "nothing to compact"
    with pytest.raises(TableNotFoundError, match=r"no table silver\.nope"):
        optimize(s, ["silver.nope"])


def test_partitions_and_evolved_schemas_survive_compaction(settings: Settings, tmp_path: Path) -> None:
    with _lake(settings, tmp_path, silver_partitions="[p]") as s:
        s.sql("CREATE TABLE silver.t AS SELECT i AS id, i % 3 AS p FROM range(300) t(i)")
        from ratatouille_nb.engine.incremental import IncrementalWriter

        with s.transaction("evolve") as txn:  # a column added by an incremental append
            s.bind("silver.t", txn.contents())
            IncrementalWriter(s.con, txn, s.resources, spill_dir=s.spill_dir).append(
                "silver.t", "SELECT 1000 + i AS id, i % 3 AS p, 'x' || i AS extra FROM range(30) t(i)"
            )
        s.sql("DELETE FROM silver.t WHERE id % 4 = 0")
        before = s.sql("SELECT p, count(*), count(extra), sum(id) FROM silver.t GROUP BY p ORDER BY p").relation.fetchall()
        optimize(s)
        after = s.sql("SELECT p, count(*), count(extra), sum(id) FROM silver.t GROUP BY p ORDER BY p").relation.fetchall()
        assert after == before
        table = s.transaction("read").load("silver.t")
        files = live_files(table.metadata, table.io)
        assert len(files) == 3 and all(not f.deletes for f in files.values())
        for f in files.values():  # one partition per file, and the partition value in its rows
            p = f.data_file.partition[0]
            assert s.con.execute(f"SELECT DISTINCT p FROM read_parquet('{f.path}')").fetchall() == [(p,)]


def _staged_compaction(s: Session, key: str) -> TableTransaction:
    """A compaction planned and staged in a transaction that has not committed yet."""
    txn = s.transaction("optimize")
    writer = TableWriter(s.con, txn, s.resources)
    table = txn.load(key)
    _compact(writer, key, table, writer.live(table), "test")
    return txn


def test_a_compaction_replays_over_a_concurrent_append_but_not_over_a_rewrite(lake: Session, settings: Settings) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id FROM range(100) t(i)")
    s.sql("DELETE FROM silver.t WHERE id < 10")
    txn = _staged_compaction(s, "silver.t")
    with Session(settings, s.workspace) as other:
        other.sql("INSERT INTO silver.t VALUES (500)")
    assert txn.commit() is not None
    assert _check(s, "silver.t")[:2] == (91, 91) and _layout(s, "silver.t") == (2, 0)

    s.sql("DELETE FROM silver.t WHERE id = 50")
    txn = _staged_compaction(s, "silver.t")
    with Session(settings, s.workspace) as other:
        other.sql("DELETE FROM silver.t WHERE id = 60")  # new deletes on a file the compaction replaces
    with pytest.raises(CommitConflictError) as err:
        txn.commit()
    txn.abort()
    assert err.value.tables == ["silver.t"]
    assert _check(s, "silver.t")[:2] == (89, 89)


MODEL = """\
-- @materialized: incremental
-- @unique_key: id
SELECT id, v, _b FROM {{ ref('bronze.src') }}
{% if is_incremental() %} WHERE _b > {{ watermark('_b') }} {% endif %}
"""


@pytest.mark.parametrize("auto", [True, False])
def test_a_run_compacts_the_tables_past_the_thresholds(settings: Settings, tmp_path: Path, auto: bool) -> None:
    overrides = f"{{compaction: {{auto: {str(auto).lower()}, max_delete_files: 2, max_deleted_fraction: 0.9}}}}"
    with _lake(settings, tmp_path, overrides) as s:
        (s.workspace.root / "pipelines" / "silver").mkdir(parents=True, exist_ok=True)
        (s.workspace.root / "pipelines" / "silver" / "m.sql").write_text(MODEL)
        s.sql("CREATE TABLE bronze.src AS SELECT i AS id, 0 AS v, 0 AS _b FROM range(100) t(i)")
        assert pipelines.run(s).status == "success"
        s.sql("INSERT INTO bronze.src SELECT i, 1, 1 FROM range(0, 100, 10) t(i)")
        first = pipelines.run(s)
        assert first.status == "success"
        assert _layout(s, "silver.m")[1] == 1  # one delete file: below max_delete_files = 2
        s.sql("INSERT INTO bronze.src SELECT i, 2, 2 FROM range(5, 100, 10) t(i)")
        second = pipelines.run(s)
        assert second.status == "success"
        files, deletes = _layout(s, "silver.m")
        rows = s.sql("SELECT count(*), sum(v) FROM silver.m").relation.fetchone()
        assert rows == (100, 30)
        if auto:
            assert deletes == 0 and files == 1
            head = s.store.log(s.branch, limit=1)[0]
            assert head.operations == {"silver.m": "optimize"} and head.parents[0] == second.commit_hash
            # Lineage looks through the compaction: the run that wrote the rows produced the snapshot.
            producer = producing_run(s, "silver.m")
            assert producer is not None and producer.run_id == second.run_id
        else:
            assert deletes == 2
            assert s.store.get_reference(s.branch).hash == second.commit_hash


def test_rat_optimize_cli(settings: Settings, tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "cli", settings, name="cli")
    with Session(settings, ws) as s:
        s.sql("CREATE TABLE bronze.a AS SELECT i AS id FROM range(50) t(i)")
        s.sql("DELETE FROM bronze.a WHERE id < 5")
        s.sql("CREATE TABLE bronze.b AS SELECT 1 AS id")
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(settings.home), "-w", str(ws.root), "optimize"], obj={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "bronze.a: 1 file(s) rewritten (45 rows, 5 deleted rows purged); data files 1 -> 1, delete files 1 -> 0" in result.output
    assert "bronze.b: nothing to compact" in result.output and "committed" in result.output
    result = runner.invoke(cli, ["--home", str(settings.home), "-w", str(ws.root), "optimize", "bronze.zzz"], obj={})
    assert result.exit_code != 0 and "no table bronze.zzz" in result.output
    show = runner.invoke(cli, ["--home", str(settings.home), "-w", str(ws.root), "tables", "show", "bronze.a"], obj={})
    assert "rows 45  files 1  delete files 0 (0.0% deleted)" in show.output

"""Merge-on-read: Iceberg v2 position deletes written by Ratatouille, checked against copy-on-write and a model.

Everything is real: DuckDB writes the files, pyiceberg 0.12 the metadata (through the subclasses in
`catalog/deletes.py`), the SQLite version store commits. Expected rows come from a plain Python
model of the table (the full-refresh result), never from Ratatouille itself; every table is also
read back by pyiceberg's own scan, which applies the delete files independently of DuckDB.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.manifest import DataFileContent, ManifestContent

from ratatouille_nb.catalog.deletes import (
    PATH_FIELD_ID,
    POS_FIELD_ID,
    PyIcebergVersionError,
    live_files,
    referenced_data_file,
    require_supported_pyiceberg,
)
from ratatouille_nb.engine.incremental import IncrementalWriter
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import CommitConflictError, SqlError
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.loader import load_project
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

Row = tuple[int, int, str]  # (id, p, v): p is the partition column of the partitioned layer


@pytest.fixture
def lake(settings: Settings, tmp_path: Path) -> Any:
    """A session whose `silver` layer is partitioned by `p` (rows can move partitions)."""
    ws = init_workspace(tmp_path / "mor", settings, name="mor")
    config = ws.root / "workspace.yaml"
    text = config.read_text()
    head, sep, tail = text.partition("silver:")
    config.write_text(head + sep + tail.replace("partition_by: []", "partition_by: [p]", 1))
    with Session(settings, Workspace.load(ws.root)) as s:
        yield s


def set_properties(s: Session, key: str, **props: str) -> None:
    """Set Iceberg table properties (e.g. write.merge.mode) in one commit."""
    with s.transaction(f"properties of {key}") as txn:
        table = txn.load(key)
        with txn.lock, table.transaction() as tx:
            tx.set_properties(properties=dict(props))
        txn.record(key, "schema")


def values_sql(rows: list[Row]) -> str:
    return "SELECT * FROM (VALUES " + ", ".join(f"({i}, {p}, '{v}')" for i, p, v in rows) + ") AS t(id, p, v)"


def merge(s: Session, key: str, rows: list[Row], write_mode: str | None = None) -> Any:
    with s.transaction(f"merge into {key}") as txn:
        s.bind(key, txn.contents())
        writer = IncrementalWriter(s.con, txn, s.resources, spill_dir=s.spill_dir)
        return writer.merge(key, values_sql(rows), ["id"], write_mode=write_mode)


def table_rows(s: Session, key: str, ref: str | None = None) -> list[Row]:
    return sorted(s.sql(f"SELECT id, p, v FROM {key}", ref=ref).relation.fetchall())


def pyiceberg_rows(s: Session, key: str) -> list[Row]:
    table = s.transaction("read").load(key)
    data = table.scan().to_arrow()
    return sorted(zip(data["id"].to_pylist(), data["p"].to_pylist(), data["v"].to_pylist(), strict=True))


def files_of(s: Session, key: str) -> dict[str, Any]:
    table = s.transaction("read").load(key)
    return live_files(table.metadata, table.io)


def summary(s: Session, key: str) -> dict[str, str]:
    snap = s.transaction("read").load(key).current_snapshot()
    assert snap is not None and snap.summary is not None
    return {"operation": snap.summary.operation.value, **snap.summary.additional_properties}


# -- the delete-file writer ---------------------------------------------------------------------


def test_only_the_pinned_pyiceberg_writes_delete_files() -> None:
    require_supported_pyiceberg("0.12.3")
    with pytest.raises(PyIcebergVersionError, match=r"needs pyiceberg 0\.12\.x, found 0\.13\.0") as err:
        require_supported_pyiceberg("0.13.0")
    assert "copy-on-write" in (err.value.hint or "")


def test_a_delete_writes_one_position_delete_file_per_data_file(lake: Session) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, i % 3 AS p, 'v' || i AS v FROM range(30) t(i)")
    before = files_of(s, "silver.t")
    assert len(before) == 3  # one data file per partition
    result = s.sql("DELETE FROM silver.t WHERE id % 5 = 0")
    assert result.writes[0].rows == 6 and result.writes[0].operation == "delete"
    assert summary(s, "silver.t")["operation"] == "delete"
    assert table_rows(s, "silver.t") == pyiceberg_rows(s, "silver.t") == [(i, i % 3, f"v{i}") for i in range(30) if i % 5]

    table = s.transaction("read").load("silver.t")
    snap = table.current_snapshot()
    assert snap is not None
    manifests = snap.manifests(table.io)
    delete_manifests = [m for m in manifests if m.content == ManifestContent.DELETES]
    assert len(delete_manifests) == 1 and delete_manifests[0].added_files_count == 3
    entries = delete_manifests[0].fetch_manifest_entry(table.io)
    data_paths = set(before)
    for entry in entries:
        delete = entry.data_file
        assert delete.content == DataFileContent.POSITION_DELETES
        target = referenced_data_file(delete)
        assert target in data_paths
        assert delete.lower_bounds[PATH_FIELD_ID] == delete.upper_bounds[PATH_FIELD_ID] == target.encode()
        assert delete.partition == before[target].data_file.partition  # a delete file sits in its data file's partition
        with table.io.new_input(delete.file_path).open() as stream:
            parquet = pq.read_table(stream)
        ids = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in parquet.schema}
        assert ids == {"file_path": PATH_FIELD_ID, "pos": POS_FIELD_ID}
        positions = parquet["pos"].to_pylist()
        assert positions == sorted(positions) and len(positions) == delete.record_count == 2
        assert set(parquet["file_path"].to_pylist()) == {target}
    # The manifest file also carries referenced_data_file (field 143), which the v2 read schema drops.
    from pyiceberg.avro.file import AvroFile
    from pyiceberg.manifest import MANIFEST_ENTRY_SCHEMAS

    reader: AvroFile[Any]
    with AvroFile(table.io.new_input(delete_manifests[0].manifest_path), MANIFEST_ENTRY_SCHEMAS[3]) as reader:
        raw: list[Any] = list(reader)
    assert sorted(r[4][17] for r in raw) == sorted(data_paths)
    assert reader.header.meta["content"] == "deletes"


def test_fully_deleted_data_files_leave_the_table_with_their_deletes(lake: Session) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, i % 2 AS p, 'v' AS v FROM range(10) t(i)")
    s.sql("DELETE FROM silver.t WHERE id = 1")
    assert summary(s, "silver.t")["total-delete-files"] == "1"
    s.sql("DELETE FROM silver.t WHERE p = 1")  # the rest of partition 1: its data file goes, and its delete file
    stats = s.table_stats("silver.t")
    assert (stats["rows"], stats["files"], stats["delete_files"], stats["deleted_rows"]) == (5, 1, 0, 0)
    assert table_rows(s, "silver.t") == pyiceberg_rows(s, "silver.t") == [(i, 0, "v") for i in range(0, 10, 2)]


def test_re_updating_a_key_deletes_each_old_row_once(lake: Session) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, 0 AS p, 'a' AS v FROM range(100) t(i)")
    out = merge(s, "silver.t", [(1, 0, "b"), (2, 1, "b"), (500, 0, "new")])
    assert (out.rows, out.updated) == (3, 2)
    out = merge(s, "silver.t", [(1, 1, "c"), (2, 1, "c"), (3, 0, "c")])  # 1 and 2 again, 1 moves partition
    assert (out.rows, out.updated) == (3, 3)
    stats = s.table_stats("silver.t")
    # Deleted: old 1, 2 (first merge), then 3 and the first merge's 1; the first merge's one-row
    # file for partition 1 (key 2) lost its only row, so it left the table instead.
    assert (stats["rows"], stats["data_rows"], stats["deleted_rows"]) == (101, 105, 4)
    expected = sorted([(i, 0, "a") for i in range(4, 100)] + [(0, 0, "a"), (1, 1, "c"), (2, 1, "c"), (3, 0, "c"), (500, 0, "new")])
    assert table_rows(s, "silver.t") == pyiceberg_rows(s, "silver.t") == expected
    # No position is deleted twice: every delete file's positions are distinct from the others'.
    table = s.transaction("read").load("silver.t")
    positions = s.con.execute(
        "SELECT count(*), count(DISTINCT (file_path, pos)) FROM read_parquet($1)",
        [[d.file_path for f in live_files(table.metadata, table.io).values() for d in f.deletes]],
    ).fetchone()
    assert positions == (4, 4)


def test_update_moves_rows_between_partitions(lake: Session) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, i % 2 AS p, 'a' AS v FROM range(20) t(i)")
    out = s.sql("UPDATE silver.t SET p = 5, v = 'moved' WHERE id < 4").writes[0]
    assert (out.operation, out.rows) == ("update", 4)
    assert summary(s, "silver.t")["operation"] == "overwrite"
    expected = sorted([(i, 5, "moved") for i in range(4)] + [(i, i % 2, "a") for i in range(4, 20)])
    assert table_rows(s, "silver.t") == pyiceberg_rows(s, "silver.t") == expected
    assert s.sql("SELECT count(*) FROM silver.t WHERE p = 5").relation.fetchone()[0] == 4
    # A second UPDATE of rows an earlier one already replaced touches only the live versions.
    s.sql("UPDATE silver.t SET v = 'again' WHERE id < 2")
    assert s.sql("SELECT count(*), count(DISTINCT id) FROM silver.t").relation.fetchone() == (20, 20)
    assert pyiceberg_rows(s, "silver.t") == table_rows(s, "silver.t")


def test_copy_on_write_by_table_property_and_by_model(lake: Session) -> None:
    s = lake
    for key in ("silver.cow", "silver.mor"):
        s.sql(f"CREATE TABLE {key} AS SELECT i AS id, 0 AS p, 'a' AS v FROM range(50) t(i)")
    set_properties(s, "silver.cow", **{"write.delete.mode": "copy-on-write", "write.update.mode": "copy-on-write",
                                       "write.merge.mode": "copy-on-write"})
    for key in ("silver.cow", "silver.mor"):
        s.sql(f"DELETE FROM {key} WHERE id < 5")
        s.sql(f"UPDATE {key} SET v = 'u' WHERE id BETWEEN 10 AND 12")
        merge(s, key, [(20, 0, "m"), (99, 0, "n")])
    assert table_rows(s, "silver.cow") == table_rows(s, "silver.mor")
    assert s.table_stats("silver.cow")["delete_files"] == 0
    assert s.table_stats("silver.mor")["delete_files"] > 0
    # The model's write_mode wins over the table property and the default.
    merge(s, "silver.mor", [(30, 0, "cow")], write_mode="copy-on-write")
    assert summary(s, "silver.mor")["operation"] == "overwrite"
    assert "added-position-deletes" not in summary(s, "silver.mor")
    set_properties(s, "silver.mor", **{"write.delete.mode": "sometimes"})
    with pytest.raises(SqlError, match=r"write\.delete\.mode is 'sometimes'"):
        s.sql("DELETE FROM silver.mor WHERE id = 40")


# -- merge-on-read equals copy-on-write equals a full refresh (hypothesis) ------------------------

KEYS = st.integers(0, 30)
STEP = st.one_of(
    st.tuples(st.just("merge"), st.lists(st.tuples(KEYS, st.integers(0, 2)), min_size=1, max_size=12, unique_by=lambda r: r[0])),
    st.tuples(st.just("delete"), st.lists(KEYS, min_size=1, max_size=6)),
    st.tuples(st.just("update"), st.lists(KEYS, min_size=1, max_size=6), st.integers(0, 2)),
)
_counter = itertools.count()


def _apply(s: Session, key: str, step: tuple, tag: str, mode: str | None) -> None:
    kind = step[0]
    if kind == "merge":
        merge(s, key, [(k, p, tag) for k, p in step[1]], write_mode=mode)
    elif kind == "delete":
        s.sql(f"DELETE FROM {key} WHERE id IN ({', '.join(map(str, step[1]))})")
    else:
        s.sql(f"UPDATE {key} SET v = '{tag}', p = {step[2]} WHERE id IN ({', '.join(map(str, step[1]))})")


def _model(rows: dict[int, tuple[int, str]], step: tuple, tag: str) -> None:
    kind = step[0]
    if kind == "merge":
        rows.update({k: (p, tag) for k, p in step[1]})
    elif kind == "delete":
        for k in step[1]:
            rows.pop(k, None)
    else:
        for k in step[1]:
            if k in rows:
                rows[k] = (step[2], tag)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(initial=st.lists(st.tuples(KEYS, st.integers(0, 2)), max_size=20, unique_by=lambda r: r[0]), steps=st.lists(STEP, min_size=1, max_size=6))
def test_merge_on_read_equals_copy_on_write_and_a_full_refresh(lake: Session, initial: list[tuple[int, int]], steps: list[tuple]) -> None:
    s = lake
    n = next(_counter)
    mor, cow = f"silver.mor_{n}", f"silver.cow_{n}"
    expected = {k: (p, "init") for k, p in initial}
    start = values_sql([(k, p, "init") for k, p in initial]) if initial else "SELECT 0 AS id, 0 AS p, 'x' AS v WHERE false"
    for key in (mor, cow):
        s.sql(f"CREATE TABLE {key} AS {start}")
    set_properties(s, cow, **{"write.delete.mode": "copy-on-write", "write.update.mode": "copy-on-write"})
    for i, step in enumerate(steps):
        tag = f"s{i}"
        _apply(s, mor, step, tag, None)
        _apply(s, cow, step, tag, "copy-on-write")
        _model(expected, step, tag)
    want = sorted((k, p, v) for k, (p, v) in expected.items())
    assert table_rows(s, mor) == want
    assert table_rows(s, cow) == want
    assert pyiceberg_rows(s, mor) == want
    stats = s.table_stats(mor)
    assert stats["rows"] == len(want)
    assert s.table_stats(cow)["delete_files"] == 0


# -- concurrency --------------------------------------------------------------------------------


def _staged_delete(s: Session, key: str, where: str) -> Any:
    """A DELETE planned in a transaction that has not committed yet (as a slow statement would be)."""
    from ratatouille_nb.engine.writer import TableWriter

    txn = s.transaction(f"DELETE FROM {key} WHERE {where}")
    writer = TableWriter(s.con, txn, s.resources)
    outcome = writer.delete(key, where)
    return txn, outcome


def test_a_concurrent_rewrite_of_a_referenced_file_is_a_conflict(lake: Session, settings: Settings) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, 0 AS p, 'a' AS v FROM range(20) t(i)")
    txn, _ = _staged_delete(s, "silver.t", "id < 3")
    with Session(settings, s.workspace) as other:  # another writer rewrites the file (copy-on-write)
        set_properties(other, "silver.t", **{"write.update.mode": "copy-on-write"})
        other.sql("UPDATE silver.t SET v = 'b' WHERE id = 10")
    head = s.store.get_reference(s.branch).hash
    with pytest.raises(CommitConflictError, match=r"silver\.t changed in a concurrent commit that rewrote") as err:
        txn.commit()
    txn.abort()
    assert err.value.tables == ["silver.t"]
    assert s.store.get_reference(s.branch).hash == head  # nothing landed
    assert s.sql("SELECT count(*) FROM silver.t WHERE id < 3").relation.fetchone()[0] == 3  # no silent loss either way


def test_concurrent_deletes_of_rows_of_the_same_file_conflict(lake: Session, settings: Settings) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, 0 AS p, 'a' AS v FROM range(20) t(i)")
    txn, _ = _staged_delete(s, "silver.t", "id < 3")
    with Session(settings, s.workspace) as other:
        other.sql("DELETE FROM silver.t WHERE id = 2")
    with pytest.raises(CommitConflictError) as err:
        txn.commit()
    txn.abort()
    assert err.value.tables == ["silver.t"]
    assert table_rows(s, "silver.t") == [(i, 0, "a") for i in range(20) if i != 2]


def test_a_delete_replayed_over_a_concurrent_append_deletes_the_new_matches_too(lake: Session, settings: Settings) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, 0 AS p, 'a' AS v FROM range(20) t(i)")
    txn, outcome = _staged_delete(s, "silver.t", "v = 'a' AND id < 5")
    assert outcome.rows == 5
    with Session(settings, s.workspace) as other:
        other.sql("INSERT INTO silver.t VALUES (1000, 0, 'a'), (1, 1, 'a'), (2000, 0, 'keep')")
    commit = txn.commit()
    assert commit is not None and outcome.rows == 6  # the statement ran, serially, after the append
    assert table_rows(s, "silver.t") == pyiceberg_rows(s, "silver.t") == sorted(
        [(i, 0, "a") for i in range(5, 20)] + [(1000, 0, "a"), (2000, 0, "keep")]
    )


def test_a_merge_replayed_over_a_concurrent_append_keeps_one_row_per_key(lake: Session, settings: Settings) -> None:
    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, 0 AS p, 'a' AS v FROM range(20) t(i)")
    txn = s.transaction("merge")
    s.bind("silver.t", txn.contents())
    writer = IncrementalWriter(s.con, txn, s.resources, spill_dir=s.spill_dir)
    outcome = writer.merge("silver.t", values_sql([(3, 0, "mine"), (50, 1, "mine")]), ["id"])
    with Session(settings, s.workspace) as other:
        other.sql("INSERT INTO silver.t VALUES (50, 0, 'theirs'), (60, 0, 'theirs')")
    txn.commit()
    assert (outcome.rows, outcome.updated) == (2, 2)
    rows = table_rows(s, "silver.t")
    assert [r for r in rows if r[0] in (3, 50, 60)] == [(3, 0, "mine"), (50, 1, "mine"), (60, 0, "theirs")]
    assert len(rows) == len({r[0] for r in rows}) == 22
    assert pyiceberg_rows(s, "silver.t") == rows


# -- pipelines ----------------------------------------------------------------------------------

MODEL = """\
-- @materialized: incremental
-- @unique_key: id
{mode}
SELECT id, id % 3 AS p, 'b' || _b AS v, _b FROM {{{{ ref('bronze.src') }}}}
{{% if is_incremental() %}} WHERE _b > {{{{ watermark('_b') }}}} {{% endif %}}
"""


def test_models_merge_on_read_by_default_and_copy_on_write_on_request(lake: Session) -> None:
    s = lake
    root = s.workspace.root / "pipelines" / "silver"
    root.mkdir(parents=True, exist_ok=True)
    (root / "mor.sql").write_text(MODEL.format(mode=""))
    (root / "cow.sql").write_text(MODEL.format(mode="-- @write_mode: copy-on-write"))
    rng = random.Random(3)
    s.sql("CREATE TABLE bronze.src AS SELECT i AS id, 0 AS _b FROM range(40) t(i)")
    assert Runner(s).run().status == "success"
    for b in (1, 2):
        ids = rng.sample(range(60), 15)
        s.sql(f"INSERT INTO bronze.src SELECT * FROM (VALUES {', '.join(f'({i}, {b})' for i in ids)}) AS t(id, _b)")
        record = Runner(s).run()
        assert record.status == "success", record.error
    assert table_rows(s, "silver.mor") == table_rows(s, "silver.cow")
    assert s.table_stats("silver.mor")["delete_files"] > 0
    assert s.table_stats("silver.cow")["delete_files"] == 0
    assert load_project(s.workspace.root).models["silver_cow"].write_mode == "copy-on-write"

    (root / "mor.yaml").write_text("write_mode: copy-on-write\n")
    assert load_project(s.workspace.root).models["silver_mor"].write_mode == "copy-on-write"
    (root / "cow.sql").write_text(MODEL.format(mode="-- @write_mode: sometimes"))
    with pytest.raises(PipelineError, match="write_mode") as err:
        load_project(s.workspace.root)
    assert err.value.line == 3


# -- branches, products and gc see delete files -----------------------------------------------------


def test_branch_merges_products_and_gc_carry_delete_files(lake: Session) -> None:
    from ratatouille_nb.verbs.maintenance import session_gc

    s = lake
    s.sql("CREATE TABLE silver.t AS SELECT i AS id, i % 3 AS p, 'a' AS v FROM range(300) t(i)")
    s.sql("CREATE TABLE silver.other AS SELECT 1 AS id, 0 AS p, 'x' AS v")
    s.store.create_reference("dev", "branch", s.branch)
    s.sql("DELETE FROM silver.t WHERE id < 100", ref="dev")  # position deletes on dev
    s.sql("UPDATE silver.other SET v = 'y'")  # main changes another table: a three-way merge
    result = s.store.merge("dev", s.branch)
    assert result.kind == "merge" and result.tables == ["silver.t"]
    assert table_rows(s, "silver.t") == [(i, i % 3, "a") for i in range(100, 300)]
    assert s.table_stats("silver.t")["delete_files"] == 3

    s.products.publish("silver.t", "trimmed", "1.0.0")
    s.sql("DELETE FROM silver.t WHERE id >= 200")  # the pin keeps the version with 200 rows
    assert s.sql("SELECT count(*) FROM products.trimmed").relation.fetchone()[0] == 200

    session_gc(s, older_than_seconds=0)  # the product pin is a root
    table = s.transaction("read").load("silver.t")
    for live in live_files(table.metadata, table.io).values():
        for delete in live.deletes:
            assert Path(delete.file_path).is_file(), delete.file_path  # delete files of live versions are live
    assert table_rows(s, "silver.t") == [(i, i % 3, "a") for i in range(100, 200)]
    assert s.sql("SELECT count(*) FROM products.trimmed").relation.fetchone()[0] == 200
    assert s.sql("SELECT count(*) FROM silver.t", ref="dev").relation.fetchone()[0] == 200


def test_a_column_named_like_a_virtual_one_reads_the_files_directly(lake: Session) -> None:
    """`filename` would shadow iceberg_scan's virtual column: rewrites and compaction read the files instead."""
    from ratatouille_nb.maintenance.optimize import optimize

    s = lake
    s.sql("CREATE TABLE silver.f AS SELECT i AS id, i % 2 AS p, 'file' || i AS filename FROM range(40) t(i)")
    set_properties(s, "silver.f", **{"write.update.mode": "copy-on-write"})
    s.sql("DELETE FROM silver.f WHERE id < 10")
    s.sql("UPDATE silver.f SET filename = 'changed' WHERE id = 20")
    optimize(s, ["silver.f"])
    rows = sorted(s.sql("SELECT id, filename FROM silver.f").relation.fetchall())
    assert rows == [(i, "changed" if i == 20 else f"file{i}") for i in range(10, 40)]
    assert s.table_stats("silver.f")["delete_files"] == 0

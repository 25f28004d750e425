"""Row-level diffs between refs: rows added, deleted and updated, exact from metadata or computed by key.

Expected counts come from the statements themselves (how many keys each one touched), checked
against a plain-DuckDB comparison of the two versions' rows where that is the definition.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.catalog.diff import diff_refs
from ratatouille_nb.catalog.models import TableDiff
from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.incremental import IncrementalWriter
from ratatouille_nb.engine.session import Session
from ratatouille_nb.maintenance.optimize import optimize
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

BASE = "SELECT i AS id, 'n' || i AS name, i % 10 AS grp, CAST(i AS DOUBLE) AS amount FROM range(50000) t(i)"


def _head(s: Session) -> str:
    return s.store.get_reference(s.branch).hash


def _one(diffs: list[TableDiff]) -> TableDiff:
    assert len(diffs) == 1, diffs
    return diffs[0]


def _merge(s: Session, key: str, select: str) -> None:
    with s.transaction(f"merge into {key}") as txn:
        s.bind(key, txn.contents())
        IncrementalWriter(s.con, txn, s.resources, spill_dir=s.spill_dir).merge(key, select, ["id"])


@pytest.mark.parametrize("mode", ["merge-on-read", "copy-on-write"])
def test_a_delete_shows_the_rows_it_deleted_not_the_files(session: Session, mode: str) -> None:
    s = session
    s.sql(f"CREATE TABLE silver.sales AS {BASE}")
    if mode == "copy-on-write":
        with s.transaction("props") as txn:
            t = txn.load("silver.sales")
            with txn.lock, t.transaction() as tx:
                tx.set_properties({"write.delete.mode": "copy-on-write"})
            txn.record("silver.sales", "schema")
    before = _head(s)
    out = s.sql("DELETE FROM silver.sales WHERE id % 10 = 3 AND id < 46720").writes[0]
    assert out.rows == 4672
    d = _one(diff_refs(s.store, s.warehouse, before, s.branch))
    assert (d.rows_added, d.rows_removed, d.net_rows, d.rows_exact, d.method) == (0, 4672, -4672, True, "summary")
    back = _one(diff_refs(s.store, s.warehouse, s.branch, before))
    assert (back.rows_added, back.rows_removed, back.net_rows) == (4672, 0, 4672)

    result = CliRunner().invoke(cli, ["--home", str(s.settings.home), "-w", str(s.workspace.root), "branch", "diff", before, s.branch], obj={})
    assert result.exit_code == 0, result.output
    [row] = [line.split() for line in result.output.splitlines() if line.startswith("silver.sales")]
    assert row == ["silver.sales", "changed", "+0", "\u22124,672", "-", "\u22124,672", "-"]


def test_a_merge_counts_inserts_and_updates_by_its_key(session: Session) -> None:
    s = session
    s.sql(f"CREATE TABLE silver.sales AS {BASE}")
    before = _head(s)
    # 1,000 new keys and 300 updated ones (100 of them with identical values: not an update)
    _merge(s, "silver.sales", "SELECT i AS id, 'n' || i AS name, i % 10 AS grp, CAST(i AS DOUBLE) + (CASE WHEN i < 100 THEN 0 ELSE 1 END) AS amount "
                              "FROM range(0, 300) t(i) UNION ALL SELECT i, 'x', 0, 0 FROM range(100000, 101000) t(i)")
    d = _one(diff_refs(s.store, s.warehouse, before, s.branch))
    assert (d.method, d.rows_exact, d.net_rows) == ("files", False, 1000)  # an overwrite: no exact counts from metadata
    exact = _one(diff_refs(s.store, s.warehouse, before, s.branch, rows=True, con=s.con))
    assert (exact.rows_added, exact.rows_removed, exact.rows_updated, exact.net_rows) == (1000, 0, 200, 1000)
    assert (exact.method, exact.key, exact.rows_exact) == ("key", ["id"], True)
    back = _one(diff_refs(s.store, s.warehouse, s.branch, before, rows=True, con=s.con))
    assert (back.rows_added, back.rows_removed, back.rows_updated) == (0, 1000, 200)

    sampled = _one(diff_refs(s.store, s.warehouse, before, s.branch, sample=3, rows=True, con=s.con))
    kinds = [item["change"] for item in sampled.sample]
    assert kinds.count("added") == 3 and kinds.count("updated") == 3 and "deleted" not in kinds
    update = next(item for item in sampled.sample if item["change"] == "updated")
    assert update["columns"] == ["amount"] and update["row"]["amount"] == update["before"]["amount"] + 1
    assert 100 <= update["row"]["id"] < 300

    # After compaction nothing changed at all, exactly (a replace snapshot).
    merged = _head(s)
    optimize(s)
    d = _one(diff_refs(s.store, s.warehouse, merged, s.branch))
    assert (d.rows_added, d.rows_removed, d.rows_exact, d.method) == (0, 0, True, "summary")
    computed = _one(diff_refs(s.store, s.warehouse, merged, s.branch, rows=True, con=s.con))
    assert (computed.rows_added, computed.rows_removed, computed.rows_updated) == (0, 0, 0)


def test_diverged_branches_and_tables_without_a_key(session: Session) -> None:
    s = session
    s.sql(f"CREATE TABLE silver.sales AS {BASE}")
    s.store.create_reference("dev", "branch", s.branch)
    s.sql("UPDATE silver.sales SET name = 'changed' WHERE id < 25", ref="dev")
    s.sql("DELETE FROM silver.sales WHERE id BETWEEN 100 AND 109", ref="dev")
    s.sql("INSERT INTO silver.sales SELECT i, 'main', 0, 0 FROM range(900000, 900007) t(i)")  # main moves on too
    d = _one(diff_refs(s.store, s.warehouse, s.branch, "dev", rows=True, con=s.con))
    # No unique key on a table written by SQL only: rows compare whole, an update is one deleted + one added.
    assert (d.method, d.key) == ("rows", [])
    assert (d.rows_added, d.rows_removed, d.net_rows) == (25, 25 + 10 + 7, -17)
    keyed = _one(diff_refs(s.store, s.warehouse, s.branch, "dev", rows=True, con=s.con, keys={"silver.sales": ["id"]}))
    assert (keyed.rows_added, keyed.rows_removed, keyed.rows_updated) == (0, 17, 25)


def test_schema_changes_and_rows_on_an_evolved_table(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    with Session(settings, workspace) as s:
        s.sql("CREATE TABLE silver.t AS SELECT i AS id, 'a' AS v FROM range(100) t(i)")
        before = _head(s)
        _merge(s, "silver.t", "SELECT i AS id, 'b' AS v, i * 2 AS extra FROM range(90, 110) t(i)")
        d = _one(diff_refs(s.store, s.warehouse, before, s.branch, rows=True, con=s.con))
        assert [(c.name, c.change) for c in d.schema_changes] == [("extra", "added")]
        assert (d.rows_added, d.rows_updated, d.rows_removed) == (10, 10, 0)

"""sqlite_store: every store migrates forward by `PRAGMA user_version`, and its errors name the file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ratatouille_nb import sqlite_store
from ratatouille_nb.catalog.local import MIGRATIONS as CATALOG_MIGRATIONS
from ratatouille_nb.catalog.local import ROOT_HASH, LocalVersionStore
from ratatouille_nb.errors import StoreBusyError, StoreCorruptError, StoreError, StoreVersionError
from ratatouille_nb.pipeline.runs import MIGRATIONS as RUNS_MIGRATIONS
from ratatouille_nb.pipeline.runs import RunHistory, RunRecord
from ratatouille_nb.products.registry import MIGRATIONS as PRODUCT_MIGRATIONS
from ratatouille_nb.products.registry import SqliteProductRegistry
from ratatouille_nb.sqlite_store import integrity_problems, open_sqlite, schema_version


def _version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def test_migrations_run_once_in_order_and_only_the_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    calls: list[int] = []

    def step2(conn: sqlite3.Connection) -> None:
        calls.append(2)
        conn.execute("INSERT INTO t VALUES ('from step 2')")

    conn = open_sqlite(path, ["CREATE TABLE t (v TEXT)"])
    assert schema_version(conn) == 1
    conn.execute("INSERT INTO t VALUES ('kept')")
    conn.close()
    conn = open_sqlite(path, ["CREATE TABLE t (v TEXT)", step2])
    conn.close()
    conn = open_sqlite(path, ["CREATE TABLE t (v TEXT)", step2])  # already at 2: nothing runs
    assert calls == [2] and schema_version(conn) == 2
    assert conn.execute("SELECT v FROM t ORDER BY v").fetchall() == [("from step 2",), ("kept",)]
    conn.close()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_sqlite(path, ["CREATE TABLE t (v TEXT)"]).close()
    with pytest.raises(StoreError):  # the step's SQL names a missing table
        open_sqlite(path, ["CREATE TABLE t (v TEXT)", "CREATE TABLE u (x); INSERT INTO nowhere VALUES (1)"])
    conn = open_sqlite(path, ["CREATE TABLE t (v TEXT)"])
    assert schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'u'").fetchone() is None
    conn.close()


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    RunHistory(tmp_path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {len(RUNS_MIGRATIONS) + 1}")
    con.close()
    with pytest.raises(StoreVersionError) as err:
        RunHistory(tmp_path)
    assert str(err.value) == (
        f"{path} has schema version {len(RUNS_MIGRATIONS) + 1}; this Ratatouille knows up to {len(RUNS_MIGRATIONS)}\n"
        "  hint: upgrade ratatouille_nb (`pip install -U ratatouille_nb`): a newer version wrote this file"
    )


def test_a_catalog_from_before_versioning_migrates_forward_with_its_commits(tmp_path: Path) -> None:
    """catalog.db as the previous release wrote it: the same tables, user_version 0, no `meta`."""
    path = tmp_path / "catalog.db"
    con = sqlite3.connect(path)
    con.executescript(str(CATALOG_MIGRATIONS[0]))
    con.execute("INSERT INTO commits VALUES (?, '[]', '', 'root', 0, '{}', '{}')", (ROOT_HASH,))
    con.execute("INSERT INTO commits VALUES ('ab' || substr(?, 3), ?, 'me', 'old', 100, '{}', '{}')", (ROOT_HASH, f'["{ROOT_HASH}"]'))
    con.execute("INSERT INTO refs VALUES ('main', 'branch', 'ab' || substr(?, 3), 0)", (ROOT_HASH,))
    con.commit()
    con.close()
    assert _version(path) == 0

    store = LocalVersionStore(path)
    try:
        assert _version(path) == len(CATALOG_MIGRATIONS) == 2
        assert store.resolve("main").message == "old"
        assert store.created_at == 0.0  # it held commits before: its birth is unknown, so gc does not guess
        assert not store.is_empty()
    finally:
        store.close()


def test_a_new_catalog_knows_when_it_was_born(tmp_path: Path) -> None:
    import time

    before = time.time()
    store = LocalVersionStore(tmp_path / "catalog.db")
    try:
        assert before <= store.created_at <= time.time() and store.is_empty()
    finally:
        store.close()


def test_registry_and_runs_from_before_versioning_migrate_forward(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "registry.db")
    for statement in str(PRODUCT_MIGRATIONS[0]).split(";"):
        con.execute(statement)
    con.execute("INSERT INTO products (id, name, version, owner_workspace) VALUES ('1', 'p', '1.0.0', 'w')")
    con.commit()
    con.close()
    registry = SqliteProductRegistry(tmp_path)
    try:
        assert [r.version for r in registry.releases("p")] == ["1.0.0"]
        assert _version(tmp_path / "registry.db") == len(PRODUCT_MIGRATIONS)
    finally:
        registry.close()

    con = sqlite3.connect(tmp_path / "runs.db")
    con.executescript(str(RUNS_MIGRATIONS[0]))
    con.close()
    history = RunHistory(tmp_path)
    try:
        history.save(RunRecord("w", "main", "run", []))
        assert len(history.rows("runs")[1]) == 1
        assert _version(tmp_path / "runs.db") == len(RUNS_MIGRATIONS)
    finally:
        history.close()


def test_a_store_locked_too_long_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "runs.db"
    RunHistory(tmp_path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        history = RunHistory(tmp_path)
        with pytest.raises(StoreBusyError) as err:
            history.save(RunRecord("w", "main", "run", []))
        history.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(err.value) == (
        f"{path} stayed locked by another process for 0.2s\n"
        "  hint: wait for the other `rat` process (a long run or a stuck kernel) to finish, then retry"
    )


def test_garbage_file_is_named_and_integrity_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(StoreCorruptError) as err:
        LocalVersionStore(path)
    assert str(err.value).splitlines()[0] == f"{path} is damaged: file is not a database"
    assert integrity_problems(path) == ["file is not a database"]
    good = tmp_path / "good.db"
    open_sqlite(good, ["CREATE TABLE t (v)"]).close()
    assert integrity_problems(good) == []


def test_constraint_errors_pass_through_for_the_store_to_handle(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "s.db", ["CREATE TABLE t (v TEXT PRIMARY KEY)"])
    conn.execute("INSERT INTO t VALUES ('a')")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO t VALUES ('a')")
    conn.close()


def test_two_processes_opening_an_old_file_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_sqlite(path, ["CREATE TABLE t (v TEXT)"]).close()
    errors: list[BaseException] = []

    def open_new() -> None:
        try:
            open_sqlite(path, ["CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES ('once')"]).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_new) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)
    con.close()

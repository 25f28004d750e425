"""Four OS processes commit to ONE branch at once: nothing lost, nothing invented, only clean conflicts.

Each process (spawned, so it has its own DuckDB, pyiceberg and SQLite connections) runs 25
statements, each its own commit: appends to a shared table, writes to its own table, and deletes
on the shared table. It reports, per statement, the commit hash it got or the error class. The
test then replays the landed statements in branch-log order on a Python model and compares the
model with what the tables hold.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from ratatouille_nb.catalog.local import ROOT_HASH
from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

WRITERS = 4
COMMITS_EACH = 25
SEED = 20240611

Row = tuple[int, int, int]  # (writer, seq, k): unique per inserted row


def _plan(writer: int) -> list[tuple]:
    """The statements one writer runs, as data the test can replay: deterministic per writer."""
    rng = random.Random(SEED * 31 + writer)
    ops: list[tuple] = [("own_replace", rng.randint(1, 4))]
    for _seq in range(1, COMMITS_EACH):
        roll = rng.random()
        if roll < 0.45:
            ops.append(("shared_insert", rng.randint(1, 5)))
        elif roll < 0.60:
            ops.append(("own_insert", rng.randint(1, 4)))
        elif roll < 0.75:
            ops.append(("own_replace", rng.randint(1, 4)))
        else:
            ops.append(("shared_delete", rng.randrange(WRITERS), rng.randrange(3)))
    return ops


def _sql(writer: int, seq: int, op: tuple) -> str:
    kind = op[0]
    if kind == "shared_insert":
        return f"INSERT INTO silver.shared SELECT {writer}, {seq}, i FROM range({op[1]}) t(i)"
    if kind == "own_insert":
        return f"INSERT INTO silver.p{writer} SELECT {writer}, {seq}, i FROM range({op[1]}) t(i)"
    if kind == "own_replace":
        return f"CREATE OR REPLACE TABLE silver.p{writer} AS SELECT {writer} AS w, {seq} AS seq, i AS k FROM range({op[1]}) t(i)"
    if kind == "shared_delete":
        return f"DELETE FROM silver.shared WHERE w = {op[1]} AND seq % 3 = {op[2]}"
    raise AssertionError(kind)


def _rows(writer: int, seq: int, n: int) -> set[Row]:
    return {(writer, seq, k) for k in range(n)}


def _worker(home: str, workspace_root: str, writer: int, barrier: Any, out: Any) -> None:
    """Runs in a spawned process: one session, 25 commits, a report per attempt."""
    from ratatouille_nb.errors import RatError

    report: list[dict[str, Any]] = []
    try:
        with Session(Settings.from_env(home=home), Workspace.load(Path(workspace_root))) as session:
            session.sql("SELECT 1")  # warm DuckDB up before the race starts
            barrier.wait(timeout=600)
            for seq, op in enumerate(_plan(writer)):
                item: dict[str, Any] = {"writer": writer, "seq": seq, "op": op, "hash": None, "error": None}
                try:
                    result = session.sql(_sql(writer, seq, op))
                    item["hash"] = result.commit.hash if result.commit is not None else None
                    item["rows"] = result.writes[0].rows
                except RatError as exc:
                    item["error"] = type(exc).__name__
                    item["message"] = str(exc)
                except Exception as exc:
                    item["error"] = f"unexpected {type(exc).__name__}"
                    item["message"] = traceback.format_exc()
                report.append(item)
    except BaseException:
        report.append({"writer": writer, "fatal": traceback.format_exc()})
    out.put(report)


@pytest.mark.slow
def test_four_processes_on_one_branch(settings: Settings, workspace: Workspace) -> None:
    with Session(settings, workspace) as session:
        session.sql("CREATE TABLE silver.shared (w INTEGER, seq INTEGER, k INTEGER)")
        session.sql("INSERT INTO silver.shared SELECT -1, 0, i FROM range(3) t(i)")
        setup_commits = len(session.store.log(session.branch))
    assert setup_commits == 2

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(settings.home), str(workspace.root), n, barrier, out), daemon=True)
        for n in range(WRITERS)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    reports: list[dict[str, Any]] = []
    received = 0
    deadline = time.monotonic() + 900  # generous: a crowded CI machine is slow, not wrong
    try:
        while received < WRITERS and time.monotonic() < deadline:
            try:
                reports.extend(out.get(timeout=1))
                received += 1
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and out.empty():
                    break  # a worker died without reporting: the asserts below say so
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    elapsed = time.monotonic() - started
    assert received == WRITERS, f"only {received} of {WRITERS} workers reported (exit codes {[p.exitcode for p in procs]})"
    assert not [r["fatal"] for r in reports if "fatal" in r]
    assert len(reports) == WRITERS * COMMITS_EACH and all(p.exitcode == 0 for p in procs)

    # Every failure is a clean conflict, and only on a non-commuting write: appends rebase.
    failures = [r for r in reports if r["error"] is not None]
    assert all(r["error"] == "CommitConflictError" for r in failures), [(r["error"], r["message"]) for r in failures]
    assert all(r["op"][0] == "shared_delete" for r in failures), failures

    with Session(settings, workspace) as session:
        store = session.store
        log = store.log(session.branch)
        # The whole history, through every parent (there are no merges: it is one line).
        assert all(len(c.parents) == 1 for c in log) and log[-1].parents == (ROOT_HASH,)
        log_hashes = [c.hash for c in log]
        landed = {r["hash"]: r for r in reports if r["hash"] is not None}
        assert len(landed) == sum(1 for r in reports if r["hash"] is not None)  # no two share a commit
        assert set(landed) <= set(log_hashes)
        assert len(log) == len(landed) + setup_commits
        assert not set(log_hashes[len(landed) :]) & set(landed)  # the setup commits stay the oldest
        # Statements that returned without a commit changed nothing (a delete matching no row).
        for r in reports:
            if r["error"] is None and r["hash"] is None:
                assert r["op"][0] == "shared_delete" and r["rows"] == 0, r

        # Replay the landed statements in commit order on a model of the tables.
        shared: set[Row] = {(-1, 0, k) for k in range(3)}
        own: dict[int, set[Row]] = {}
        for commit in reversed(log[: len(landed)]):
            r = landed[commit.hash]
            w, seq, op = r["writer"], r["seq"], tuple(r["op"])
            if op[0] == "shared_insert":
                shared |= _rows(w, seq, op[1])
            elif op[0] == "own_insert":
                own[w] |= _rows(w, seq, op[1])
            elif op[0] == "own_replace":
                own[w] = _rows(w, seq, op[1])
            else:
                gone = {row for row in shared if row[0] == op[1] and row[1] % 3 == op[2]}
                assert r["rows"] == len(gone), (r, gone)
                shared -= gone

        got = set(session.sql("SELECT w, seq, k FROM silver.shared").relation.fetchall())
        assert session.sql("SELECT count(*) FROM silver.shared").relation.fetchone()[0] == len(got)
        assert got == shared
        for w in range(WRITERS):
            rows = session.sql(f"SELECT w, seq, k FROM silver.p{w}").relation.fetchall()
            assert len(rows) == len(set(rows)) and set(rows) == own[w], w

        # Each writer's landed appends are all there (no lost update), whatever raced with them.
        for r in reports:
            if r["hash"] and r["op"][0] == "shared_insert":
                later_deletes = [
                    x for x in reports if x["hash"] and x["op"][0] == "shared_delete"
                    and x["op"][1] == r["writer"] and r["seq"] % 3 == x["op"][2]
                    and log_hashes.index(x["hash"]) < log_hashes.index(r["hash"])
                ]
                if not later_deletes:
                    assert _rows(r["writer"], r["seq"], r["op"][1]) <= got
    print(f"\n{WRITERS}x{COMMITS_EACH} statements in {elapsed:.1f}s: {len(landed)} commits, {len(failures)} conflicts")

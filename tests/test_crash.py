"""Crash safety: SIGKILL a committing writer at random points; the store and the table stay whole.

A writer process loops `INSERT INTO bronze.crash SELECT <seq>, i FROM range(<n>)`, one commit per
statement, printing `committed <seq> <hash>` (flushed) after each. It is killed with SIGKILL at a
random moment (in DuckDB's COPY, in pyiceberg's metadata writes, inside the SQLite commit, or
between them) 15 times, each time a fresh process on the same RAT_HOME. After every kill the test
reopens everything and checks that the branch is exactly the commits in its log, and that every
commit the writer reported is among them. At the end `collect_garbage` removes what the killed
writers left behind and every commit still reads.

Each writer is forked from one helper subprocess that has already imported DuckDB, pyarrow and
pyiceberg (and opened nothing), so a run costs a fork instead of seconds of imports.
"""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ratatouille_nb.catalog.gc import collect_garbage
from ratatouille_nb.catalog.local import LocalVersionStore
from ratatouille_nb.catalog.models import Commit
from ratatouille_nb.engine.session import Session, warehouse_for
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

KILLS = 15
SEED = 7

# The helper: imports everything, then per `fork <first>` line forks a writer and reports its exit.
HELPER = textwrap.dedent(
    """
    import faulthandler
    import os
    import sys
    import traceback
    from pathlib import Path

    import duckdb  # noqa: F401
    import pyiceberg.io.pyarrow  # noqa: F401
    import ratatouille_nb.catalog.local  # noqa: F401
    import ratatouille_nb.catalog.transaction  # noqa: F401
    import ratatouille_nb.engine.writer  # noqa: F401
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace import Workspace

    home, root = sys.argv[1], sys.argv[2]


    def say(line):
        # One write(2) per line: print() makes two under PYTHONUNBUFFERED, and a kill between
        # them would glue the helper's next line onto a half-written one.
        os.write(1, (line + "\\n").encode())


    def write_forever(first):
        with Session(Settings.from_env(home=home), Workspace.load(Path(root))) as session:
            session.sql("SELECT count(*) FROM bronze.crash")  # DuckDB and its iceberg extension
            session.warehouse.file_io()
            say(f"ready {os.getpid()}")
            seq = first
            while True:
                rows = 1 + (seq * 7919) % 3000
                result = session.sql(f"INSERT INTO bronze.crash SELECT {seq}, i FROM range({rows}) t(i)")
                say(f"committed {seq} {result.commit.hash}")
                seq += 1


    say("helper ready")
    while True:
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            break
        first = int(line.split()[1])
        pid = os.fork()
        if pid == 0:
            faulthandler.enable()
            try:
                write_forever(first)
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
            os._exit(1)
        _pid, status = os.waitpid(pid, 0)
        say(f"exited {pid} {status}")
    """
)

INSERT_RE = re.compile(r"^INSERT INTO bronze\.crash SELECT (-?\d+), i FROM range\((\d+)\) t\(i\)$")


def _rows_of(commit: Commit) -> tuple[int, int] | None:
    """(seq, rows) a commit inserted, read back from its message (the statement)."""
    match = INSERT_RE.match(commit.message)
    return (int(match.group(1)), int(match.group(2))) if match else None


class _Helper:
    """The forking helper subprocess and the lines it and its writers print."""

    def __init__(self, script: Path, settings: Settings, workspace: Workspace, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        with stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), str(settings.home), str(workspace.root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("helper ready")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def next_line(self, timeout: float = 90) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            ps = subprocess.run(["ps", "-eo", "pid,ppid,stat,wchan:24,etime,args"], capture_output=True, text=True).stdout
            mine = "\n".join(ln for ln in ps.splitlines() if str(self.proc.pid) in ln)
            raise AssertionError(f"helper silent for {timeout}s; processes:\n{mine}\nstderr: {self.stderr()}") from None
        assert line != "<eof>", f"helper died; stderr: {self.stderr()}"
        return line

    def expect(self, prefix: str) -> str:
        line = self.next_line()
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}; stderr: {self.stderr()}"
        return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-3000:]

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _run_and_kill(helper: _Helper, first: int, wait_commit: bool, delay: float) -> list[str]:
    """Fork a writer, SIGKILL it `delay` s after it is ready (or after its first commit).

    Returns the writer's `committed …` lines; fails if it ended any other way than by our kill.
    """
    helper.send(f"fork {first}")
    pid = int(helper.expect("ready ").split()[1])
    lines: list[str] = []
    exited = f"exited {pid} "
    status: int | None = None
    try:
        if wait_commit:
            while not (line := helper.next_line()).startswith(("committed ", exited)):
                lines.append(line)
            if line.startswith(exited):
                status = int(line.split()[2])
            else:
                lines.append(line)
        deadline = time.monotonic() + delay
        while status is None and (left := deadline - time.monotonic()) > 0:
            try:
                line = helper.lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith(exited):
                status = int(line.split()[2])
            else:
                lines.append(line)
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
    while status is None:
        line = helper.next_line()
        if line.startswith(exited):
            status = int(line.split()[2])
        else:
            lines.append(line)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"writer {first // 1000} ended by itself (wait status {status}) after {lines[-3:]}: {helper.stderr()}"
    )
    return lines


def _check_consistent(
    settings: Settings, workspace: Workspace, reader: Session, printed: set[str]
) -> tuple[int, list[Commit]]:
    """Everything a reader sees after the kill agrees (store opened afresh); returns (rows, branch log)."""
    con = sqlite3.connect(settings.catalog_db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    store = LocalVersionStore(settings.catalog_db)
    try:
        head = store.resolve(workspace.branch)
        log = store.log(workspace.branch)
    finally:
        store.close()
    assert log and log[0].hash == head.hash
    assert printed <= {c.hash for c in log}, "a commit the writer reported is missing"
    expected: dict[int, int] = {}
    for commit in log:
        seq_rows = _rows_of(commit)
        if seq_rows is not None:
            assert seq_rows[0] not in expected, "one statement landed twice"
            expected[seq_rows[0]] = seq_rows[1]
    got = dict(reader.sql("SELECT seq, count(*) FROM bronze.crash GROUP BY seq").relation.fetchall())
    total = reader.sql("SELECT count(*) FROM bronze.crash").relation.fetchone()[0]
    assert got == expected
    assert total == sum(expected.values())
    return total, log


@pytest.mark.slow
def test_sigkill_during_commits_never_corrupts(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    script = tmp_path / "helper.py"
    script.write_text(HELPER)
    printed: set[str] = set()
    started = time.monotonic()
    with Session(settings, workspace) as reader:
        reader.sql("CREATE TABLE bronze.crash (seq INTEGER, i INTEGER)")
        reader.sql("INSERT INTO bronze.crash SELECT -1, i FROM range(5) t(i)")  # a snapshot to read
        helper = _Helper(script, settings, workspace, tmp_path / "helper.err")
        try:
            for run in range(KILLS):
                # Odd runs count the delay from the first commit, so a slow machine still kills mid-stream.
                lines = _run_and_kill(helper, run * 1000, wait_commit=bool(run % 2), delay=rng.uniform(0.05, 1.5))
                for line in lines:
                    assert line.startswith("committed "), line
                    _word, seq, hash_ = line.split()
                    assert int(seq) // 1000 == run
                    printed.add(hash_)
                _check_consistent(settings, workspace, reader, printed)
        finally:
            helper.close()
        total, log = _check_consistent(settings, workspace, reader, printed)
    assert len(log) >= 2 + KILLS // 2  # writers did commit before their kill (not all killed idle)

    store = LocalVersionStore(settings.catalog_db)
    try:
        report = collect_garbage(store, warehouse_for(settings), older_than_seconds=0, pinned=())
    finally:
        store.close()
    assert report.files_deleted > 0  # the killed writers' files
    assert report.too_recent == () and report.files_kept == report.live_files
    with Session(settings, workspace) as fresh:
        assert _check_consistent(settings, workspace, fresh, printed) == (total, log)
        # Time travel to every commit still reads exactly the rows committed up to it.
        running = 0
        for commit in reversed(log):
            seq_rows = _rows_of(commit)
            running += seq_rows[1] if seq_rows else 0
            rel = fresh.sql("SELECT count(*), sum(hash(t)) FROM bronze.crash AS t", ref=commit.hash).relation
            assert rel.fetchone()[0] == running
    print(
        f"\n{KILLS} kills, {len(log) - 2} writer commits ({len(printed)} reported), "
        f"{report.files_deleted} orphan files collected, {time.monotonic() - started:.1f}s"
    )

"""SIGKILL during merge-on-read merges and compactions: the branch is exactly its committed history.

A writer process loops: merge batch `n` into `silver.k` (20 existing keys updated to `v = n`, one
new key), and compact the table every third merge, printing each commit it lands. It is killed
with SIGKILL at a random moment (while DuckDB writes data or delete files, while pyiceberg writes
manifests, inside the SQLite commit, or between them), a fresh process each time. After every
kill the test rebuilds the expected table from the merges the branch log holds and compares it
with what DuckDB and pyiceberg read; at the end gc removes what the killed writers left behind.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ratatouille_nb.catalog.gc import collect_garbage
from ratatouille_nb.catalog.local import LocalVersionStore
from ratatouille_nb.engine.session import Session, warehouse_for
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

KILLS = 8
SEED = 11
BASE = 1000

WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from ratatouille_nb.engine.incremental import IncrementalWriter
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.maintenance.optimize import optimize
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace import Workspace

    home, root, first = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def say(line):
        os.write(1, (line + "\\n").encode())

    def batch(n):
        keys = ", ".join(f"({(n * 37 + j * 50) % 1000}, {n})" for j in range(20))
        return f"SELECT * FROM (VALUES {keys}, ({10000 + n}, {n})) AS t(id, v)"

    with Session(Settings.from_env(home=home), Workspace.load(Path(root))) as s:
        s.sql("SELECT count(*) FROM silver.k")
        say("ready")
        n = first
        while True:
            with s.transaction(f"merge {n}") as txn:
                s.bind("silver.k", txn.contents())
                IncrementalWriter(s.con, txn, s.resources, spill_dir=s.spill_dir).merge("silver.k", batch(n), ["id"])
            say(f"committed {txn.result.hash}")
            if n % 3 == 2:
                report = optimize(s, ["silver.k"])
                if report.commit_hash:
                    say(f"committed {report.commit_hash}")
            n += 1
    """
)
MERGE_RE = re.compile(r"^merge (\d+)$")


def _expected(log: list) -> dict[int, int]:
    rows = {i: 0 for i in range(BASE)}
    for commit in reversed(log):
        m = MERGE_RE.match(commit.message)
        if m:
            n = int(m.group(1))
            rows.update({(n * 37 + j * 50) % 1000: n for j in range(20)})
            rows[10000 + n] = n
    return rows


def _check(settings: Settings, workspace: Workspace, printed: set[str]) -> int:
    con = sqlite3.connect(settings.catalog_db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    with Session(settings, workspace) as s:
        log = s.store.log(s.branch)
        assert printed <= {c.hash for c in log}, "a commit the writer reported is missing"
        merges = [int(m.group(1)) for c in log if (m := MERGE_RE.match(c.message))]
        assert len(merges) == len(set(merges)), "one merge landed twice"
        want = sorted(_expected(log).items())
        assert sorted(s.sql("SELECT id, v FROM silver.k").relation.fetchall()) == want
        data = s.transaction("read").load("silver.k").scan().to_arrow()
        assert sorted(zip(data["id"].to_pylist(), data["v"].to_pylist(), strict=True)) == want
        stats = s.table_stats("silver.k")
        assert stats["rows"] == len(want)
        return len(merges)


@pytest.mark.slow
def test_sigkill_during_merges_and_compactions_leaves_the_branch_whole(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    with Session(settings, workspace) as s:
        s.sql(f"CREATE TABLE silver.k AS SELECT i AS id, 0 AS v FROM range({BASE}) t(i)")
    printed: set[str] = set()
    landed = 0
    for run in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(settings.home), str(workspace.root), str(run * 1000)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "ready", (line, proc.stderr.read() if proc.stderr else "")
        time.sleep(rng.uniform(0.05, 2.5))
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        printed |= {ln.split()[1] for ln in out.splitlines() if ln.startswith("committed ")}
        landed = _check(settings, workspace, printed)
    assert landed >= KILLS // 2  # writers did land merges before their kill

    store = LocalVersionStore(settings.catalog_db)
    try:
        report = collect_garbage(store, warehouse_for(settings), older_than_seconds=0, pinned=())
    finally:
        store.close()
    assert report.too_recent == () and report.files_kept == report.live_files
    assert _check(settings, workspace, printed) == landed

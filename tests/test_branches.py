"""Branches through the real `rat` CLI: zero-copy branches, diff, merge, conflicts, time travel,
tags, protected branches, and one-line errors that change nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ratatouille_nb.catalog.local import LocalVersionStore
from ratatouille_nb.cli.main import cli
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import init_workspace

WS = "workspace/acme"  # the workspace branch of a workspace named acme
SALES = "CREATE TABLE silver.sales AS SELECT i AS id, 'c' || (i % 7) AS customer, i * 1.5 AS amount FROM range(1000) t(i)"
HEX12 = re.compile(r"^[0-9a-f]{12}\b")


class Rat:
    """`rat --home H --workspace W …` through click's CliRunner, plus a look at the version store."""

    def __init__(self, home: Path, workspace: Path) -> None:
        self.home = home
        self.workspace = workspace
        self.runner = CliRunner()

    def run(self, *args: str, code: int = 0) -> Result:
        argv = ["--home", str(self.home), "--workspace", str(self.workspace), *args]
        result = self.runner.invoke(cli, argv, obj={}, catch_exceptions=False)
        assert result.exit_code == code, f"rat {' '.join(args)} -> exit {result.exit_code}\n{result.output}"
        return result

    def ok(self, *args: str) -> str:
        return self.run(*args).stdout

    def fail(self, *args: str) -> str:
        """Run a command that must fail: exit 1, one `error:` line (plus indented hints), nothing else."""
        result = self.run(*args, code=1)
        lines = result.stderr.splitlines()
        assert lines and lines[0].startswith("error: "), result.output
        assert all(line.startswith("  ") for line in lines[1:]), result.output
        assert "Traceback" not in result.output
        assert result.stdout == "", result.output
        return lines[0]

    def count(self, ref: str | None = None, table: str = "silver.sales") -> int:
        branch = ["--branch", ref] if ref else []
        rows = json.loads(self.ok("sql", *branch, "--format", "json", f"SELECT count(*) AS n FROM {table}"))
        return rows[0]["n"]

    @contextmanager
    def store(self) -> Iterator[LocalVersionStore]:
        store = LocalVersionStore(self.home / "catalog.db")
        try:
            yield store
        finally:
            store.close()

    def head(self, name: str) -> str:
        with self.store() as s:
            return s.get_reference(name).hash

    def snapshot(self) -> tuple[list[tuple], list[str], list[str]]:
        """Every ref, every commit and every file in the warehouse."""
        with self.store() as s:
            refs = [(r.name, r.kind, r.hash, r.protected) for r in s.list_references()]
            commits = sorted(c.hash for c in s.all_commits())
        warehouse = self.home / "warehouse"
        files = sorted(str(p.relative_to(warehouse)) for p in warehouse.rglob("*") if p.is_file()) if warehouse.exists() else []
        return refs, commits, files


def make_rat(tmp: Path, name: str = "acme") -> Rat:
    home = tmp / "home"
    ws = init_workspace(tmp / name, Settings.from_env(home=str(home)), name=name)
    return Rat(home, ws.root)


@pytest.fixture
def rat(tmp_path: Path) -> Rat:
    return make_rat(tmp_path)


def _log_hashes(out: str) -> list[str]:
    return [line[:12] for line in out.splitlines() if HEX12.match(line)]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


# -- the branch scenario ----------------------------------------------------------------------


@pytest.mark.slow
def test_branch_scenario(rat: Rat) -> None:
    out = rat.ok("sql", SALES)
    first = rat.head(WS)
    assert "silver.sales: create (1,000 rows)" in out and f"committed {first[:12]} on {WS}" in out

    # a zero-copy branch, written on its own
    assert rat.ok("branch", "create", "dev") == f"created branch 'dev' at {first[:12]} (from {WS})\n"
    out = rat.ok("sql", "--branch", "dev", "INSERT INTO silver.sales SELECT i, 'new', 1.0 FROM range(1000, 1010) t(i)")
    second = rat.head("dev")
    assert "silver.sales: append (10 rows)" in out and f"committed {second[:12]} on dev" in out
    assert rat.head(WS) == first
    assert rat.count() == 1000 and rat.count(WS) == 1000 and rat.count("dev") == 1010
    csv = rat.ok("sql", "--branch", "dev", "--format", "csv", "SELECT count(*) AS n, max(id) AS top FROM silver.sales")
    assert csv.splitlines() == ['"n","top"', "1010,1009"]

    # diff, both ways and as JSON
    out = rat.ok("branch", "diff", WS, "dev")
    row = [line.split() for line in out.splitlines() if line.startswith("silver.sales")]
    assert row == [["silver.sales", "changed", "+10", "-0", "-"]]
    assert json.loads(rat.ok("branch", "diff", WS, "dev", "--format", "json")) == [
        {"table": "silver.sales", "status": "changed", "rows_added": 10, "rows_removed": 0, "schema_changes": []}
    ]
    back = json.loads(rat.ok("branch", "diff", "dev", WS, "--format", "json"))
    assert [(d["table"], d["rows_added"], d["rows_removed"]) for d in back] == [("silver.sales", 0, 10)]

    # merge into the workspace branch (the default target): a fast-forward
    out = rat.ok("branch", "merge", "dev")
    assert out.splitlines() == [f"merged 'dev' into '{WS}' (fast-forward) -> {second[:12]}", "  silver.sales"]
    assert rat.head(WS) == second and rat.count() == 1010
    assert rat.ok("branch", "diff", WS, "dev") == f"no differences between '{WS}' and 'dev'\n"
    assert rat.ok("branch", "merge", "dev") == f"'{WS}' already contains 'dev'\n"

    # log: newest first
    out = rat.ok("branch", "log")
    assert _log_hashes(out) == [second[:12], first[:12]]
    assert "append silver.sales" in out and "create silver.sales" in out
    assert _log_hashes(rat.ok("branch", "log", WS, "-n", "1")) == [second[:12]]
    assert _log_hashes(rat.ok("branch", "log", "dev")) == [second[:12], first[:12]]

    # time travel: @hash, a bare hash, a tag, @timestamp, ~N
    assert rat.count(f"{WS}@{first}") == 1000
    assert rat.count(f"{WS}@{first[:8]}") == 1000
    assert rat.count(first[:10]) == 1000
    assert rat.ok("tag", "create", "v1", "--from", first) == f"created tag 'v1' at {first[:12]}\n"
    assert rat.count("v1") == 1000
    assert rat.count(f"{WS}~1") == 1000 and rat.count(f"{WS}~0") == 1010
    with rat.store() as s:
        t1, t2 = s.get_commit(first).created_at, s.get_commit(second).created_at
    assert rat.count(f"{WS}@{_iso((t1 + t2) / 2)}") == 1000
    assert rat.count(f"{WS}@{_iso(t2 + 1)}") == 1010
    assert rat.count(f"{WS}@{_iso(t2 + 1)}~1") == 1000
    assert "does not exist" in rat.fail("sql", "--branch", f"{WS}@2000-01-01", "SELECT count(*) FROM silver.sales")

    # tags, hashes and time travel are read-only
    before = rat.snapshot()
    for ref in ("v1", f"{WS}@{first}", first, f"{WS}~1", f"{WS}@{_iso(t2 + 1)}"):
        msg = rat.fail("sql", "--branch", ref, "INSERT INTO silver.sales SELECT 1, 'x', 1.0")
        assert f"'{ref}' is not a branch head" in msg
    assert "not a branch head" in rat.fail("sql", "--branch", "v1", "CREATE TABLE gold.g AS SELECT 1 AS x")
    assert rat.snapshot() == before and rat.count("v1") == 1000

    # conflicting changes to one table on two branches: the merge fails and changes nothing
    rat.ok("branch", "create", "hotfix")
    rat.ok("sql", "--branch", "hotfix", "DELETE FROM silver.sales WHERE id < 10")
    rat.ok("sql", "INSERT INTO silver.sales SELECT i, 'late', 2.0 FROM range(2000, 2005) t(i)")
    assert rat.count("hotfix") == 1000 and rat.count() == 1015
    before = rat.snapshot()
    msg = rat.fail("branch", "merge", "hotfix")
    assert "silver.sales" in msg and f"cannot merge 'hotfix' into '{WS}'" in msg and "changed on both sides" in msg
    assert "silver.sales" in rat.fail("branch", "merge", WS, "--into", "hotfix")
    assert rat.snapshot() == before
    assert rat.count() == 1015 and rat.count("hotfix") == 1000

    # diverged, but on different tables: a merge commit with two parents and both changes
    rat.ok("branch", "create", "feature")
    rat.ok("sql", "--branch", "feature", "CREATE TABLE gold.kpis AS SELECT count(*) AS n, sum(amount) AS total FROM silver.sales")
    rat.ok("sql", "CREATE TABLE bronze.raw AS SELECT i AS x FROM range(3) t(i)")
    ws_before, feature_head = rat.head(WS), rat.head("feature")
    out = rat.ok("branch", "merge", "feature", "-m", "bring in the kpis")
    merged = rat.head(WS)
    assert out.splitlines() == [f"merged 'feature' into '{WS}' (merge) -> {merged[:12]}", "  gold.kpis"]
    with rat.store() as s:
        commit = s.get_commit(merged)
        assert commit.parents == (ws_before, feature_head)
        assert commit.message == "bring in the kpis" and commit.operations == {"gold.kpis": "merge"}
        assert set(commit.contents) == {"silver.sales", "gold.kpis", "bronze.raw"}
    assert rat.count() == 1015 and rat.count(table="bronze.raw") == 3
    assert json.loads(rat.ok("sql", "--format", "json", "SELECT n FROM gold.kpis")) == [{"n": 1015}]
    assert rat.count("feature", "gold.kpis") == 1
    assert "does not exist" in rat.fail("sql", "--branch", "feature", "SELECT * FROM bronze.raw")
    log = rat.ok("branch", "log")
    assert _log_hashes(log)[:2] == [merged[:12], ws_before[:12]]
    assert "(merge)  bring in the kpis" in log.splitlines()[0]
    # the workspace branch still conflicts with hotfix, and time travel still sees the start
    assert "silver.sales" in rat.fail("branch", "merge", "hotfix")
    assert rat.count("v1") == 1000 and rat.count(f"{WS}@{first}") == 1000

    # list: branches and tags, the current one marked
    rows = {line[3:].split()[0]: line for line in rat.ok("branch", "list").splitlines()[2:]}
    assert set(rows) == {"dev", "feature", "hotfix", "main", "v1", WS}
    assert rows[WS].startswith("*") and rows["v1"].split()[1] == "tag" and rows["dev"].split()[1] == "branch"
    assert rows["v1"].split()[2] == first[:12] and rows[WS].split()[3] == merged[:12]

    # deleting a branch keeps the commits reachable by hash
    assert rat.ok("branch", "delete", "dev") == "deleted branch 'dev'\n"
    assert rat.count(second) == 1010
    assert "unknown reference 'dev'" in rat.fail("sql", "--branch", "dev", "SELECT 1")


def test_protected_branch_accepts_only_merges(rat: Rat) -> None:
    assert rat.ok("branch", "protect", "main") == "branch 'main' is protected\n"
    assert "protected" in next(line for line in rat.ok("branch", "list").splitlines() if " main " in line)
    before = rat.snapshot()
    msg = rat.fail("sql", "--branch", "main", "CREATE TABLE silver.p AS SELECT i FROM range(100) t(i)")
    assert msg == "error: branch 'main' is protected: it only changes by merges"
    assert rat.snapshot() == before  # no commit and no stray data files

    # work on other branches, then merge: a fast-forward and a two-parent merge commit
    rat.ok("sql", SALES)
    assert rat.ok("branch", "merge", WS, "--into", "main").startswith(f"merged '{WS}' into 'main' (fast-forward)")
    rat.ok("branch", "create", "a")
    rat.ok("branch", "create", "b")
    rat.ok("sql", "--branch", "a", "CREATE TABLE gold.a AS SELECT 1 AS x")
    rat.ok("sql", "--branch", "b", "CREATE TABLE gold.b AS SELECT 2 AS x")
    rat.ok("branch", "merge", "a", "--into", "main")
    assert "(merge)" in rat.ok("branch", "merge", "b", "--into", "main")
    with rat.store() as s:
        assert len(s.get_commit(rat.head("main")).parents) == 2
    assert rat.count("main") == 1000
    assert rat.count("main", "gold.a") == 1 and rat.count("main", "gold.b") == 1
    assert "protected" in rat.fail("sql", "--branch", "main", "DELETE FROM silver.sales")
    assert rat.count("main") == 1000

    # unprotected again, direct writes work
    assert rat.ok("branch", "protect", "main", "--off") == "branch 'main' is no longer protected\n"
    rat.ok("sql", "--branch", "main", "DELETE FROM silver.sales WHERE id >= 500")
    assert rat.count("main") == 500


def test_workspace_style_branch_names(rat: Rat, tmp_path: Path) -> None:
    rat.ok("sql", SALES)
    name = "workspace/acme/dev/feature-x"
    rat.ok("branch", "create", name)
    rat.ok("sql", "--branch", name, "DELETE FROM silver.sales WHERE id % 2 = 0")
    assert rat.count(name) == 500 and rat.count(f"{name}~1") == 1000
    assert name in rat.ok("branch", "list")
    assert rat.ok("branch", "merge", name).startswith(f"merged '{name}' into '{WS}' (fast-forward)")
    assert rat.count() == 500
    rat.ok("tag", "create", "releases/2024.05", "--from", f"{WS}~1")
    assert rat.count("releases/2024.05") == 1000

    # a registered workspace cannot re-point its branch by editing workspace.yaml
    path = rat.workspace / "workspace.yaml"
    original = path.read_text()
    path.write_text(original.replace('nessie_branch: "workspace/acme"', 'nessie_branch: "workspace/acme/dev/feature-y"'))
    assert "registered with 'workspace/acme'" in rat.fail("sql", "SELECT 1")
    path.write_text(original)

    # a new workspace whose own branch is nested like that
    other = rat.workspace.parent / "nested"
    other.mkdir()
    (other / "workspace.yaml").write_text('name: nested\nisolation:\n  nessie_branch: "team/nested/dev/feature-y"\n')
    nested = Rat(rat.home, other)
    out = nested.ok("sql", "CREATE TABLE bronze.y AS SELECT 1 AS y")
    assert "committed" in out and "on team/nested/dev/feature-y" in out
    listing = nested.ok("branch", "list").splitlines()
    assert any(line.startswith("*") and "team/nested/dev/feature-y" in line for line in listing)
    # a new workspace branch starts from main, which has never had silver.sales merged into it
    assert nested.count(table="bronze.y") == 1
    assert "does not exist" in nested.fail("sql", "SELECT count(*) FROM silver.sales")
    # and it cannot read acme's branch
    assert "belongs to workspace 'acme'" in nested.fail("sql", "--branch", WS, "SELECT 1")
    assert rat.count(WS) == 500


# -- bad input: one line, exit 1, nothing changed ----------------------------------------------


@pytest.fixture(scope="module")
def bad_env(tmp_path_factory: pytest.TempPathFactory) -> Rat:
    rat = make_rat(tmp_path_factory.mktemp("bad"))
    rat.ok("sql", "CREATE TABLE silver.sales AS SELECT i AS id, 'c' AS customer, 1.0 AS amount FROM range(100) t(i)")
    rat.ok("sql", "INSERT INTO silver.sales SELECT 100, 'c', 1.0")
    rat.ok("branch", "create", "dev")
    rat.ok("tag", "create", "v0")
    return rat


BAD_INPUT = [
    (["sql", "--branch", "nope", "SELECT count(*) FROM silver.sales"], "unknown reference 'nope'"),
    (["sql", "--branch", "nope", "INSERT INTO silver.sales SELECT 1, 'x', 1.0"], "unknown reference 'nope'"),
    (["sql", "--branch", "{WS}@not-a-time", "SELECT 1"], "neither a commit hash nor a timestamp"),
    (["sql", "--branch", "{WS}~99", "SELECT 1"], "past the first commit"),
    (["sql", "--branch", "{WS}@ffffffffffff", "SELECT 1"], "no commit with hash"),
    (["sql", "--branch", "v0", "INSERT INTO silver.sales SELECT 1, 'x', 1.0"], "'v0' is not a branch head"),
    (["sql", "--branch", "{WS}~1", "DELETE FROM silver.sales"], "is not a branch head"),
    (["sql", "--branch", "{HEAD}", "DROP TABLE silver.sales"], "is not a branch head"),
    (["branch", "diff", "nope", "main"], "unknown reference 'nope'"),
    (["branch", "diff", "main", "nope"], "unknown reference 'nope'"),
    (["branch", "log", "nope"], "unknown reference 'nope'"),
    (["branch", "create", "bad..name"], "invalid reference name 'bad..name'"),
    (["branch", "create", "--", "-x"], "invalid reference name '-x'"),
    (["branch", "create", "a//b"], "invalid reference name 'a//b'"),
    (["branch", "create", "x.lock"], "invalid reference name 'x.lock'"),
    (["branch", "create", "with space"], "invalid reference name 'with space'"),
    (["branch", "create", "trailing/"], "invalid reference name 'trailing/'"),
    (["branch", "create", "a@{1}"], "invalid reference name"),
    (["branch", "create", "a" * 40], "invalid reference name"),
    (["tag", "create", "bad..name"], "invalid reference name 'bad..name'"),
    (["branch", "create", "dev"], "'dev' already exists"),
    (["branch", "create", "{WS}"], "'{WS}' already exists"),
    (["branch", "create", "v0"], "'v0' already exists"),
    (["tag", "create", "v0"], "'v0' already exists"),
    (["tag", "create", "dev"], "'dev' already exists"),
    (["branch", "create", "new", "--from", "nope"], "unknown reference 'nope'"),
    (["tag", "create", "v9", "--from", "{WS}~99"], "past the first commit"),
    (["branch", "delete", "{WS}"], "it is the current branch"),
    (["branch", "delete", "main"], "cannot delete the default branch 'main'"),
    (["branch", "delete", "nope"], "no branch or tag named 'nope'"),
    (["branch", "delete", "v0"], "'v0' is a tag"),
    (["tag", "delete", "dev"], "'dev' is a branch"),
    (["tag", "delete", "nope"], "no branch or tag named 'nope'"),
    (["branch", "merge", "dev", "--into", "dev"], "cannot merge 'dev' into itself"),
    (["branch", "merge", "{WS}"], "cannot merge '{WS}' into itself"),
    (["branch", "merge", "nope"], "unknown reference 'nope'"),
    (["branch", "merge", "dev", "--into", "nope"], "no branch or tag named 'nope'"),
    (["branch", "merge", "dev", "--into", "v0"], "'v0' is a tag"),
    (["branch", "protect", "nope"], "no branch named 'nope'"),
    (["branch", "protect", "v0"], "no branch named 'v0'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_changes_nothing(bad_env: Rat, args: list[str], message: str) -> None:
    head = bad_env.head(WS)
    args = [a.replace("{WS}", WS).replace("{HEAD}", head) for a in args]
    before = bad_env.snapshot()
    line = bad_env.fail(*args)
    assert message.replace("{WS}", WS) in line
    assert bad_env.snapshot() == before  # refs, commits and warehouse files


def test_options_that_look_like_names_are_refused(bad_env: Rat) -> None:
    before = bad_env.snapshot()
    result = bad_env.run("branch", "create", "-x", code=2)  # click: no such option
    assert re.search(r"No such option.*-x", result.output)
    assert bad_env.snapshot() == before


# -- the installed entry point ----------------------------------------------------------------


@pytest.mark.slow
def test_installed_rat_runs_the_branch_flow(tmp_path: Path) -> None:
    rat_bin = Path(sys.executable).with_name("rat")
    home, ws = tmp_path / "home", tmp_path / "acme"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "user")}

    def rat(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(rat_bin), "--home", str(home), "--workspace", str(ws), *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == code, done.stdout + done.stderr
        return done

    rat("init", str(ws), "--name", "acme")
    rat("sql", "CREATE TABLE silver.sales AS SELECT i AS id FROM range(1000) t(i)")
    rat("branch", "create", "dev")
    rat("sql", "--branch", "dev", "INSERT INTO silver.sales SELECT i FROM range(1000, 1010) t(i)")
    count = "SELECT count(*) AS n FROM silver.sales"
    assert rat("sql", "--format", "csv", count).stdout.splitlines() == ['"n"', "1000"]
    assert rat("sql", "--format", "csv", "--branch", "dev", count).stdout.splitlines() == ['"n"', "1010"]
    assert "+10" in rat("branch", "diff", WS, "dev").stdout
    assert "(fast-forward)" in rat("branch", "merge", "dev").stdout
    assert rat("sql", "--format", "csv", count).stdout.splitlines() == ['"n"', "1010"]
    bad = rat("branch", "merge", "dev", "--into", "dev", code=1)
    assert bad.stderr == "error: cannot merge 'dev' into itself\n" and bad.stdout == ""

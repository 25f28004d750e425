"""Two principals sharing one RAT_HOME: every attack on the other workspace's refs is refused, changes
nothing, and says who needs which role; every legitimate path keeps working.

alice creates RAT_HOME (she is its administrator) and workspace `a`; bob creates workspace `b`.
Everything runs through the real CLI (`rat`, click's runner) with `RAT_USER` set per command.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli

A_BRANCH = "workspace/a"
B_BRANCH = "workspace/b"


class Home:
    """One RAT_HOME shared by alice and bob, and a look at everything an attack could change."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.runner = CliRunner()

    def rat(self, user: str, *args: str, workspace: str | None = None, code: int = 0) -> str:
        argv = ["--home", str(self.home)]
        if workspace is not None:
            argv += ["--workspace", str(self.tmp / workspace)]
        result = self.runner.invoke(cli, [*argv, *args], obj={}, env={"RAT_USER": user}, catch_exceptions=False)
        assert result.exit_code == code, f"{user}: rat {' '.join(args)} -> exit {result.exit_code}\n{result.output}"
        return result.stdout if code == 0 else result.stderr

    def denied(self, user: str, *args: str, workspace: str | None = None) -> str:
        """A refused command: exit 1, one `error:` line naming the principal, nothing else, nothing changed."""
        before = self.state()
        err = self.rat(user, *args, workspace=workspace, code=1)
        lines = err.splitlines()
        assert lines[0].startswith("error: ") and "Traceback" not in err, err
        assert all(line.startswith("  ") for line in lines[1:]), err
        assert self.state() == before, f"rat {' '.join(args)} changed something"
        return lines[0]

    def state(self) -> tuple[object, ...]:
        """Refs and commits of catalog.db, every row of access.db and registry.db, every file with its size."""
        def rows(db: str, tables: list[str]) -> list[object]:
            path = self.home / db
            if not path.exists():
                return []
            con = sqlite3.connect(path)
            try:
                return [con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables]
            finally:
                con.close()

        files = sorted(
            (str(p.relative_to(self.tmp)), p.stat().st_size)
            for p in self.tmp.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm")) and "tmp" not in p.relative_to(self.tmp).parts[:2]
        )
        return (
            rows("catalog.db", ["refs", "commits"]),
            rows("access.db", ["workspaces", "members", "admins", "ref_owners"]),
            rows("registry.db", ["products", "product_access", "product_subscriptions", "product_refreshes"]),
            files,
        )

    def count(self, user: str, workspace: str, table: str, branch: str | None = None) -> int:
        extra = ["--branch", branch] if branch else []
        out = self.rat(user, "sql", *extra, "--format", "json", f"SELECT count(*) AS n FROM {table}", workspace=workspace)
        return int(json.loads(out)[0]["n"])


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Home:
    h = Home(tmp_path_factory.mktemp("two-principals"))
    h.rat("alice", "init", str(h.tmp / "a"), "--name", "a")
    h.rat("bob", "init", str(h.tmp / "b"), "--name", "b")
    h.rat("alice", "sql", "CREATE TABLE silver.t AS SELECT i FROM range(10) t(i)", workspace="a")
    h.rat("alice", "sql", "CREATE TABLE gold.kpis AS SELECT 1 AS k", workspace="a")
    h.rat("alice", "products", "publish", "gold.kpis", "a_kpis", "1.0.0", workspace="a")
    h.rat("bob", "sql", "CREATE TABLE silver.mine AS SELECT 1 AS x", workspace="b")
    (h.tmp / "b" / "pipelines" / "silver" / "n.sql").write_text("SELECT 1 AS n\n")
    return h


# -- refs of another workspace ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "--branch", A_BRANCH, "SELECT count(*) FROM silver.t"),
        ("sql", "--branch", A_BRANCH, "CREATE OR REPLACE TABLE silver.t AS SELECT 0 AS i"),
        ("sql", "--branch", A_BRANCH, "DROP TABLE silver.t"),
        ("sql", "--branch", f"{A_BRANCH}~1", "SELECT 1"),
        ("branch", "log", A_BRANCH),
        ("branch", "diff", B_BRANCH, A_BRANCH),
        ("branch", "merge", B_BRANCH, "--into", A_BRANCH),
        ("branch", "merge", A_BRANCH),
        ("branch", "delete", A_BRANCH),
        ("branch", "protect", A_BRANCH),
        ("branch", "create", "steal", "--from", A_BRANCH),
        ("tag", "create", "steal", "--from", A_BRANCH),
        ("tables", "--branch", A_BRANCH),
        ("run", "--branch", A_BRANCH),
    ],
    ids=lambda a: " ".join(a)[:60],
)
def test_bob_cannot_touch_workspace_a_refs(two: Home, args: tuple[str, ...]) -> None:
    line = two.denied("bob", *args, workspace="b")
    assert "principal 'bob'" in line and ("workspace 'a'" in line or "'workspace/a'" in line), line


def test_bob_cannot_read_a_commit_of_a_by_its_hash(two: Home) -> None:
    head = two.rat("alice", "branch", "log", "-n", "1", workspace="a").split()[0]
    line = two.denied("bob", "sql", "--branch", head, "SELECT count(*) FROM silver.t", workspace="b")
    assert "may not read commit" in line and "principal 'bob'" in line


def test_bob_is_not_a_member_of_a(two: Home) -> None:
    for args in (("sql", "SELECT 1"), ("branch", "list"), ("products", "list"), ("workspace", "show")):
        line = two.denied("bob", *args, workspace="a")
        assert line == "error: principal 'bob' is not a member of workspace 'a'", line
    assert "needs the owner role in workspace 'a'" in two.denied("bob", "workspace", "grant", "a", "bob", "owner")
    assert "principal 'bob'" in two.denied("bob", "workspace", "members", "a")


def test_main_and_gc_belong_to_the_administrator(two: Home) -> None:
    assert "belongs to the administrators" in two.denied("bob", "branch", "protect", "main", "--off", workspace="b")
    assert "belongs to the administrators" in two.denied("bob", "branch", "merge", B_BRANCH, "--into", "main", workspace="b")
    assert "administrator's verb" in two.denied("bob", "gc", "--older-than", "0")
    assert "administrator" in two.denied("bob", "admin", "add", "bob")
    assert two.rat("bob", "admin", "list").split() == ["alice"]


def test_identity_comes_from_the_registry_not_from_workspace_yaml(two: Home) -> None:
    config = two.tmp / "b" / "workspace.yaml"
    original = config.read_text()
    try:
        config.write_text(original.replace("name: b", "name: a", 1))
        line = two.denied("bob", "sql", "SELECT 1", workspace="b")
        assert "names workspace 'a', but that workspace is registered at" in line and str(two.tmp / "a") in line
        config.write_text(original.replace('s3_prefix: "b"', 's3_prefix: "a"'))
        assert "isolation.s3_prefix is 'a'" in two.denied("bob", "sql", "SELECT 1", workspace="b")
        config.write_text(original.replace('nessie_branch: "workspace/b"', 'nessie_branch: "workspace/a"'))
        assert "isolation.nessie_branch is 'workspace/a'" in two.denied("bob", "sql", "SELECT 1", workspace="b")
    finally:
        config.write_text(original)
    line = two.denied("bob", "init", str(two.tmp / "x"), "--name", "a")
    assert "the name 'a' is taken by workspace 'a' (owner alice" in line
    assert not (two.tmp / "x").exists()
    assert "owner role in workspace 'a'" in two.denied("bob", "workspace", "move", "a", str(two.tmp / "b"))


def test_products_need_a_grant_and_the_owner_role(two: Home) -> None:
    assert "may not read product 'a_kpis'" in two.denied("bob", "sql", "SELECT * FROM products.a_kpis", workspace="b")
    assert "may not" in two.denied("bob", "products", "grant", "a_kpis", "b", "read", workspace="b")
    assert "may not" in two.denied("bob", "products", "publish", "silver.mine", "a_kpis", "2.0.0", workspace="b")


# -- what stays possible ------------------------------------------------------------------------------


def test_roles_open_exactly_their_paths(tmp_path: Path) -> None:
    h = Home(tmp_path)
    h.rat("alice", "init", str(h.tmp / "a"), "--name", "a")
    h.rat("alice", "sql", "CREATE TABLE silver.t AS SELECT i FROM range(10) t(i)", workspace="a")

    h.rat("alice", "workspace", "grant", "a", "bob", "viewer")
    assert h.count("bob", "a", "silver.t") == 10
    assert "needs the editor role in workspace 'a' to commit to 'workspace/a' (has: viewer)" in h.denied(
        "bob", "sql", "INSERT INTO silver.t SELECT 99", workspace="a"
    )
    assert "needs the editor role" in h.denied("bob", "branch", "create", "dev", workspace="a")

    h.rat("alice", "workspace", "grant", "a", "bob", "editor")
    h.rat("bob", "branch", "create", "dev", workspace="a")
    h.rat("bob", "sql", "--branch", "dev", "INSERT INTO silver.t SELECT 99", workspace="a")
    h.rat("bob", "branch", "merge", "dev", workspace="a")
    assert h.count("bob", "a", "silver.t") == 11
    assert "owner role" in h.denied("bob", "branch", "protect", "workspace/a", workspace="a")

    h.rat("alice", "branch", "protect", "workspace/a", workspace="a")
    h.rat("bob", "sql", "--branch", "dev", "INSERT INTO silver.t SELECT 100", workspace="a")
    assert "needs the owner role in workspace 'a' to merge into 'workspace/a' (a protected branch)" in h.denied(
        "bob", "branch", "merge", "dev", workspace="a"
    )
    h.rat("alice", "branch", "create", "release", workspace="a")
    h.rat("alice", "branch", "protect", "release", workspace="a")
    assert "a protected branch cannot be deleted" in h.denied("alice", "branch", "delete", "release", workspace="a")
    h.rat("alice", "branch", "merge", "dev", workspace="a")
    assert h.count("alice", "a", "silver.t") == 12

    members = h.rat("bob", "workspace", "members", "a")
    assert "alice" in members and "owner" in members and "bob" in members and "editor" in members
    log = h.rat("alice", "branch", "log", "-n", "5", workspace="a")
    assert "  bob  INSERT INTO silver.t SELECT 100" in log and "  alice  CREATE TABLE silver.t" in log  # commits carry their principal

    h.rat("alice", "workspace", "revoke", "a", "bob")
    assert "not a member" in h.denied("bob", "sql", "SELECT 1", workspace="a")
    assert "last owner" in h.denied("alice", "workspace", "revoke", "a", "alice")


def test_a_granted_consumer_reads_until_revoked(tmp_path: Path) -> None:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.errors import AccessDeniedError
    from ratatouille_nb.settings import Settings

    h = Home(tmp_path)
    h.rat("alice", "init", str(h.tmp / "a"), "--name", "a")
    h.rat("bob", "init", str(h.tmp / "b"), "--name", "b")
    h.rat("alice", "sql", "CREATE TABLE gold.kpis AS SELECT 1 AS k", workspace="a")
    h.rat("alice", "products", "publish", "gold.kpis", "a_kpis", "1.0.0", "--access", "b:read", workspace="a")
    with Session(Settings.from_env(home=str(h.home), workspace=str(h.tmp / "b"), user="bob")) as bob:
        assert bob.sql("SELECT count(*) FROM products.a_kpis").relation.fetchone() == (1,)
        h.rat("alice", "products", "revoke", "a_kpis", "b", workspace="a")
        with pytest.raises(AccessDeniedError, match="may not read product 'a_kpis'"):
            bob.sql("SELECT count(*) FROM products.a_kpis")


def test_the_nessie_store_is_authorized_the_same_way(tmp_path: Path) -> None:
    """The policy wraps any VersionStore: the same refusals against the (spec-validated) Nessie fake."""
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.errors import AccessDeniedError
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.workspace import init_workspace
    from tests.nessie_fake import FakeNessie

    with FakeNessie() as server:
        def settings(user: str) -> Settings:
            return Settings.from_env(home=str(tmp_path / "home"), catalog="nessie", nessie_uri=server.uri, user=user)

        a = init_workspace(tmp_path / "a", settings("alice"), name="a")
        b = init_workspace(tmp_path / "b", settings("bob"), name="b")
        with Session(settings("alice"), a) as alice:
            alice.sql("CREATE TABLE silver.t AS SELECT 1 AS x")
            head = alice.store.get_reference(A_BRANCH).hash
        with Session(settings("bob"), b) as bob:
            assert A_BRANCH not in {r.name for r in bob.store.list_references()}
            for attempt in (
                lambda: bob.sql("SELECT * FROM silver.t", ref=A_BRANCH),
                lambda: bob.sql("DROP TABLE silver.t", ref=A_BRANCH),
                lambda: bob.store.merge(B_BRANCH, A_BRANCH),
                lambda: bob.store.delete_reference(A_BRANCH),
                lambda: bob.store.create_reference("steal", "branch", A_BRANCH),
            ):
                with pytest.raises(AccessDeniedError, match="principal 'bob'"):
                    attempt()
        with pytest.raises(AccessDeniedError, match="not a member of workspace 'a'"):
            Session(settings("bob"), a)
        with Session(settings("alice"), a) as alice:
            assert alice.store.get_reference(A_BRANCH).hash == head
    assert server.violations == []


def test_the_nessie_client_sends_the_bearer_token(tmp_path: Path) -> None:
    from ratatouille_nb.catalog import open_store
    from ratatouille_nb.errors import CatalogError
    from ratatouille_nb.settings import Settings
    from tests.nessie_fake import FakeNessie

    with FakeNessie(token="s3cret") as server:
        base = {"home": str(tmp_path / "home"), "catalog": "nessie", "nessie_uri": server.uri}
        with pytest.raises(CatalogError, match="refused the request \\(401\\): it needs credentials"):
            open_store(Settings.from_env(**base))
        store = open_store(Settings.from_env(**base, nessie_token="s3cret"))
        try:
            assert store.default_branch == "main"
        finally:
            store.close()

"""Branch lists show the workspace's own refs (and main), even to an administrator who may read others'."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs import branches
from ratatouille_nb.workspace import init_workspace


def test_own_only_leaves_out_other_workspaces_refs(settings: Settings, tmp_path: Path) -> None:
    one = init_workspace(tmp_path / "one", settings, name="one")
    two = init_workspace(tmp_path / "two", settings, name="two")
    with Session(settings, two) as s:
        branches.create(s, "workspace/two/play")
        s.store.inner.create_reference("scratch", "branch", "main")  # no owner recorded: the administrators'
    with Session(settings, one) as s:
        branches.create(s, "mine")
        everything = {r.name for r in branches.list_refs(s)}
        own = {r.name for r in branches.list_refs(s, own_only=True)}
        admin = s.access.is_admin
    assert "workspace/two/play" not in everything  # another workspace's ref: not readable at all
    assert ("scratch" in everything) == admin  # an unowned ref: administrators read it
    assert own == {"main", "workspace/one", "mine"}
    runner = CliRunner()
    argv = ["--home", str(settings.home), "--workspace", str(one.root), "branch", "list"]
    listed = runner.invoke(cli, argv, obj={}, catch_exceptions=False).stdout
    assert "mine" in listed and "scratch" not in listed
    every = runner.invoke(cli, [*argv, "--all"], obj={}, catch_exceptions=False).stdout
    assert ("scratch" in every) == admin

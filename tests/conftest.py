"""Shared fixtures: a temporary RAT_HOME, a workspace in it, and an engine session on its branch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

# The S3-compatible server (moto) fixtures: s3_server, s3_bucket, s3_settings.
pytest_plugins = ["tests.s3_server"]


@pytest.fixture(autouse=True)
def _kernel_env_restored() -> Iterator[None]:
    """The kernel link (notebook/link.py) writes RAT_WORKSPACE/RAT_BRANCH into os.environ, as a kernel
    must for `!rat`; set up before monkeypatch and torn down after it, this puts them back as they
    were, so a module-scoped fixture of the next file never starts on another test's branch."""
    before = {var: os.environ.get(var) for var in ("RAT_WORKSPACE", "RAT_BRANCH")}
    yield
    for var, value in before.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (
        "RAT_HOME", "RAT_WORKSPACE", "RAT_PROFILE", "RAT_BRANCH", "RAT_CATALOG",
        "RAT_WAREHOUSE", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION", "RAT_USER", "RAT_READ_PATHS",
    ):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "user-home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(home=str(tmp_path / "rat-home"))


@pytest.fixture
def workspace(settings: Settings, tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "acme", settings, name="acme")


@pytest.fixture
def session(settings: Settings, workspace: Workspace) -> Iterator[Session]:
    s = Session(settings, workspace)
    yield s
    s.close()


def scalar(session: Session, sql: str, ref: str | None = None) -> object:
    return session.sql(sql, ref=ref).relation.fetchone()[0]

"""Where things live: RAT_HOME, workspace, profile, branch, catalog — from flags, then env, then defaults.

One frozen object resolved once per process, so every layer (CLI, magics, server) agrees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HOME = "~/.ratatouille"


@dataclass(frozen=True)
class Settings:
    """User-chosen locations and names; `None` means "take the workspace's default"."""

    home: Path
    workspace: str | None = None
    profile: str | None = None
    branch: str | None = None
    catalog: str = "local"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: str | None) -> Settings:
        """Resolve settings: explicit overrides win over RAT_* environment variables."""
        env = os.environ
        home = overrides.get("home") or env.get("RAT_HOME") or DEFAULT_HOME
        return cls(
            home=Path(home).expanduser().resolve(),
            workspace=overrides.get("workspace") or env.get("RAT_WORKSPACE") or None,
            profile=overrides.get("profile") or env.get("RAT_PROFILE") or None,
            branch=overrides.get("branch") or env.get("RAT_BRANCH") or None,
            catalog=(overrides.get("catalog") or env.get("RAT_CATALOG") or "local").lower(),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (e.g. another branch)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def catalog_db(self) -> Path:
        return self.home / "catalog.db"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"

    @property
    def spill_dir(self) -> Path:
        return self.home / "tmp"

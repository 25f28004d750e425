"""Where things live: RAT_HOME, workspace, profile, branch, catalog — from flags, then env, then defaults.

One frozen object resolved once per process, so every layer (CLI, magics, server) agrees.

The warehouse (where table files go) is `RAT_WAREHOUSE`, default `RAT_HOME/warehouse`; an
`s3://bucket/path` warehouse takes `S3_ENDPOINT` (e.g. `http://minio:9000`, path-style
addressing), `S3_ACCESS_KEY`, `S3_SECRET_KEY` and `S3_REGION` (default `us-east-1`).

`RAT_READ_PATHS` (os.pathsep-separated folders) lets SQL of this run read local files there, on top
of the workspace's own `read_paths:` (engine/sandbox.py decides what SQL may reach).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HOME = "~/.ratatouille"


def split_paths(value: str) -> tuple[str, ...]:
    """`RAT_READ_PATHS`: folders separated by os.pathsep (':' on Linux), empty parts ignored."""
    return tuple(p.strip() for p in value.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class Settings:
    """User-chosen locations and names; `None` means "take the workspace's default"."""

    home: Path
    workspace: str | None = None
    profile: str | None = None
    branch: str | None = None
    catalog: str = "local"
    extra: dict[str, str] = field(default_factory=dict)
    nessie_uri: str | None = None
    warehouse_uri: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_region: str | None = None
    nessie_token: str | None = field(default=None, repr=False)
    """NESSIE_TOKEN: a bearer token sent to an authenticated Nessie server."""
    user: str | None = None
    """RAT_USER: the acting principal (else the Jupyter user for REST calls, else the OS login)."""
    read_paths: tuple[str, ...] = ()

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
            nessie_uri=overrides.get("nessie_uri") or env.get("NESSIE_URI") or None,
            warehouse_uri=overrides.get("warehouse") or env.get("RAT_WAREHOUSE") or None,
            s3_endpoint=overrides.get("s3_endpoint") or env.get("S3_ENDPOINT") or None,
            s3_access_key=overrides.get("s3_access_key") or env.get("S3_ACCESS_KEY") or None,
            s3_secret_key=overrides.get("s3_secret_key") or env.get("S3_SECRET_KEY") or None,
            s3_region=overrides.get("s3_region") or env.get("S3_REGION") or None,
            user=overrides.get("user") or env.get("RAT_USER") or None,
            nessie_token=overrides.get("nessie_token") or env.get("NESSIE_TOKEN") or None,
            read_paths=split_paths(overrides.get("read_paths") or env.get("RAT_READ_PATHS") or ""),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (e.g. another branch)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def catalog_db(self) -> Path:
        return self.home / "catalog.db"

    @property
    def warehouse_root(self) -> str:
        """Where table files live: RAT_WAREHOUSE (a local folder or `s3://bucket/path`), else RAT_HOME/warehouse."""
        if self.warehouse_uri:
            return self.warehouse_uri
        return str(self.home / "warehouse")

    @property
    def is_s3(self) -> bool:
        return self.warehouse_root.startswith(("s3://", "s3a://", "s3n://"))

    @property
    def warehouse(self) -> Path:
        """The local warehouse folder (an S3 warehouse has none: use `warehouse_root`)."""
        if self.is_s3:
            from ratatouille_nb.errors import ConfigError

            raise ConfigError(
                f"the warehouse is on S3 ({self.warehouse_root}), not a local folder",
                hint="use Settings.warehouse_root or the session's Warehouse",
            )
        if self.warehouse_uri:
            return Path(self.warehouse_uri.removeprefix("file://")).expanduser().resolve()
        return self.home / "warehouse"

    @property
    def workspaces_dir(self) -> Path:
        return self.home / "workspaces"

    @property
    def spill_dir(self) -> Path:
        return self.home / "tmp"

    def workspace_spill_dir(self, workspace: str) -> Path:
        """One workspace's spill folder: DuckDB's temp files and merge batches, reachable by its SQL only."""
        return self.spill_dir / workspace

"""`workspace.yaml`, validated: the seed's fields, with errors that name the field and the line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ratatouille_nb.errors import ConfigError
from ratatouille_nb.yamlfile import load_yaml_with_lines, validation_message

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LAYER_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_LAYERS = ("bronze", "silver", "gold")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Isolation(_Strict):
    nessie_branch: str | None = None
    s3_prefix: str | None = None

    @field_validator("s3_prefix")
    @classmethod
    def _safe_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = value.strip("/").split("/")
        if not value.strip("/") or any(p in ("", ".", "..") or not re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
            raise ValueError("must be a relative path of letters, digits, '_', '-', '.' (no '..')")
        return value.strip("/")


class Resources(_Strict):
    profile: str = "small"
    overrides: dict[str, Any] = Field(default_factory=dict)


class Layer(_Strict):
    retention_days: int | None = Field(None, ge=1)
    partition_by: list[str] = Field(default_factory=list)


class AccessGrant(_Strict):
    workspace: str
    level: Literal["read", "write", "none"] = "read"


class ProductSla(_Strict):
    freshness_hours: float | None = Field(None, gt=0)


class ProductDecl(_Strict):
    name: str
    source: str
    description: str | None = None
    access: list[AccessGrant] = Field(default_factory=list)
    sla: ProductSla | None = None


class Subscription(_Strict):
    product: str
    alias: str | None = None
    version: str = "latest"


class WorkspaceConfig(_Strict):
    """One workspace: its own branch and storage prefix under a shared RAT_HOME."""

    name: str
    version: str = "1.0"
    description: str = ""
    isolation: Isolation = Isolation()
    resources: Resources = Resources()
    layers: dict[str, Layer] = Field(default_factory=lambda: {name: Layer() for name in DEFAULT_LAYERS})
    products: list[ProductDecl] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)
    # Local folders this workspace's SQL may read (read_csv('~/data/x.csv')): engine/sandbox.py.
    read_paths: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must start with a lowercase letter and use only a-z, 0-9, '_' or '-' (max 63 chars)")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("layers")
    @classmethod
    def _valid_layers(cls, value: dict[str, Layer]) -> dict[str, Layer]:
        for layer in value:
            if not LAYER_RE.match(layer):
                raise ValueError(f"layer name '{layer}' must be lowercase letters, digits or '_'")
        return value

    @field_validator("read_paths")
    @classmethod
    def _local_folders(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.strip() or "\x00" in path:
                raise ValueError("each entry must be a folder path")
            if "://" in path:
                raise ValueError(f"'{path}' is not a local folder: read_paths are local folders (absolute, ~ or relative to the workspace)")
        return [p.strip() for p in value]

    @model_validator(mode="after")
    def _unique_products(self) -> WorkspaceConfig:
        names = [p.name for p in self.products]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"products listed twice: {', '.join(dupes)}")
        return self

    @property
    def branch(self) -> str:
        return self.isolation.nessie_branch or f"workspace/{self.name}"

    @property
    def storage_prefix(self) -> str:
        return self.isolation.s3_prefix or self.name

    def partition_by(self, layer: str) -> list[str]:
        spec = self.layers.get(layer)
        return list(spec.partition_by) if spec else []


def load_workspace_config(path: Path) -> WorkspaceConfig:
    """Read and validate a workspace.yaml; errors say file:line: field: problem."""
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: workspace.yaml must be a mapping with at least 'name'")
    try:
        return WorkspaceConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, lines)) from exc

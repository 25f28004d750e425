"""Resource profiles `tiny`/`small`/`medium`/`large` (YAML shipped in the package) plus overrides.

`max_memory_mb` is the budget for a whole process's peak RSS; DuckDB's buffer-pool limit is
derived from it because DuckDB's RSS runs 20-35 % above `memory_limit` and the Python side
(duckdb + pyarrow + pyiceberg imports) costs ~270 MB before any data.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ratatouille_nb.errors import ProfileError

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILE_NAMES = ("tiny", "small", "medium", "large")

PYTHON_BASELINE_MB = 270
DUCKDB_RSS_OVERHEAD = 1.3
MIN_DUCKDB_MB = 128

class InvalidResourcesError(ProfileError):
    """Resources that do not validate; `loc` is the first bad field (for file:line in workspace.yaml)."""

    def __init__(self, message: str, *, loc: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.loc = loc


_UNITS = {"KB": 1 / 1024, "KIB": 1 / 1024, "MB": 1, "MIB": 1, "GB": 1024, "GIB": 1024, "TB": 1024**2, "TIB": 1024**2}


def parse_size_mb(value: str | int | float) -> int:
    """'8GB' / '512MB' / 512 -> megabytes; ValueError for anything that is not a positive, finite size."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory size")
    if isinstance(value, (int, float)):
        number, unit = float(value), 1.0
    else:
        text = value.strip().upper().replace(" ", "")
        unit_name = next((u for u in sorted(_UNITS, key=len, reverse=True) if text.endswith(u)), "")
        number, unit = float(text[: len(text) - len(unit_name)] or "x"), _UNITS.get(unit_name, 1)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{value!r} is not a positive memory size")
    return max(1, int(number * unit))


def _size(value: Any) -> Any:
    if value is None:
        return value
    try:
        parse_size_mb(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a memory size: use a positive number with MB or GB, e.g. 512MB or 4GB") from None
    return str(value)


class DuckDBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threads: int = Field(2, ge=1, le=256)
    memory_limit: str | None = None
    temp_directory: str | None = None

    _memory_limit = field_validator("memory_limit", mode="before")(_size)

    @field_validator("temp_directory")
    @classmethod
    def _local_folder(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "://" in value or "\x00" in value):
            raise ValueError(f"{value!r} is not a local folder")
        return value


class ServiceMemory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int = Field(512, ge=64)


class Compaction(BaseModel):
    """When a run compacts the tables it wrote (maintenance/optimize.py): deletes slow every read."""

    model_config = ConfigDict(extra="forbid")

    auto: bool = True
    max_deleted_fraction: float = Field(0.1, gt=0, le=1)
    """Compact a table once this share of its data files' rows is deleted (merge-on-read leftovers)."""
    max_delete_files: int = Field(64, ge=1)
    """…or once it holds this many position-delete files."""
    small_file_fraction: float = Field(0.5, gt=0, le=1)
    """A data file smaller than this share of the target file size is bin-packed with its neighbours."""


class ResourceConfig(BaseModel):
    """The resolved resources of one profile with workspace overrides applied."""

    model_config = ConfigDict(extra="forbid")

    name: str = "small"
    description: str = ""
    max_memory_mb: int = Field(4096, ge=256)
    duckdb_memory_mb: int = Field(8192, ge=MIN_DUCKDB_MB)
    chunk_size_rows: int = Field(50000, ge=100)
    max_parallel_pipelines: int = Field(2, ge=1)
    duckdb: DuckDBSettings = DuckDBSettings()
    nessie: ServiceMemory | None = None
    minio: ServiceMemory | None = None
    compaction: Compaction = Compaction()

    @field_validator("duckdb", "compaction", mode="before")
    @classmethod
    def _dict_or_model(cls, value: Any) -> Any:
        return value or {}

    @property
    def threads(self) -> int:
        return self.duckdb.threads

    @property
    def duckdb_limit_mb(self) -> int:
        """DuckDB buffer-pool cap: the smallest of the explicit limits and what the RSS budget allows."""
        explicit = [self.duckdb_memory_mb]
        if self.duckdb.memory_limit:
            explicit.append(parse_size_mb(self.duckdb.memory_limit))
        from_budget = int((self.max_memory_mb - PYTHON_BASELINE_MB) / DUCKDB_RSS_OVERHEAD)
        return max(MIN_DUCKDB_MB, min([*explicit, from_budget]))

    @property
    def target_file_size_mb(self) -> int:
        """Parquet file size for writes: big enough for scans, small enough that a rewrite is cheap."""
        return max(16, min(256, self.duckdb_limit_mb // 4))


def _read_profile_file(path: Path) -> dict[str, Any]:
    from ratatouille_nb.errors import ConfigError
    from ratatouille_nb.yamlfile import load_yaml_with_lines

    try:
        data = load_yaml_with_lines(path)[0] or {}
    except ConfigError as exc:
        raise ProfileError(f"cannot read profile: {exc.args[0]}", hint=exc.hint) from None
    if not isinstance(data, dict):
        raise ProfileError(f"profile {path} must be a mapping")
    resources = dict(data.get("resources") or {})
    resources.setdefault("description", data.get("description", ""))
    return resources


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_profile(name_or_path: str | None = None, overrides: dict[str, Any] | None = None) -> ResourceConfig:
    """Load a named profile (or a YAML path) and merge overrides on top.

    Overrides may set any resource key; `threads`/`memory_limit`/`temp_directory` at the top level
    are accepted as shorthands for the `duckdb:` block.
    """
    name = name_or_path or "small"
    if name in PROFILE_NAMES:
        path = PROFILE_DIR / f"{name}.yaml"
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ProfileError(
                f"unknown resource profile '{name}'",
                hint=f"use one of {', '.join(PROFILE_NAMES)} or a path to a profile YAML",
            )
    data = _read_profile_file(path)
    data["name"] = path.stem
    extra = dict(overrides or {})
    duck_extra: dict[str, Any] = {k: extra.pop(k) for k in ("threads", "memory_limit", "temp_directory") if k in extra}
    if duck_extra:
        extra["duckdb"] = _deep_merge(extra.get("duckdb") or {}, duck_extra)
    merged = _deep_merge(data, extra)
    try:
        return ResourceConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise InvalidResourcesError(f"invalid resources in profile '{name}': {problems}", loc=tuple(exc.errors()[0]["loc"])) from None


def ensure_temp_directory(path: Path) -> Path:
    """The spill folder DuckDB will write, created and checked now (not at the first spill, mid-query)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfileError(
            f"cannot create the spill folder {path}: {exc.strerror}", hint="set resources temp_directory to a writable folder"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ProfileError(f"the spill folder {path} is not writable", hint="set resources temp_directory to a writable folder")
    return path

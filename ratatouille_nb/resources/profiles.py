"""Resource profiles `tiny`/`small`/`medium`/`large` (YAML shipped in the package) plus overrides.

`max_memory_mb` is the budget for a whole process's peak RSS; DuckDB's buffer-pool limit is
derived from it because DuckDB's RSS runs 20-35 % above `memory_limit` and the Python side
(duckdb + pyarrow + pyiceberg imports) costs ~270 MB before any data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ratatouille_nb.errors import ProfileError

PROFILE_DIR = Path(__file__).parent / "profiles"
PROFILE_NAMES = ("tiny", "small", "medium", "large")

PYTHON_BASELINE_MB = 270
DUCKDB_RSS_OVERHEAD = 1.3
MIN_DUCKDB_MB = 128

_UNITS = {"KB": 1 / 1024, "KIB": 1 / 1024, "MB": 1, "MIB": 1, "GB": 1024, "GIB": 1024, "TB": 1024**2, "TIB": 1024**2}


def parse_size_mb(value: str | int | float) -> int:
    """'8GB' / '512MB' / 512 -> megabytes."""
    if isinstance(value, (int, float)):
        return int(value)
    text = value.strip().upper().replace(" ", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * _UNITS[unit])
    return int(float(text))


class DuckDBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threads: int = Field(2, ge=1, le=256)
    memory_limit: str | None = None
    temp_directory: str | None = None


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
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
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
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ProfileError(f"invalid resources in profile '{name}': {problems}") from exc

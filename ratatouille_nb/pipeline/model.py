"""The pipeline domain objects: a model (one table a pipeline builds) and its declared contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A model's `materialized` names a class registered in pipeline/materializations/ (view, table,
# incremental, ephemeral, snapshot, seed, …): adding one touches that folder only.
Materialized = str
Strategy = Literal["append", "merge", "insert_overwrite", "delete+insert"]
Severity = Literal["warn", "error"]
WriteMode = Literal["merge-on-read", "copy-on-write"]
ResourceType = Literal["model", "seed", "snapshot"]


class TestSpec(BaseModel):
    """One data test: a column test (`not_null`, `unique`, …) or a custom SQL test with `expect`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    column: str | None = None
    kind: str = "sql"
    args: dict[str, Any] = Field(default_factory=dict)
    sql: str | None = None
    expect: int | None = 0
    severity: Severity = "error"
    line: int | None = None
    path: Path | None = None
    where: str | None = None
    error_if: str = "!=0"
    warn_if: str = "!=0"
    fail_calc: str = "count(*)"
    limit: int | None = None
    store_failures: bool = False
    refs: list[str] = Field(default_factory=list)


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str | None = None
    description: str | None = None
    tests: list[TestSpec] = Field(default_factory=list)


class Freshness(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_after_hours: float | None = None
    error_after_hours: float | None = None
    column: str | None = None


class Model(BaseModel):
    """A node of the DAG: what it builds (`target`), how (`materialized`, `strategy`), from what (`refs`)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    target: str
    layer: str
    kind: Literal["sql", "python", "seed"]
    path: Path
    sql: str | None = None
    sql_line_offset: int = 0
    function: Callable[..., Any] | None = None
    materialized: Materialized = "table"
    strategy: Strategy = "merge"
    unique_key: list[str] = Field(default_factory=list)
    partition_by: list[str] = Field(default_factory=list)
    write_mode: WriteMode | None = None  # incremental merges: None = the table property, else merge-on-read
    owner: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    schedule: str | None = None
    columns: list[ColumnSpec] = Field(default_factory=list)
    tests: list[TestSpec] = Field(default_factory=list)
    freshness: Freshness | None = None
    refs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    yaml_path: Path | None = None
    # dbt projects: the raw config (for `config.<key>:` selectors and materialization settings),
    # the `source('src', 'table')` names read, the package and the resource type.
    config: dict[str, Any] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list)
    package: str | None = None
    resource_type: ResourceType = "model"
    column_types: dict[str, str] = Field(default_factory=dict)

    @field_validator("materialized")
    @classmethod
    def _registered(cls, value: str) -> str:
        from ratatouille_nb.pipeline.materializations import REGISTRY

        if value not in REGISTRY or value == "python":
            known = ", ".join(sorted(k for k in REGISTRY if k != "python"))
            raise ValueError(f"unknown materialization '{value}' (known: {known})")
        return value

    @field_validator("unique_key", "partition_by", "tags", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def produces(self) -> list[str]:
        """Every table this model writes."""
        return self.outputs or [self.target]

    def fingerprint(self) -> str:
        """What the model's definition is, as a hash: `state:modified` compares it with run records."""
        import hashlib
        import json

        body = self.path.read_bytes() if self.kind == "seed" and self.path.is_file() else (self.sql or "").encode()
        if self.function is not None:
            code = getattr(self.function, "__code__", None)
            body = code.co_code if code is not None else b""
        definition = json.dumps(
            [self.materialized, self.strategy, self.unique_key, self.partition_by, self.config, self.column_types, self.target],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body + b"\0" + definition.encode()).hexdigest()[:20]

    def all_tests(self) -> list[TestSpec]:
        return [t for c in self.columns for t in c.tests] + list(self.tests)

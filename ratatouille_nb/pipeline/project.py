"""A workspace's models as one project (native pipelines/ or a dbt project), and its dbt sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.model import Model
    from ratatouille_nb.pipeline.templating import Templates


@dataclass(frozen=True)
class SourceTable:
    """A dbt source table (sources.yml): a table on the branch, or files / a DuckDB reader."""

    source: str
    name: str
    relation: str  # `layer.table`, or a SELECT over files / a reader call
    is_table: bool = True
    location: str | None = None  # the files, for lineage
    description: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    path: Path | None = None
    line: int | None = None


@dataclass
class Project:
    """All models of a workspace, addressable by pipeline name or by target table."""

    root: Path
    models: dict[str, Model] = field(default_factory=dict)
    templates: Templates | None = None
    # dbt projects (pipeline/dbt/): vars, package names, sources, docs blocks, load warnings.
    variables: dict[str, Any] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)
    sources: dict[str, SourceTable] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    is_dbt: bool = False

    def by_target(self) -> dict[str, Model]:
        return {t: m for m in self.models.values() for t in m.produces}

    def get(self, name_or_target: str) -> Model | None:
        return self.models.get(name_or_target) or self.by_target().get(name_or_target)

    def source_relation(self, key: str) -> str | None:
        """`source('src', 'table')` (key `src/table`) -> what it reads, or None when no source has that name."""
        found = self.sources.get(key.replace("/", ".", 1))
        return found.relation if found is not None else None

    def source_table(self, source: str, table: str) -> str:
        found = self.sources.get(f"{source}.{table}")
        if found is None:
            from ratatouille_nb.pipeline.errors import PipelineError

            raise PipelineError(f"source('{source}', '{table}') is not declared in any sources .yml", hint="declare it under `sources:`")
        return found.relation


class PermissiveVars(dict):
    """At parse time every var() resolves (to its default or an empty string)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return dict.get(self, key, "")

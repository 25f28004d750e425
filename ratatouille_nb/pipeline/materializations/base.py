"""What every materialization shares: the per-model context, the outcome, the registry.

A materialization is one class in this folder, registered by name with `@register`; the runner
(pipeline/executor.py) looks the model's `materialized` up here and calls `run(ctx)`. Every table
binding and SQL execution of a model goes through its `ModelContext`: the runner gives it the
model's scope (`Session.scope()`, engine/scope.py — its own cursor and catalog) and what the model
may read (the run's base tables plus its upstream models' staged output).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.pipeline.registry import Registry

if TYPE_CHECKING:
    import duckdb

    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.engine.incremental import IncrementalWriter
    from ratatouille_nb.engine.scope import Scope
    from ratatouille_nb.pipeline.model import Model
    from ratatouille_nb.pipeline.runs import ModelRun
    from ratatouille_nb.pipeline.state import RunState


@dataclass(frozen=True)
class Outcome:
    """What one model's run did: the operation shown to users, rows written and rows updated."""

    operation: str
    rows: int = 0
    updated: int = 0


@dataclass
class ModelContext:
    """One model's view of the run: its cursor, its writer, and the one way it binds tables."""

    state: RunState
    model: Model
    run: ModelRun
    cursor: duckdb.DuckDBPyConnection
    writer: IncrementalWriter
    render_sql: Callable[[ModelContext, bool], str]
    extras: dict[str, Any] = field(default_factory=dict)
    scope: Scope | None = None  # None: bind in the session's shared catalog (a caller outside a run)
    visible: Callable[[], dict[str, TableEntry]] | None = None

    @property
    def target(self) -> str:
        return self.model.target

    @property
    def full_refresh(self) -> bool:
        return self.state.full_refresh

    def contents(self) -> dict[str, TableEntry]:
        return self.visible() if self.visible is not None else self.state.txn.contents()

    def entry(self) -> TableEntry | None:
        return self.contents().get(self.model.target)

    def bind(self, sql: str, contents: dict[str, TableEntry] | None = None) -> None:
        """Make the tables `sql` names (products included) visible to this model's cursor."""
        state = self.state
        current = contents if contents is not None else self.contents()
        if self.scope is not None:
            self.scope.bind(sql, state.session.with_products(sql, current))
            return
        with state.bind_lock:
            state.session.bind(sql, state.session.with_products(sql, current))

    def scalar(self, sql: str) -> Any:
        self.bind(sql)
        return scalar(self.cursor, sql)

    def execute(self, sql: str) -> Any:
        self.bind(sql)
        return self.cursor.execute(sql)

    def render(self, *, incremental: bool) -> str:
        """The model's SQL compiled against the run's current state, its tables bound."""
        sql = self.render_sql(self, incremental)
        self.bind(sql)
        return sql

    def drop_if_view(self) -> bool:
        """A view being replaced by a table: forget the view entry first (it has no Iceberg metadata)."""
        entry = self.entry()
        if entry is None or entry.view_sql is None:
            return False
        with self.state.txn.lock:
            self.state.txn.tables.drop_table(self.model.target)
        return True

    def has_rows(self) -> bool:
        return bool(self.scalar(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {self.model.target} LIMIT 1)"))

    def partition_by(self) -> list[str]:
        return list(self.model.partition_by or self.state.session.workspace.config.partition_by(self.model.layer))


class Materialization:
    """How one kind of model becomes (or does not become) a table on the run's branch."""

    name: ClassVar[str]
    # Whether the model leaves a relation on the branch that others can read and test.
    builds_relation: ClassVar[bool] = True

    def validate(self, model: Model) -> str | None:
        """A problem with the model's definition (checked when the project loads), else None."""
        return None

    def run(self, ctx: ModelContext) -> Outcome:
        raise NotImplementedError


def _load_builtins() -> None:
    from ratatouille_nb.pipeline import materializations  # noqa: F401 - registers the built-in kinds


_REGISTRY: Registry[Materialization] = Registry("materialization", lambda cls: cls.name, _load_builtins)
REGISTRY = _REGISTRY.items
register = _REGISTRY.register
materialization = _REGISTRY.get

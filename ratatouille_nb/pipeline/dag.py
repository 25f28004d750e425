"""The model DAG: edges from `ref()` and Python outputs, cycle detection; selection is pipeline/selectors.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ratatouille_nb.pipeline.errors import CycleError
from ratatouille_nb.pipeline.loader import Project, ref_line
from ratatouille_nb.pipeline.model import Model

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.selectors import Selection, StateOracle


@dataclass
class Dag:
    """Models by name, upstream model names per model, and tables referenced outside the project."""

    models: dict[str, Model]
    upstream: dict[str, set[str]] = field(default_factory=dict)
    external: dict[str, set[str]] = field(default_factory=dict)

    @property
    def downstream(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {name: set() for name in self.models}
        for name, ups in self.upstream.items():
            for up in ups:
                out[up].add(name)
        return out

    def order(self, names: set[str] | None = None) -> list[str]:
        """Topological order (stable by name) of `names` (default: all)."""
        wanted = set(self.models) if names is None else set(names)
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for up in sorted(self.upstream.get(name, ())):
                visit(up)
            if name in wanted:
                done.append(name)

        for name in sorted(wanted):
            visit(name)
        return done

    def closure(self, start: str, direction: str) -> set[str]:
        graph = self.upstream if direction == "up" else self.downstream
        out, stack = set(), [start]
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                if nxt not in out:
                    out.add(nxt)
                    stack.append(nxt)
        return out

    def select(
        self,
        selectors: list[str] | tuple[str, ...],
        *,
        exclude: list[str] | tuple[str, ...] = (),
        state: StateOracle | None = None,
        root: Path | None = None,
    ) -> list[str]:
        """The models to run for dbt selectors (pipeline/selectors.py), in topological order."""
        return self.selection(selectors, exclude=exclude, state=state, root=root).runnable()

    def selection(
        self,
        selectors: list[str] | tuple[str, ...],
        *,
        exclude: list[str] | tuple[str, ...] = (),
        state: StateOracle | None = None,
        root: Path | None = None,
    ) -> Selection:
        """Models and (when selected by test methods) tests for dbt selectors."""
        from ratatouille_nb.pipeline.selectors import select

        return select(self, selectors, exclude=exclude, state=state, root=root)


def build_dag(project: Project, product_refs: set[str] | None = None) -> Dag:
    """Resolve refs to models; raise on refs to nothing known and on cycles (printing the cycle)."""
    by_target = project.by_target()
    dag = Dag(models=dict(project.models))
    for name, model in project.models.items():
        ups: set[str] = set()
        for ref in model.refs:
            target = project.models.get(ref) or by_target.get(ref)
            if target is not None:
                if target.name != name:
                    ups.add(target.name)
                continue
            dag.external.setdefault(name, set()).add(ref)
        dag.upstream[name] = ups
    _check_cycles(dag)
    return dag


def _check_cycles(dag: Dag) -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for up in sorted(dag.upstream.get(name, ())):
            if state.get(up) == 1:
                cycle = [*stack[stack.index(up):], up]
                first, second = dag.models[cycle[0]], dag.models[cycle[1]]
                key = next((r for r in first.refs if r == second.name or r in second.produces), second.name)
                raise CycleError(
                    "dependency cycle: " + " -> ".join(reversed(cycle)),
                    path=first.path,
                    line=ref_line(first, key),
                    hint="a model cannot (indirectly) ref() itself",
                )
            if state.get(up) is None:
                visit(up)
        stack.pop()
        state[name] = 2

    for name in sorted(dag.models):
        if name not in state:
            visit(name)

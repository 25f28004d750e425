"""dbt's node selection grammar over Ratatouille's DAG (`-s/--select`, `--exclude`, `--state`).

    a b          union (several arguments, or spaces inside one)
    a,b          intersection
    +x  x+       x with all its ancestors / descendants;  2+x  x+1  limit the depth
    @x           x, its descendants, and all ancestors of those
    x            a model name (globs like stg_* work) or a table (layer.table)
    path:models/staging   file path under the workspace (folder or file, globs work)
    tag:t   layer:l   package:p   fqn:a.b   file:x.sql   config.<key>:value   resource_type:model|seed|snapshot|test
    source:s  source:s.t         the models that read a dbt source (its direct children; with + their descendants)
    test_type:generic|singular|data   test_name:x     select tests (for `rat test`); their models are not run
    state:modified  state:new    against another ref (`--state REF`), from runs.db's fingerprints (pipeline/runs.py)

A method Ratatouille does not have (`result:`, `exposure:`, `metric:`, …) is an error naming it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.dag import Dag
    from ratatouille_nb.pipeline.model import Model

StateOracle = Callable[[str], set[str]]
_ATOM_RE = re.compile(r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<core>[^+]+?)(?:\+(?P<down>\d*))?$")
UNSUPPORTED_METHODS = {
    "result": "there are no run-result artifacts: use state:modified",
    "source_status": "source freshness results are not recorded",
    "exposure": "exposures are not modelled",
    "metric": "the semantic layer is not supported",
    "semantic_model": "the semantic layer is not supported",
    "saved_query": "the semantic layer is not supported",
    "unit_test": "unit tests are not supported",
    "group": "groups are not modelled",
    "access": "model access is not modelled",
    "version": "model versions are selected by name (x_v2)",
    "wildcard": "use a glob in the name",
}
TestKey = tuple[str, str]  # (model name, test name)


@dataclass
class Selection:
    """The models to run (topological order) and, when tests were selected by name or type, those tests."""

    models: list[str]
    tests: set[TestKey] | None = None
    test_only: set[str] = field(default_factory=set)  # models selected only for their tests

    def runnable(self) -> list[str]:
        return [m for m in self.models if m not in self.test_only]


class _Selector:
    def __init__(self, dag: Dag, root: Path | None, state: StateOracle | None) -> None:
        self.dag = dag
        self.root = root
        self.state = state
        self.by_target = {t: m.name for m in dag.models.values() for t in m.produces}

    # -- atoms --------------------------------------------------------------------------------

    def _tests(self, predicate: Callable[[Model, Any], bool]) -> tuple[set[str], set[TestKey]]:
        tests = {(m.name, t.name) for m in self.dag.models.values() for t in m.all_tests() if predicate(m, t)}
        return {m for m, _ in tests}, tests

    def method(self, raw: str) -> tuple[set[str], set[TestKey] | None]:
        """The models (and tests, for test methods) one atom without graph operators names."""
        models = self.dag.models
        method, sep, value = raw.partition(":")
        if not sep:
            method, value = "", raw
        if method.startswith("config."):
            key = method[7:]
            return {n for n, m in models.items() if _config_matches(m, key, value)}, None
        if method in UNSUPPORTED_METHODS:
            raise PipelineError(f"selector method '{method}:' is not supported: {UNSUPPORTED_METHODS[method]}")
        if method == "":
            if value in models:
                return {value}, None
            if value in self.by_target:
                return {self.by_target[value]}, None
            if "/" in value or value.endswith(".sql"):
                return self.method(f"path:{value}")
            return {n for n in models if fnmatch.fnmatchcase(n, value)}, None
        if method == "tag":
            return {n for n, m in models.items() if any(fnmatch.fnmatchcase(t, value) for t in m.tags)}, None
        if method == "layer":
            return {n for n, m in models.items() if m.layer == value}, None
        if method == "package":
            return {n for n, m in models.items() if (m.package or "") == value}, None
        if method == "path":
            return {n for n, m in models.items() if self._path_matches(m.path, value)}, None
        if method == "file":
            return {n for n, m in models.items() if fnmatch.fnmatchcase(m.path.name, value) or m.path.stem == value}, None
        if method == "fqn":
            return {n for n, m in models.items() if fnmatch.fnmatchcase(".".join(self._fqn(m)), value) or value in self._fqn(m)}, None
        if method == "resource_type":
            if value == "test":
                return self._tests(lambda m, t: True)
            if value in ("model", "seed", "snapshot"):
                return {n for n, m in models.items() if m.resource_type == value}, None
            if value == "source":
                return set(), None
            raise PipelineError(f"resource_type '{value}' is not one of model, seed, snapshot, test, source")
        if method == "source":
            src, _, table = value.partition(".")
            return {
                n for n, m in models.items()
                if any(s.split("/")[0] == src and (not table or fnmatch.fnmatchcase(s.split("/")[1], table)) for s in m.sources)
            }, None
        if method == "test_type":
            kinds = {"singular": {"singular"}, "generic": None, "data": None}.get(value, "bad")
            if kinds == "bad":
                raise PipelineError(f"test_type '{value}' is not one of generic, singular, data (unit tests are not supported)")
            return self._tests(lambda m, t: (t.kind in kinds) if kinds else t.kind != "singular")
        if method == "test_name":
            return self._tests(lambda m, t: fnmatch.fnmatchcase(t.kind if t.kind != "macro" else str(t.args.get("macro")), value)
                               or fnmatch.fnmatchcase(t.name, value))
        if method == "state":
            if self.state is None:
                raise PipelineError("state: selectors need a state to compare with", hint="pass --state REF (a branch, tag or hash)")
            kind = value.split(".")[0]
            if kind not in ("modified", "new", "unmodified", "old"):
                raise PipelineError(f"state:{value} is not one of state:modified, state:new, state:unmodified, state:old")
            return self.state(kind), None
        raise PipelineError(f"unknown selector method '{method}:'", hint="see `rat run --help` for the selector grammar")

    def _fqn(self, model: Model) -> list[str]:
        parts = list(model.path.with_suffix("").parts)
        if self.root is not None and model.path.is_relative_to(self.root):
            parts = list(model.path.relative_to(self.root).with_suffix("").parts)[1:]
        return [model.package or "", *parts[:-1], model.name]

    def _path_matches(self, path: Path, value: str) -> bool:
        rel = path.relative_to(self.root).as_posix() if self.root is not None and path.is_relative_to(self.root) else path.as_posix()
        wanted = value.rstrip("/")
        return rel == wanted or rel.startswith(wanted + "/") or fnmatch.fnmatchcase(rel, wanted)

    # -- graph operators ------------------------------------------------------------------------

    def _walk(self, start: set[str], graph: dict[str, set[str]], depth: int | None) -> set[str]:
        out, frontier, level = set(start), set(start), 0
        while frontier and (depth is None or level < depth):
            frontier = {n for f in frontier for n in graph.get(f, ())} - out
            out |= frontier
            level += 1
        return out

    def atom(self, text: str) -> tuple[set[str], set[TestKey] | None]:
        match = _ATOM_RE.match(text)
        if match is None:
            raise PipelineError(f"selector '{text}' is not valid", hint="e.g. name, +name, name+, 2+name, @name, tag:x, path:models/x")
        hits, tests = self.method(match.group("core"))
        if not hits and tests is None and not match.group("core").startswith("state:"):
            raise PipelineError(f"selector '{text}' matches no model", hint="use a model name, a table (layer.table), path:, tag:, config.x:")
        down_graph = self.dag.downstream
        if match.group("at"):
            hits = self._walk(hits, down_graph, None)
            hits = self._walk(hits, self.dag.upstream, None)
            return hits, tests
        up, down = match.group("up"), match.group("down")
        result = set(hits)
        if up is not None:
            result |= self._walk(hits, self.dag.upstream, int(up) if up else None)
        if down is not None:
            result |= self._walk(hits, down_graph, int(down) if down else None)
        if match.group("core").startswith("source:") and down is None:
            result = hits  # a source's direct children (sources are not runnable themselves)
        return result, tests

    def expression(self, term: str) -> tuple[set[str], set[TestKey] | None]:
        """`a,b,c`: the intersection of the atoms."""
        models: set[str] | None = None
        tests: set[TestKey] | None = None
        for part in term.split(","):
            hits, atom_tests = self.atom(part)
            models = hits if models is None else models & hits
            if atom_tests is not None:
                tests = atom_tests if tests is None else tests & atom_tests
        return models or set(), tests


def select(
    dag: Dag,
    selectors: list[str] | tuple[str, ...] = (),
    *,
    exclude: list[str] | tuple[str, ...] = (),
    state: StateOracle | None = None,
    root: Path | None = None,
) -> Selection:
    """Apply dbt's selection grammar; the result is in topological order."""
    sel = _Selector(dag, root, state)
    chosen: set[str] = set()
    tests: set[TestKey] | None = None
    test_models: set[str] = set()
    terms = [t for raw in selectors for t in raw.split()]
    if not terms:
        chosen = set(dag.models)
    for term in terms:
        models, term_tests = sel.expression(term)
        if term_tests is not None:
            tests = (tests or set()) | {t for t in term_tests if t[0] in models}
            test_models |= models
        else:
            chosen |= models
    for term in (t for raw in exclude for t in raw.split()):
        models, term_tests = sel.expression(term)
        if term_tests is not None and tests is not None:
            tests -= term_tests
        if term_tests is None:
            chosen -= models
            test_models -= models
    if tests is not None:
        # Tests of models selected as models run too (dbt: selecting a model selects its tests).
        tests |= {(m, t.name) for m in chosen for t in dag.models[m].all_tests()}
    order = dag.order(chosen | test_models)
    return Selection(models=order, tests=tests, test_only=test_models - chosen)


def _config_matches(model: Model, key: str, value: str) -> bool:
    native = {"materialized": model.materialized, "unique_key": model.unique_key, "incremental_strategy": model.strategy,
              "partition_by": model.partition_by, "tags": model.tags, "schema": model.layer, "layer": model.layer}
    actual = model.config.get(key, native.get(key))
    if isinstance(actual, (list, tuple)):
        return any(str(a) == value for a in actual)
    if isinstance(actual, bool):
        return str(actual).lower() == value.lower()
    return actual is not None and fnmatch.fnmatchcase(str(actual), value)


def state_oracle(session: Any, dag: Dag, ref: str | None = None) -> StateOracle:
    """`state:new` / `state:modified` against `ref` (default: the workspace branch), lazily computed.

    new: the model's table is not on `ref`. modified: new, or the run that left `ref`'s table
    (matched by snapshot id, or by the hash of a view's SQL) ran another definition (fingerprint,
    pipeline/model.py), or no run record says which definition it was. Ephemeral models compare
    with their newest successful run.
    """
    from ratatouille_nb.pipeline.runs import RunHistory, state_key

    cache: dict[str, set[str]] = {}

    def compute() -> None:
        contents = session.contents(ref or session.workspace.branch)
        history = RunHistory(session.settings.home)
        new, modified = set(), set()
        try:
            for name, model in dag.models.items():
                if model.materialized == "ephemeral":
                    recorded = history.fingerprint(session.workspace.name, model.target, None, model=name)
                    if recorded is None:
                        new.add(name)
                else:
                    entry = contents.get(model.target)
                    if entry is None:
                        new.add(name)
                        recorded = None
                    else:
                        recorded = history.fingerprint(session.workspace.name, model.target, state_key(entry))
                if recorded != model.fingerprint():
                    modified.add(name)
        finally:
            history.close()
        cache.update(new=new, modified=modified, old=set(dag.models) - new, unmodified=set(dag.models) - modified)

    def oracle(kind: str) -> set[str]:
        if not cache:
            compute()
        return set(cache[kind])

    return oracle

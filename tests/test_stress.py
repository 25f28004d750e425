"""Randomized stress test of parallel runs: any DAG, any selection, 1–4 workers, same result as serial.

Each random project has 5–30 models — views, tables, incremental merges, Python models appending
to their table, and models that fail on demand (`--vars fail=yes`) — over two Iceberg tables that
exist before the run (the reads that used to race: shared `layer.table` views rebound by every
model, the iceberg extension loading lazily). A first serial run commits every model's table;
then each trial runs a random selection twice from that same commit, on two branches: once one
model at a time, once with `max_parallel_pipelines` 1–4 in a fresh session (as `rat run` is: the
race showed on a session's first statements). The two must agree model for model
(status and error) and, when they succeed, row for row on every table they wrote. Size and seed:
STRESS_DAGS × STRESS_TRIALS runs (default 10 × 5 = 50), STRESS_SEED (default fixed, so a failure
reproduces; set another to explore).
"""

from __future__ import annotations

import os
import random
import textwrap
from dataclasses import dataclass
from pathlib import Path

from ratatouille_nb.engine.session import Session
from ratatouille_nb.pipeline.executor import Runner
from ratatouille_nb.pipeline.runs import RunRecord
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import init_workspace

DAGS = int(os.environ.get("STRESS_DAGS", "10"))
TRIALS = int(os.environ.get("STRESS_TRIALS", "5"))
SEED = int(os.environ.get("STRESS_SEED", "20261202"))
BASE = ("bronze.base_a", "bronze.base_b")


@dataclass(frozen=True)
class Spec:
    """One generated model: what it builds and the file that builds it."""

    name: str
    target: str
    kind: str  # view | table | incremental | python | failing
    inputs: tuple[str, ...]


def _sql(spec: Spec, rng: random.Random) -> str:
    parts = [f"SELECT k, v + {i} AS v FROM {{{{ ref('{src}') }}}}" for i, src in enumerate(spec.inputs)]
    modulus = rng.randint(5, 40)
    value = "sum(v)"
    if spec.kind == "failing":
        value = "sum(v) + {% if var('fail', 'no') == 'yes' %}CAST('boom' AS BIGINT){% else %}0{% endif %}"
    header = {"view": "-- @materialized: view\n", "incremental": "-- @materialized: incremental\n-- @unique_key: k\n"}.get(spec.kind, "")
    union = "\n  UNION ALL ".join(parts)
    return f"{header}SELECT k % {modulus} AS k, {value} AS v FROM (\n  {union}\n) AS t GROUP BY 1\n"


def _python(spec: Spec, rng: random.Random) -> str:
    rows, factor = rng.randint(10, 60), rng.randint(1, 9)
    return textwrap.dedent(f"""\
        import pyarrow as pa

        from ratatouille import pipeline


        @pipeline(name="{spec.name}", layer="bronze")
        def build():
            rat.append("{spec.target}", pa.table({{"k": list(range({rows})), "v": [i * {factor} for i in range({rows})]}}))
    """)


def generate(rng: random.Random, root: Path) -> list[Spec]:
    """Write a random project of 5–30 models under `root/pipelines`; return its models."""
    specs: list[Spec] = []
    for i in range(rng.randint(5, 30)):
        kind = rng.choices(["view", "table", "incremental", "python", "failing"], weights=[25, 35, 20, 12, 8])[0]
        if kind == "python":
            spec = Spec(f"bronze_py{i:02d}", f"bronze.py{i:02d}", kind, ())
            path = root / "pipelines" / "bronze" / f"py{i:02d}.py"
            path.write_text(_python(spec, rng))
        else:
            layer = rng.choice(["silver", "gold"])
            sources = [*BASE, *(s.target for s in specs)]
            inputs = tuple(rng.sample(sources, k=min(len(sources), rng.randint(1, 3))))
            spec = Spec(f"{layer}_m{i:02d}", f"{layer}.m{i:02d}", kind, inputs)
            (root / "pipelines" / layer / f"m{i:02d}.sql").write_text(_sql(spec, rng))
        specs.append(spec)
    return specs


def _selection(rng: random.Random, specs: list[Spec]) -> list[str]:
    choice = rng.random()
    if choice < 0.2:
        return []
    if choice < 0.35:
        return [f"layer:{rng.choice(sorted({s.target.split('.')[0] for s in specs}))}"]
    picked = rng.sample(specs, k=rng.randint(1, min(3, len(specs))))
    return [rng.choice(["", "+"]) + s.name + rng.choice(["", "+"]) for s in picked]


def _run(session: Session, workers: int, branch: str, selectors: list[str], variables: dict[str, str]) -> RunRecord:
    session.resources = session.resources.model_copy(update={"max_parallel_pipelines": workers})
    return Runner(session).run(selectors, branch=branch, variables=variables)


def _rows(session: Session, table: str, ref: str) -> list[tuple[object, ...]]:
    return sorted(session.sql(f"SELECT * FROM {table}", ref=ref).relation.fetchall())


def _outcome(record: RunRecord) -> dict[str, tuple[str, str | None]]:
    return {m.model: (m.status, m.error) for m in record.models}


def test_parallel_runs_match_serial_runs(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    runs = parallel_trials = 0
    for dag in range(DAGS):
        settings = Settings.from_env(home=str(tmp_path / f"home{dag}"))
        workspace = init_workspace(tmp_path / f"ws{dag}", settings, name=f"ws{dag}")
        specs = generate(rng, workspace.root)
        with Session(settings, workspace) as session:
            for table in BASE:
                session.sql(f"CREATE TABLE {table} AS SELECT i AS k, (i * 7) % 100 AS v FROM range({rng.randint(50, 300)}) t(i)")
            base = _run(session, 1, session.branch, [], {})
            assert base.status == "success", base.error
            base_hash = session.store.get_reference(session.branch).hash
            for trial in range(TRIALS):
                selectors = _selection(rng, specs)
                variables = {"fail": "yes"} if rng.random() < 0.25 else {}
                workers = rng.randint(1, 4)
                serial_branch, parallel_branch = f"serial-{trial}", f"parallel-{trial}"
                session.store.create_reference(serial_branch, "branch", base_hash)
                session.store.create_reference(parallel_branch, "branch", base_hash)
                where = f"dag {dag} ({len(specs)} models), trial {trial}: {selectors or '(all)'} with {workers} workers, vars {variables}"
                serial = _run(session, 1, serial_branch, selectors, variables)
                with Session(settings, workspace) as fresh:
                    parallel = _run(fresh, workers, parallel_branch, selectors, variables)
                runs += 1
                parallel_trials += workers > 1
                assert _outcome(parallel) == _outcome(serial), where
                assert parallel.status == serial.status, where
                serial_contents = session.store.contents(serial_branch)
                parallel_contents = session.store.contents(parallel_branch)
                assert set(serial_contents) == set(parallel_contents), where
                if serial.status != "success":
                    assert session.store.get_reference(parallel_branch).hash == base_hash, where
                    assert any(m.error and "boom" in m.error for m in parallel.models), where
                    continue
                for model in parallel.models:
                    for table in {model.target, *(s.target for s in specs if s.name == model.model)}:
                        assert _rows(session, table, parallel_branch) == _rows(session, table, serial_branch), f"{where}: {table}"
    assert runs == DAGS * TRIALS
    assert parallel_trials >= runs // 2

"""A workspace's pipelines as Dagster assets (the optional `ratatouille_nb[dagster]` extra).

- One asset per model, keyed by its table (`bronze.raw_sales` -> `AssetKey(["bronze", "raw_sales"])`),
  grouped by layer, with deps from the DAG (`ref()` and `depends_on`) and the model's columns,
  owner and file as metadata. Tables a model reads but no model builds appear as external assets.
- All of a workspace's assets are one subsettable multi-asset, so **one Dagster run is one
  `rat build`**: the selected models run through the same `Runner` as `rat build` (in DAG order,
  in parallel up to the profile's `max_parallel_pipelines`, inside the profile's memory budget),
  their data tests run on the temporary build branch, and the branch gets one merge — or, if a
  model or an error-level test fails, nothing at all and the Dagster step fails with the reason.
  (One op per model would make every model its own process and commit: N x the ~270 MB Python
  baseline plus N DuckDB buffer pools, half-published states between steps, and no audit.)
- Each model's data tests are one asset check, `rat_tests`, reported with the materialization.
- One `ScheduleDefinition` per distinct cron found on models (`@pipeline(schedule=...)` in Python,
  `schedule:` in YAML or `-- @schedule:` in SQL). A schedule builds its models and everything
  downstream of them that has no schedule of its own.

Run config (`RatRunConfig`): `full_refresh`, `variables` (as `rat build --vars`), and
`test: false` to skip the audit (like `rat run`: one commit straight to the branch, checks not run).
"""

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg

from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.dag import Dag, build_dag
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.loader import load_project, model_line
from ratatouille_nb.pipeline.model import Model
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, find_workspace

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.quality import TestResult
    from ratatouille_nb.pipeline.runs import ModelRun, RunRecord

RESOURCE_KEY = "rat"
TESTS_CHECK = "rat_tests"
_NAME_RE = re.compile(r"[^A-Za-z0-9_]")
_TAG_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEAM_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class RatResource(dg.ConfigurableResource):
    """Which lakehouse and workspace a run writes to; unset fields fall back to RAT_* variables.

    Catalog and storage settings (`RAT_CATALOG`, `NESSIE_URI`, `RAT_WAREHOUSE`, `S3_*`) always come
    from the environment of the process that runs the step, so no secret lands in run config.
    """

    home: str | None = None
    workspace: str | None = None
    branch: str | None = None
    profile: str | None = None

    def settings(self) -> Settings:
        return Settings.from_env(home=self.home, workspace=self.workspace, branch=self.branch, profile=self.profile)

    @contextmanager
    def session(self) -> Iterator["Session"]:
        from ratatouille_nb.verbs.session import open_session

        s = self.settings()
        session = open_session(home=str(s.home), workspace=self.workspace, branch=self.branch, profile=self.profile)
        try:
            yield session
        finally:
            session.close()


class RatRunConfig(dg.Config):
    """Per-run options, the same as `rat build`'s flags."""

    full_refresh: bool = False
    variables: dict[str, str] = {}  # noqa: RUF012 - pydantic (dg.Config) copies field defaults
    test: bool = True


def asset_key(table: str) -> dg.AssetKey:
    """`layer.table` -> `AssetKey(["layer", "table"])`."""
    return dg.AssetKey(table.split(".", 1))


def dagster_name(text: str) -> str:
    """A Dagster-safe identifier (letters, digits, `_`)."""
    out = _NAME_RE.sub("_", text).strip("_")
    return out or "rat"


def build_definitions(settings: Settings | None = None, workspace: Workspace | None = None) -> dg.Definitions:
    """Dagster definitions for one workspace: its assets, checks, schedules and the `rat` resource.

    The workspace is `RAT_WORKSPACE` (a folder or a name under `RAT_HOME/workspaces`), else the
    nearest `workspace.yaml` upward from the current directory.
    """
    settings = settings or Settings.from_env()
    workspace = workspace or find_workspace(settings)
    project = load_project(workspace.root)
    dag = build_dag(project)
    resource = RatResource(
        home=str(settings.home), workspace=str(workspace.root), branch=settings.branch, profile=settings.profile
    )
    if not dag.models:
        return dg.Definitions(resources={RESOURCE_KEY: resource})
    assets = workspace_assets(workspace, dag)
    _jobs, schedules = workspace_schedules(workspace, dag)
    return dg.Definitions(assets=[assets], schedules=schedules, resources={RESOURCE_KEY: resource})


# -- assets -------------------------------------------------------------------------------------


def _code_version(model: Model) -> str:
    digest = hashlib.sha256()
    for path in (model.path, model.yaml_path):
        if path is not None and path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _owners(model: Model) -> list[str]:
    owner = (model.owner or "").strip()
    if _EMAIL_RE.match(owner):
        return [owner]
    if _TEAM_RE.match(owner):
        return [f"team:{owner}"]
    return []


def _test_names(model: Model) -> list[str]:
    names = [t.name for t in model.all_tests()]
    if model.freshness is not None:
        names.append("freshness")
    return names


def _spec(workspace: Workspace, dag: Dag, model: Model) -> dg.AssetSpec:
    deps = {asset_key(dag.models[up].target) for up in dag.upstream.get(model.name, ())}
    deps |= {asset_key(ref) for ref in dag.external.get(model.name, ()) if "." in ref}
    try:
        where = str(model.path.relative_to(workspace.root))
    except ValueError:
        where = str(model.path)
    metadata: dict[str, Any] = {
        "dagster/table_name": model.target,
        "rat/pipeline": model.name,
        "rat/file": f"{where}:{model_line(model)}",
        "rat/materialized": model.materialized,
        "rat/workspace": workspace.name,
    }
    if model.materialized == "incremental":
        metadata["rat/strategy"] = model.strategy
    if model.unique_key:
        metadata["rat/unique_key"] = ", ".join(model.unique_key)
    if model.schedule:
        metadata["rat/schedule"] = model.schedule
    if model.owner:
        metadata["rat/owner"] = model.owner
    if len(model.produces) > 1 or model.produces != [model.target]:
        metadata["rat/produces"] = ", ".join(model.produces)
    if model.columns:
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[dg.TableColumn(name=c.name, type=c.type or "unknown", description=c.description) for c in model.columns]
        )
    return dg.AssetSpec(
        key=asset_key(model.target),
        deps=sorted(deps, key=lambda k: k.to_user_string()),  # type: ignore[union-attr]
        description=model.description or f"{model.kind} pipeline {model.name} ({where})",
        group_name=model.layer,
        kinds={model.kind, "duckdb", "iceberg"},
        code_version=_code_version(model),
        owners=_owners(model),
        tags={t: "" for t in model.tags if _TAG_RE.match(t)},
        metadata=metadata,
        skippable=True,
    )


def workspace_assets(workspace: Workspace, dag: Dag) -> dg.AssetsDefinition:
    """All models of the workspace as one subsettable multi-asset (one Dagster step = one `rat build`)."""
    models = [dag.models[name] for name in dag.order()]
    names_by_key = {asset_key(m.target): m.name for m in models}
    specs = [_spec(workspace, dag, m) for m in models]
    check_specs = [
        dg.AssetCheckSpec(
            TESTS_CHECK,
            asset=asset_key(m.target),
            description="The model's data tests: " + ", ".join(_test_names(m)),
        )
        for m in models
        if _test_names(m)
    ]

    @dg.multi_asset(
        name=f"rat_{dagster_name(workspace.name)}",
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        description=f"Ratatouille workspace '{workspace.name}' ({workspace.root}): one run = one `rat build` of the selection.",
    )
    def _rat_build(context: dg.AssetExecutionContext, config: RatRunConfig, rat: RatResource) -> Iterator[Any]:
        yield from materialize_selection(context, config, rat, names_by_key)

    return _rat_build


def materialize_selection(
    context: dg.AssetExecutionContext, config: RatRunConfig, rat: RatResource, names_by_key: dict[dg.AssetKey, str]
) -> Iterator[Any]:
    """Build the selected models in one transaction and report one result per asset (and check)."""
    from ratatouille_nb.verbs import pipelines

    wanted = set(context.selected_asset_keys)
    selected = [name for key, name in names_by_key.items() if key in wanted]  # names_by_key is in DAG order
    checks = {key.asset_key for key in context.selected_asset_check_keys}
    command = "build" if config.test else "run"
    lock = threading.Lock()

    def on_event(kind: str, run: "ModelRun") -> None:
        with lock:
            if kind == "start":
                context.log.info(f"{run.model} -> {run.target}: started")
            elif kind == "done":
                context.log.info(f"{run.model} -> {run.target}: {run.operation}, {run.rows_written:,} rows in {run.seconds:.2f}s")
            elif kind == "fail":
                context.log.error(f"{run.model} -> {run.target}: {run.error}")
            else:
                context.log.warning(f"{run.model} -> {run.target}: skipped ({run.error})")

    if not config.test and checks:
        context.log.info("test: false - the models' data tests (asset checks) are not run")
    with rat.session() as session:
        branch = session.branch
        context.log.info(f"rat {command} {' '.join(selected)} on '{branch}' (workspace {session.workspace.name}, profile {session.resources.name})")
        variables = dict(config.variables) or None
        tests: list[TestResult] = []
        try:
            runner = pipelines.runner(session)
            if config.test:
                result = pipelines.build(session, selected, full_refresh=config.full_refresh, variables=variables, on_event=on_event, using=runner)
                record, tests = result.run, result.tests
                published, reason = result.published, result.reason
                commit = result.merge.commit.hash if result.merge is not None else None
            else:
                record = pipelines.run(session, selected, full_refresh=config.full_refresh, variables=variables, on_event=on_event, using=runner)
                published = record.status == "success"
                reason = f"the run failed ({record.error}); nothing was committed to '{branch}'"
                commit = record.commit_hash
        except RatError as exc:
            raise dg.Failure(description=f"rat {command} on '{branch}' failed: {exc}") from exc
        assert record is not None

        by_model: dict[str, list[TestResult]] = {}
        for t in tests:
            by_model.setdefault(t.model, []).append(t)
        if not published:
            for run in record.models:
                key = asset_key(run.target)
                if key in checks and run.model in by_model:
                    yield _check_result(key, by_model[run.model])
            raise dg.Failure(description=f"rat {command}: {reason}", metadata=_failure_metadata(record, tests))
        for run in record.models:
            key = asset_key(run.target)
            if key not in names_by_key:  # pragma: no cover - a model added since the definitions loaded
                continue
            check_results = [_check_result(key, by_model.get(run.model, []))] if key in checks and config.test else []
            yield dg.MaterializeResult(asset_key=key, metadata=_run_metadata(record, run, branch, commit), check_results=check_results)


def _run_metadata(record: "RunRecord", run: "ModelRun", branch: str, commit: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "rows_written": run.rows_written,
        "operation": run.operation,
        "seconds": round(run.seconds, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "rat/branch": branch,
        "rat/run_id": record.run_id,
    }
    if run.rows_updated:
        meta["rows_updated"] = run.rows_updated
    if run.snapshot_id is not None:
        meta["rat/snapshot_id"] = str(run.snapshot_id)
    if commit:
        meta["rat/commit"] = commit
    return meta


def _check_result(key: dg.AssetKey, results: list["TestResult"]) -> dg.AssetCheckResult:
    failing = [t for t in results if t.status != "pass"]
    blocking = [t for t in failing if t.blocking]
    rows = "\n".join(f"| {t.test} | {t.status} | {t.failing} | {t.message.replace('|', '/')} |" for t in failing)
    metadata: dict[str, Any] = {"tests": len(results), "passed": len(results) - len(failing)}
    if failing:
        metadata["not passing"] = dg.MetadataValue.md("| test | status | failing rows | message |\n|---|---|---|---|\n" + rows)
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=TESTS_CHECK,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _failure_metadata(record: "RunRecord", tests: list["TestResult"]) -> dict[str, Any]:
    lines = ["| model | table | status | error |", "|---|---|---|---|"]
    for m in record.models:
        lines.append(f"| {m.model} | {m.target} | {m.status} | {(m.error or '').replace('|', '/')} |")
    meta: dict[str, Any] = {"rat/run_id": record.run_id, "models": dg.MetadataValue.md("\n".join(lines))}
    failed = [t for t in tests if t.blocking]
    if failed:
        meta["failed tests"] = dg.MetadataValue.md("\n".join(f"- {t.model} {t.test}: {t.message}" for t in failed))
    return meta


# -- schedules ----------------------------------------------------------------------------------


def schedule_groups(dag: Dag) -> dict[str, list[str]]:
    """cron -> the models it builds: the models declaring it and their unscheduled downstream models."""
    down = dag.downstream
    groups: dict[str, set[str]] = {}
    for name in dag.order():
        cron = dag.models[name].schedule
        if not cron:
            continue
        chosen = groups.setdefault(cron.strip(), set())
        stack = [name]
        while stack:
            current = stack.pop()
            if current in chosen:
                continue
            chosen.add(current)
            stack.extend(n for n in down.get(current, ()) if not dag.models[n].schedule)
    return {cron: dag.order(names) for cron, names in sorted(groups.items())}


def _cron_slug(cron: str) -> str:
    named = {"0 * * * *": "hourly", "@hourly": "hourly", "0 0 * * *": "daily", "@daily": "daily", "@weekly": "weekly", "@monthly": "monthly"}
    return named.get(cron, dagster_name(cron.replace("*/", "every").replace("*", "x").replace("/", "_every")))


def workspace_schedules(workspace: Workspace, dag: Dag) -> tuple[list[Any], list[dg.ScheduleDefinition]]:
    """One asset job and one schedule per distinct cron declared on the workspace's models."""
    jobs: list[Any] = []
    schedules: list[dg.ScheduleDefinition] = []
    used: set[str] = set()
    for cron, names in schedule_groups(dag).items():
        base = f"rat_{dagster_name(workspace.name)}_{_cron_slug(cron)}"
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        keys = [asset_key(dag.models[m].target) for m in names]
        job = dg.define_asset_job(
            f"{name}_job",
            selection=dg.AssetSelection.assets(*keys),
            description=f"rat build {' '.join(names)} (schedule '{cron}')",
        )
        declared = [m for m in names if (dag.models[m].schedule or "").strip() == cron]
        try:
            schedule = dg.ScheduleDefinition(
                name=name,
                cron_schedule=cron,
                job=job,
                description=f"'{cron}': {', '.join(declared)} and their unscheduled downstream models",
            )
        except dg.DagsterInvalidDefinitionError as exc:
            model = dag.models[declared[0]]
            path = model.yaml_path if model.yaml_path is not None and "schedule" in model.yaml_path.read_text() else model.path
            raise PipelineError(
                f"schedule '{cron}' of pipeline '{model.name}' is not a valid cron expression",
                path=path,
                line=_schedule_line(path),
                hint="use five cron fields (e.g. '0 * * * *' for hourly) or @hourly/@daily/@weekly/@monthly",
            ) from exc
        jobs.append(job)
        schedules.append(schedule)
    return jobs, schedules


def _schedule_line(path: Any) -> int | None:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if "schedule" in line:
            return number
    return None

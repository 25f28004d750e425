"""Run models in DAG order inside one branch transaction: the whole run is one atomic commit.

Independent models run in parallel (up to the profile's `max_parallel_pipelines`), each in its own
scope (`Session.scope()`: a cursor with a private catalog for its `layer.table` views, so models
never rebind each other's views). A model reads exactly the run's base tables plus what its
upstream models staged (not yet committed), whatever runs beside it.
If any model fails, nothing is committed and the files written by the run are removed.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.dag import Dag, build_dag
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.loader import Project, load_project
from ratatouille_nb.pipeline.model import Model
from ratatouille_nb.pipeline.readers import LANDING_READERS
from ratatouille_nb.pipeline.runs import ModelRun, RunRecord, save_run, state_key
from ratatouille_nb.pipeline.state import RunState
from ratatouille_nb.pipeline.templating import RenderContext

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session

Event = Callable[[str, ModelRun], None]


class Runner:
    """Builds the selected models of a workspace on a branch."""

    def __init__(self, session: Session, project: Project | None = None) -> None:
        self.session = session
        self.project = project or load_project(session.workspace.root)
        self.dag: Dag = build_dag(self.project)

    # -- public -------------------------------------------------------------------------------

    def run(
        self,
        selectors: list[str] | tuple[str, ...] = (),
        *,
        full_refresh: bool = False,
        variables: dict[str, Any] | None = None,
        branch: str | None = None,
        command: str = "run",
        on_event: Event | None = None,
        exclude: list[str] | tuple[str, ...] = (),
        state: str | None = None,
    ) -> RunRecord:
        """Run models; returns the run record (status 'success' or 'failed'; failed runs commit nothing).

        `selectors` / `exclude` follow dbt's grammar (pipeline/selectors.py); `state` is the ref
        `state:modified` / `state:new` compare with (default: the workspace branch).
        """
        names = self.select(selectors, exclude=exclude, state=state)
        branch = branch or self.session.branch
        record = RunRecord(self.session.workspace.name, branch, command, list(selectors))
        record.models = [ModelRun(model=n, target=self.dag.models[n].target, fingerprint=self.dag.models[n].fingerprint()) for n in names]
        txn = self.session.transaction(f"rat {command} {' '.join(selectors) or '(all)'}".strip(), branch=branch)
        run_state = RunState(self.session, txn, self.project, full_refresh, dict(variables or {}))
        try:
            self._check_external_refs(names, txn.contents())
            self.session.allow_pins(self._reads(names, txn.contents()))
            self._execute(run_state, names, {m.model: m for m in record.models}, on_event)
            failed = [m for m in record.models if m.status == "failed"]
            if failed:
                txn.abort()
                record.status = "failed"
                record.error = f"{failed[0].model}: {failed[0].error}"
            else:
                staged = txn.contents()
                commit = txn.commit()
                record.status = "success"
                record.commit_hash = commit.hash if commit else None
                final = commit.contents if commit is not None else staged
                for m in record.models:
                    entry = final.get(m.target)
                    m.snapshot_id = entry.snapshot_id if entry else None
                    m.state_key = state_key(entry) if self.dag.models[m.model].materialized != "ephemeral" else None
        except BaseException as exc:
            txn.abort()
            record.status = "failed"
            record.error = str(exc)
            raise
        finally:
            record.finished_at = time.time()
            save_run(self.session.settings.home, record)  # never raises: a landed commit stays reported as landed
        return record

    def select(self, selectors: list[str] | tuple[str, ...] = (), *, exclude: list[str] | tuple[str, ...] = (), state: str | None = None) -> list[str]:
        """The models a run of these selectors builds, in topological order."""
        from ratatouille_nb.pipeline.selectors import state_oracle

        oracle = state_oracle(self.session, self.dag, state)
        return self.dag.select(list(selectors), exclude=list(exclude), state=oracle, root=self.session.workspace.root)

    # -- scheduling ---------------------------------------------------------------------------

    def _check_external_refs(self, names: list[str], contents: dict[str, TableEntry]) -> None:
        aliases = None
        for name in names:
            for ref in sorted(self.dag.external.get(name, ())):
                if ref.startswith("products."):
                    continue  # resolved (version, access) when the model renders
                if ref not in contents:
                    aliases = self.session.products.aliases() if aliases is None else aliases
                    if ref in aliases:
                        continue
                    model = self.dag.models[name]
                    raise PipelineError(
                        f"ref('{ref}') matches no model and no table on branch '{self.session.branch}'",
                        path=model.path,
                        line=_line_of(model, ref),
                        hint="check the name (layer.table or a pipeline name)",
                    )

    def _reads(self, names: list[str], contents: dict[str, TableEntry]) -> dict[str, TableEntry]:
        """Tables of the branch the selected models name (by ref() or in their SQL): the sandbox must reach them."""
        from ratatouille_nb.engine.scope import referenced

        out: dict[str, TableEntry] = {}
        for name in names:
            model = self.dag.models[name]
            out.update(referenced(" ".join([model.sql or "", *self.dag.external.get(name, ())]), contents))
        return out

    def _execute(self, state: RunState, names: list[str], runs: dict[str, ModelRun], on_event: Event | None) -> None:
        selected = set(names)
        pending = list(names)
        done: set[str] = set()
        failed: set[str] = set()
        workers = max(1, self.session.resources.max_parallel_pipelines)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rat-model") as pool:
            running: dict[Future[None], str] = {}
            while pending or running:
                for name in list(pending):
                    ups = self.dag.upstream.get(name, set()) & selected
                    if ups & failed:
                        runs[name].status = "skipped"
                        runs[name].error = "upstream failed"
                        pending.remove(name)
                        failed.add(name)
                        if on_event:
                            on_event("skip", runs[name])
                    elif ups <= done and len(running) < workers:
                        pending.remove(name)
                        ctx = contextvars.copy_context()
                        running[pool.submit(ctx.run, self._run_one, state, self.dag.models[name], runs[name], on_event)] = name
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    future.result()
                    (done if runs[name].status == "success" else failed).add(name)

    def _run_one(self, state: RunState, model: Model, run: ModelRun, on_event: Event | None) -> None:
        run.status = "running"
        if on_event:
            on_event("start", run)
        if len(self.dag.models) == 1 or self.session.resources.max_parallel_pipelines == 1:
            reset_peak()
        started = time.perf_counter()
        try:
            outcome = self._materialize(state, model, run)
            run.operation, run.rows_written, run.rows_updated = outcome
            run.status = "success"
        except RatError as exc:
            run.status, run.error, run.exception = "failed", str(exc), exc
        except Exception as exc:  # noqa: BLE001 - a user's Python pipeline may raise anything
            run.status, run.error, run.exception = "failed", f"{type(exc).__name__}: {exc}", exc
        run.seconds = time.perf_counter() - started
        run.peak_rss_mb = peak_rss_mb()
        if on_event:
            on_event("done" if run.status == "success" else "fail", run)

    # -- one model ----------------------------------------------------------------------------

    def visible(self, state: RunState, model: Model) -> dict[str, TableEntry]:
        """The tables `model` reads: the run's base commit plus what its upstream models (and it) staged."""
        ups = self.dag.closure(model.name, "up") | {model.name}
        written = {t for name in ups if name in self.dag.models for t in self.dag.models[name].produces}
        with state.txn.lock:
            base, staged = dict(state.txn.tables.base), dict(state.txn.tables.staged)
        merged = {**base, **{k: v for k, v in staged.items() if k in written}}
        return {k: v for k, v in merged.items() if v is not None}

    def render(
        self,
        state: RunState,
        model: Model,
        *,
        incremental: bool,
        cursor: Any = None,
        bind: Callable[[str], None] | None = None,
        ctes: dict[str, str] | None = None,
    ) -> str:
        """Compile a SQL model against what it may read (`visible`).

        `ref()` of an ephemeral model renders that model too and inlines it as a CTE (dbt's
        `__dbt__cte__<name>`); `bind` makes tables visible to `cursor` for `run_query` and the
        watermark (the model's ModelContext provides both).
        """
        contents = self.visible(state, model)
        by_target = self.project.by_target()
        top = ctes is None
        ctes = {} if ctes is None else ctes

        def bound(sql: str) -> None:
            if bind is not None:
                bind(sql)
            else:
                with state.bind_lock:
                    state.session.bind(sql, contents)

        def resolve_ref(key: str) -> str:
            product = self._product_ref(key, contents)
            if product is not None:
                if run is not None:
                    run.reads[product] = contents[product].snapshot_id
                return product
            upstream = self.project.models.get(key)
            if upstream is not None and upstream.materialized == "ephemeral":
                name = f"__dbt__cte__{upstream.name}"
                if name not in ctes:
                    ctes[name] = ""  # placeholder: keeps dependency order and stops cycles
                    ctes[name] = self.render(state, upstream, incremental=False, cursor=cursor, bind=bind, ctes=ctes)
                return name
            target = upstream.target if upstream is not None else key
            if upstream is not None and target not in contents:
                raise PipelineError(
                    f"ref('{key}'): {target} has not been built on '{state.txn.branch}'",
                    path=model.path,
                    line=_line_of(model, key),
                    hint=f"run it too (`rat run +{model.name}`)" + (" or load it with `rat seed`" if upstream.resource_type == "seed" else ""),
                )
            if target in by_target or target in contents:
                if run is not None:
                    run.reads[target] = contents[target].snapshot_id if target in contents else None
                return target
            raise PipelineError(f"ref('{key}') matches no model and no table", path=model.path, line=_line_of(model, key))

        def resolve_source(rel: str) -> str:
            declared = self.project.source_relation(rel)
            if declared is not None:
                if run is not None and declared in contents:
                    run.reads[declared] = contents[declared].snapshot_id
                return declared
            if self.project.is_dbt:
                src, _, table = rel.partition("/")
                raise PipelineError(f"source('{src}', '{table}') is not declared in any sources .yml", path=model.path)
            return self.source_sql(state, rel)

        def watermark(column: str) -> Any:
            if model.target not in contents or cursor is None:
                return ""
            bound(model.target)
            value = scalar(cursor, f'SELECT max("{column}") FROM {model.target}')
            return "" if value is None else str(value)

        def run_query(sql: str) -> Any:
            from ratatouille_nb.pipeline.agate import RUN_QUERY_MAX_ROWS, AgateTable

            if cursor is None:
                return AgateTable([], [])
            bound(sql)
            try:
                result = cursor.execute(sql)
                names = [d[0] for d in result.description or []]
                rows = result.fetchmany(RUN_QUERY_MAX_ROWS + 1)
            except duckdb.Error as exc:
                from ratatouille_nb.engine.duckerrors import duck_error

                raise duck_error(exc, sql) from None
            if len(rows) > RUN_QUERY_MAX_ROWS:
                raise PipelineError(f"run_query returned more than {RUN_QUERY_MAX_ROWS:,} rows: aggregate in SQL instead", path=model.path)
            return AgateTable(names, rows)

        def describe(sql: str) -> list[tuple[str, str]]:
            if cursor is None:
                return []
            bound(sql)
            return [(str(r[0]), str(r[1])) for r in cursor.execute(f"DESCRIBE {sql}").fetchall()]

        run = _CURRENT_MODEL_RUN.get(None)
        ctx = RenderContext(
            model_name=model.name,
            this=model.target,
            resolve_ref=resolve_ref,
            resolve_source=resolve_source,
            incremental=incremental,
            watermark=watermark,
            variables={**self.project.variables, **state.variables},
            model_config=dict(model.config),
            execute=True,
            run_query=run_query,
            describe=describe,
            packages=frozenset(self.project.packages),
        )
        assert self.project.templates is not None
        sql = self.project.templates.render(model.path, model.sql or "", ctx).strip().rstrip(";").strip()
        if not sql:
            raise PipelineError("the model renders to an empty statement", path=model.path)
        if top and ctes:
            with_list = ",\n".join(f"{name} AS (\n{body}\n)" for name, body in ctes.items())
            sql = f"WITH {with_list}\nSELECT * FROM (\n{sql}\n) AS __dbt__model"
        return sql

    def _product_ref(self, key: str, contents: dict[str, TableEntry]) -> str | None:
        """`products.<name>` or a subscription alias -> the pinned product view (added to `contents`)."""
        from ratatouille_nb.pipeline.names import resolve_name

        aliases = self.session.products.aliases() if "." not in key and key not in self.project.models else {}
        found = resolve_name(key, project=self.project, aliases=aliases)
        if found is None or not found.startswith("products."):
            return None
        contents.update(self.session.products.entries({found.split(".", 1)[1]}))
        return found

    def source_sql(self, state: RunState, relative: str) -> str:
        """`source('landing/sales/*.csv')` -> a DuckDB reader over those files."""
        path = state.storage_path(relative)
        suffix = Path(relative.rstrip("*")).suffix.lower() or Path(relative).suffix.lower()
        reader = LANDING_READERS.get(suffix)
        if reader is None:
            raise PipelineError(f"source('{relative}'): cannot read '{suffix or 'no extension'}' files", hint=f"supported: {', '.join(LANDING_READERS)}")
        return reader.format(files="'" + path.replace("'", "''") + "'")

    def _materialize(self, state: RunState, model: Model, run: ModelRun) -> tuple[str, int, int]:
        """Run one model through its registered materialization (pipeline/materializations/)."""
        from ratatouille_nb.engine.incremental import IncrementalWriter
        from ratatouille_nb.pipeline.materializations import ModelContext, materialization

        token = _CURRENT_MODEL_RUN.set(run)
        try:
            with state.session.scope() as scope:  # this model's own cursor and catalog (engine/scope.py)
                writer = IncrementalWriter(scope.cursor, state.txn, state.session.resources, spill_dir=state.session.spill_dir)
                ctx = ModelContext(
                    state=state,
                    model=model,
                    run=run,
                    cursor=scope.cursor,
                    writer=writer,
                    render_sql=lambda ctx, incremental: self.render(state, model, incremental=incremental, cursor=ctx.cursor, bind=ctx.bind),
                    scope=scope,
                    visible=lambda: self.visible(state, model),
                )
                kind = "python" if model.kind == "python" else model.materialized
                out = materialization(kind).run(ctx)
                return out.operation, out.rows, out.updated
        finally:
            _CURRENT_MODEL_RUN.reset(token)


_CURRENT_MODEL_RUN: contextvars.ContextVar[ModelRun] = contextvars.ContextVar("rat_model_run")


def _line_of(model: Model, needle: str) -> int | None:
    for number, line in enumerate((model.sql or "").splitlines(), start=1):
        if needle in line:
            return number
    return None

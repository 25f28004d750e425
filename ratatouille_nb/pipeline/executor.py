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

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.dag import Dag, build_dag
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.loader import Project, load_project
from ratatouille_nb.pipeline.model import Model
from ratatouille_nb.pipeline.pyerrors import user_code_error
from ratatouille_nb.pipeline.runs import ModelRun, RunRecord, save_run
from ratatouille_nb.pipeline.state import CURRENT_RUN, RunState
from ratatouille_nb.pipeline.templating import RenderContext

if TYPE_CHECKING:
    from ratatouille_nb.engine.scope import Scope
    from ratatouille_nb.engine.session import Session

Event = Callable[[str, ModelRun], None]
LANDING_READERS = {
    ".csv": "read_csv({files}, union_by_name=true)",
    ".tsv": "read_csv({files}, union_by_name=true, delim='\\t')",
    ".parquet": "read_parquet({files}, union_by_name=true)",
    ".json": "read_json_auto({files})",
    ".jsonl": "read_json_auto({files})",
    ".ndjson": "read_json_auto({files})",
}


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
    ) -> RunRecord:
        """Run models; returns the run record (status 'success' or 'failed'; failed runs commit nothing)."""
        names = self.dag.select(list(selectors))
        branch = branch or self.session.branch
        record = RunRecord(self.session.workspace.name, branch, command, list(selectors))
        record.models = [ModelRun(model=n, target=self.dag.models[n].target) for n in names]
        txn = self.session.transaction(f"rat {command} {' '.join(selectors) or '(all)'}".strip(), branch=branch)
        state = RunState(self.session, txn, self.project, full_refresh, dict(variables or {}))
        try:
            self._check_external_refs(names, txn.contents())
            self.session.allow_pins(self._reads(names, txn.contents()))
            self._execute(state, names, {m.model: m for m in record.models}, on_event)
            failed = [m for m in record.models if m.status == "failed"]
            if failed:
                txn.abort()
                record.status = "failed"
                record.error = f"{failed[0].model}: {failed[0].error}"
            else:
                commit = txn.commit()
                record.status = "success"
                record.commit_hash = commit.hash if commit else None
                if commit is not None:
                    for m in record.models:
                        entry = commit.contents.get(m.target)
                        m.snapshot_id = entry.snapshot_id if entry else None
        except BaseException as exc:
            txn.abort()
            record.status = "failed"
            record.error = str(exc)
            raise
        finally:
            record.finished_at = time.time()
            save_run(self.session.settings.home, record)  # never raises: a landed commit stays reported as landed
        return record

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
            with state.session.scope() as scope:
                outcome = self._materialize(state, model, run, scope)
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

    def render(self, state: RunState, model: Model, *, incremental: bool, scope: Scope | None = None) -> str:
        """Compile a SQL model against what it may read (`visible`)."""
        contents = self.visible(state, model)
        by_target = self.project.by_target()

        def resolve_ref(key: str) -> str:
            product = self._product_ref(key, contents)
            if product is not None:
                if run is not None:
                    run.reads[product] = contents[product].snapshot_id
                return product
            target = self.project.models[key].target if key in self.project.models else key
            if target in by_target or target in contents:
                if run is not None:
                    run.reads[target] = contents[target].snapshot_id if target in contents else None
                return target
            raise PipelineError(f"ref('{key}') matches no model and no table", path=model.path, line=_line_of(model, key))

        def resolve_source(rel: str) -> str:
            return self.source_sql(state, rel)

        def watermark(column: str) -> Any:
            if model.target not in contents or scope is None:
                return ""
            scope.bind(model.target, contents)
            value = scalar(scope.cursor, f'SELECT max("{column}") FROM {model.target}')
            return "" if value is None else str(value)

        run = _CURRENT_MODEL_RUN.get(None)
        ctx = RenderContext(
            model_name=model.name,
            this=model.target,
            resolve_ref=resolve_ref,
            resolve_source=resolve_source,
            incremental=incremental,
            watermark=watermark,
            variables=state.variables,
        )
        assert self.project.templates is not None
        sql = self.project.templates.render(model.path, model.sql or "", ctx).strip().rstrip(";").strip()
        if not sql:
            raise PipelineError("the model renders to an empty statement", path=model.path)
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

    def _materialize(self, state: RunState, model: Model, run: ModelRun, scope: Scope) -> tuple[str, int, int]:
        from ratatouille_nb.engine.incremental import IncrementalWriter

        token = _CURRENT_MODEL_RUN.set(run)
        cursor = scope.cursor
        try:
            writer = IncrementalWriter(cursor, state.txn, state.session.resources, spill_dir=state.session.settings.spill_dir)
            if model.kind == "python":
                return self._run_python(state, model)
            contents = self.visible(state, model)
            exists = model.target in contents
            incremental = model.materialized == "incremental" and exists and not state.full_refresh
            if incremental:
                scope.bind(model.target, contents)
                incremental = bool(scalar(cursor, f"SELECT count(*) > 0 FROM (SELECT 1 FROM {model.target} LIMIT 1)"))
            sql = self.render(state, model, incremental=incremental, scope=scope)
            scope.bind(sql, state.session.with_products(sql, self.visible(state, model)))
            if model.materialized == "view":
                cursor.execute(f"DESCRIBE {sql}")
                with state.txn.lock:
                    state.txn.tables._stage(model.target, TableEntry(metadata_location="", view_sql=sql))
                state.txn.record(model.target, "replace" if exists else "create")
                return "view", 0, 0
            layer_parts = model.partition_by or state.session.workspace.config.partition_by(model.layer)
            if not incremental:
                out = writer.create(model.target, sql, replace=True, partition_by=layer_parts, statement=sql)
                return ("full-refresh" if exists and model.materialized == "incremental" else out.operation), out.rows, 0
            if model.strategy == "append":
                out = writer.append(model.target, sql, statement=sql)
            elif model.strategy == "merge":
                out = writer.merge(model.target, sql, model.unique_key, statement=sql)
            else:
                out = writer.overwrite_partitions(model.target, sql, statement=sql)
            return out.operation, out.rows, out.updated
        finally:
            _CURRENT_MODEL_RUN.reset(token)

    def _run_python(self, state: RunState, model: Model) -> tuple[str, int, int]:
        assert model.function is not None
        token = CURRENT_RUN.set((state, model))
        try:
            before = _rows_of(state, model)
            try:
                model.function()
            except Exception as exc:  # noqa: BLE001 - user code: reported at the user's file:line
                raise user_code_error(exc, model.path, self.project.root)  # noqa: B904 - it chains `exc` itself
            after = _rows_of(state, model)
        finally:
            CURRENT_RUN.reset(token)
        return "python", max(0, after - before), 0


_CURRENT_MODEL_RUN: contextvars.ContextVar[ModelRun] = contextvars.ContextVar("rat_model_run")


def _rows_of(state: RunState, model: Model) -> int:
    total = 0
    for target in model.produces:
        if state.txn.exists(target):
            snap = state.txn.load(target).current_snapshot()
            if snap is not None and snap.summary is not None:
                total += int(snap.summary.additional_properties.get("total-records", 0))
    return total


def _line_of(model: Model, needle: str) -> int | None:
    for number, line in enumerate((model.sql or "").splitlines(), start=1):
        if needle in line:
            return number
    return None

"""`rat run` and `rat test`: build models in DAG order (one atomic commit) and run their data tests."""

from __future__ import annotations

import io
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def parse_vars(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`k=v` pairs (values parsed as YAML: `n=3` is an int, `d=2024-01-01` a date) or YAML mappings `{k: v}`."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        text = item.strip()
        if text.startswith("{"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise click.BadParameter(f"'{item}' is not a YAML mapping: {exc}", param_hint="--vars") from None
            if not isinstance(data, dict):
                raise click.BadParameter(f"'{item}' is not a YAML mapping", param_hint="--vars")
            out.update({str(k): v for k, v in data.items()})
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{item}' is not KEY=VALUE", param_hint="--vars")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _mb(value: float) -> str:
    return f"{value:.0f} MB"


def _progress_printer(total: int) -> Callable[[str, Any], None]:
    """One line per finished model: `[i/N] OK|FAIL|SKIP model -> table …` (thread-safe)."""
    lock = threading.Lock()
    finished = [0]

    def on_event(kind: str, m: Any) -> None:
        if kind == "start":
            return
        with lock:
            finished[0] += 1
            step = f"[{finished[0]}/{total}]" if total else f"[{finished[0]}]"
            if kind == "done":
                click.echo(
                    f"{step} OK    {m.model} -> {m.target}  {m.operation}  {m.rows_written:,} rows"
                    f"  {m.rows_updated:,} updated  {m.seconds:.2f}s  peak {_mb(m.peak_rss_mb)}"
                )
            elif kind == "skip":
                click.echo(f"{step} SKIP  {m.model} -> {m.target}  ({m.error})")
            else:
                first = (m.error or "").splitlines()[0] if m.error else ""
                click.echo(f"{step} FAIL  {m.model} -> {m.target}  {m.seconds:.2f}s  {first}")

    return on_event


def selection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """dbt's `-s/--select`, `--exclude` and `--state` (pipeline/selectors.py has the grammar)."""
    command = click.option("--state", "state", metavar="REF", help="Ref that state:modified / state:new compare with (default: the workspace branch).")(command)
    command = click.option("--exclude", "exclude", multiple=True, metavar="SELECTOR", help="Leave these out (dbt grammar; repeatable).")(command)
    return click.option("--select", "-s", "select", multiple=True, metavar="SELECTOR", help="dbt selector (repeatable; same as the arguments).")(command)


def warn_project(project: Any) -> None:
    """Print what loading the project warned about (unknown or no-effect dbt configs, …)."""
    for line in getattr(project, "warnings", []):
        click.echo(f"warning: {line}", err=True)


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach `run` and `test` to the root group."""

    @cli.command("run")
    @click.argument("selectors", nargs=-1)
    @click.option("--branch", "-b", envvar="RAT_BRANCH", help="Branch to build on (default: the workspace branch).")
    @click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
    @click.option("--vars", "variables", multiple=True, metavar="K=V", help="Template variable (repeatable; values are YAML).")
    @selection_options
    @click.pass_context
    def run(
        ctx: click.Context, selectors: tuple[str, ...], branch: str | None, full_refresh: bool, variables: tuple[str, ...],
        select: tuple[str, ...], exclude: tuple[str, ...], state: str | None,
    ) -> None:
        """Build models in DAG order; the whole run is one atomic commit (nothing is committed if a model fails).

        SELECTORs follow dbt: name, +name, name+, 2+name, @name, path:, tag:, layer:, config.materialized:,
        resource_type:, source:, state:modified, unions (spaces) and intersections (a,b) (default: every model).
        """
        selectors = (*selectors, *select)
        from ratatouille_nb.pipeline.errors import ModelRunError
        from ratatouille_nb.verbs import pipelines

        values = parse_vars(variables)
        started = time.perf_counter()
        with session_factory(ctx) as s:
            target_branch = branch or s.branch
            runner = pipelines.runner(s)
            warn_project(runner.project)
            total = len(pipelines.plan(s, selectors, using=runner, exclude=exclude, state=state))
            if total == 0:
                click.echo("no models selected" if selectors else f"no models in {s.workspace.root}")
                return
            click.echo(f"running {total} model(s) on '{target_branch}'")
            on_event = _progress_printer(total)

            record = pipelines.run(
                s, selectors, full_refresh=full_refresh, variables=values, branch=target_branch, on_event=on_event, using=runner,
                exclude=exclude, state=state,
            )
            elapsed = time.perf_counter() - started
            if record.history_error:
                click.echo(f"warning: {record.history_error}", err=True)
            if record.status != "success":
                failed = next((m for m in record.models if m.status == "failed"), None)
                ok = sum(1 for m in record.models if m.status == "success")
                click.echo(f"run {record.run_id} failed after {elapsed:.2f}s: {ok} built, nothing committed", err=True)
                raise ModelRunError(
                    failed.model if failed else "?",
                    (failed.error if failed else record.error) or "unknown error",
                    hint=f"the run committed nothing: branch '{target_branch}' is unchanged",
                ) from (failed.exception if failed else None)
            rows = sum(m.rows_written for m in record.models)
            updated = sum(m.rows_updated for m in record.models)
            peak = max((m.peak_rss_mb for m in record.models), default=0.0)
            click.echo(
                f"run {record.run_id}: {len(record.models)} model(s) ok, {rows:,} rows written, {updated:,} updated"
                f"  ({elapsed:.2f}s, peak {_mb(peak)})"
            )
            if record.commit_hash:
                click.echo(f"committed {record.commit_hash[:12]} on '{target_branch}'")
            else:
                click.echo(f"nothing changed: no commit on '{target_branch}'")

    @cli.command("test")
    @click.argument("selectors", nargs=-1)
    @click.option("--branch", "-b", envvar="RAT_BRANCH", help="Ref to test: branch, tag, hash, name@time.")
    @selection_options
    @click.pass_context
    def test(
        ctx: click.Context, selectors: tuple[str, ...], branch: str | None, select: tuple[str, ...], exclude: tuple[str, ...], state: str | None
    ) -> None:
        """Run the data tests of the selected models (column tests, custom SQL, types, freshness).

        Exits 1 if an error-level test fails or a test cannot run; warnings do not fail.
        """
        from ratatouille_nb.cli.output import render_table
        from ratatouille_nb.pipeline.errors import TestFailure
        from ratatouille_nb.verbs import pipelines

        started = time.perf_counter()
        with session_factory(ctx) as s:
            runner = pipelines.runner(s)
            warn_project(runner.project)
            report = pipelines.test(s, [*selectors, *select], ref=branch, using=runner, exclude=exclude, state=state)
            ref, results = report.ref, report.results
            if not results:
                click.echo(f"no tests in the selected models on '{ref}'")
                return
            width_model = max(len(r.model) for r in results)
            width_test = max(len(r.test) for r in results)
            for r in results:
                if r.status == "error":
                    detail = ""
                elif r.kind in ("type", "freshness"):
                    detail = r.message
                elif r.kind == "sql":
                    detail = f"{r.failing:,} (expect {r.expected:,})"
                else:
                    detail = f"{r.failing:,} failing"
                click.echo(f"{r.status.upper():<5} {r.model:<{width_model}}  {r.test:<{width_test}}  {detail}".rstrip())
                if r.status == "error":
                    for line in r.message.splitlines():
                        click.echo(f"      {line}")
                if r.sample and r.status != "pass":
                    buf = io.StringIO()
                    columns = list(r.sample[0])
                    render_table(columns, [[row.get(c) for c in columns] for row in r.sample], out=buf)
                    for line in buf.getvalue().splitlines():
                        click.echo(f"      {line}")
                    if r.failing > len(r.sample):
                        click.echo(f"      … {r.failing - len(r.sample):,} more")
            counts = {k: sum(1 for r in results if r.status == k) for k in ("pass", "warn", "fail", "error")}
            click.echo(
                f"{len(results)} test(s) on '{ref}': {counts['pass']} passed, {counts['warn']} warned, "
                f"{counts['fail']} failed, {counts['error']} errored  ({time.perf_counter() - started:.2f}s)"
            )
            bad = report.blocking
            if bad:
                raise TestFailure(
                    f"{len(bad)} error-level test(s) failed or errored: "
                    + ", ".join(f"{r.model}.{r.test}" for r in bad[:5])
                    + (" …" if len(bad) > 5 else "")
                )

    @cli.command("build")
    @click.argument("selectors", nargs=-1)
    @click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
    @click.option("--vars", "variables", multiple=True, metavar="K=V", help="Template variable (repeatable; values are YAML).")
    @selection_options
    @click.pass_context
    def build_cmd(
        ctx: click.Context, selectors: tuple[str, ...], full_refresh: bool, variables: tuple[str, ...],
        select: tuple[str, ...], exclude: tuple[str, ...], state: str | None,
    ) -> None:
        """Run + test on a temporary branch; merge into the workspace branch only if every error-level test passes."""
        selectors = (*selectors, *select)
        from ratatouille_nb.pipeline.errors import TestFailure
        from ratatouille_nb.verbs import pipelines

        with session_factory(ctx) as s:
            runner = pipelines.runner(s)
            warn_project(runner.project)
            total = len(pipelines.plan(s, selectors, using=runner, exclude=exclude, state=state or s.branch))
            click.echo(f"building {total} model(s) for '{s.branch}' on a temporary branch")
            result = pipelines.build(
                s, selectors, full_refresh=full_refresh, variables=parse_vars(variables), on_event=_progress_printer(total), using=runner,
                exclude=exclude, state=state,
            )
            if result.tests:
                passed = sum(t.status == "pass" for t in result.tests)
                click.echo(f"tests: {passed} passed, {len(result.tests) - passed} not passing")
                for t in result.tests:
                    if t.status != "pass":
                        click.echo(f"  {t.status.upper():5} {t.model} {t.test}: {t.message}")
            if not result.published:
                raise TestFailure(f"build not published: {result.reason}")
            kind = result.merge.kind if result.merge else "merge"
            click.echo(f"published: merged {result.build_branch} into '{result.branch}' ({kind})")
            for name in result.refreshed:
                click.echo(f"refreshed product {name}")
            for err in result.refresh_errors:
                click.echo(f"warning: {err}", err=True)

    @cli.command("promote")
    @click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--into", type=click.Path(file_okay=False, path_type=Path), help="Pipelines folder (default: the workspace's pipelines/).")
    @click.option("--force", is_flag=True, help="Overwrite existing files that differ.")
    @click.option("--dry-run", is_flag=True, help="Show the files without writing them.")
    @click.option("--skip", "skip", type=int, multiple=True, metavar="CELL", help="Leave out this cell (its 1-based number); repeatable.")
    @click.pass_context
    def promote_cmd(ctx: click.Context, notebook: Path, into: Path | None, force: bool, dry_run: bool, skip: tuple[int, ...]) -> None:
        """Export a notebook's %%rat sql and ingestion cells into pipeline files."""
        from ratatouille_nb.verbs import promote

        with session_factory(ctx) as s:
            result = promote.promote(s, notebook, into=into, force=force, dry_run=dry_run, skip=skip)
            for f in result.files:
                rel = f.path.relative_to(s.workspace.root)
                click.echo(f"{'would write' if dry_run else f.status:>11}  {rel}  (cell {f.cell})")
                if dry_run:
                    click.echo(textwrap.indent(f.content.rstrip(), "      | "))
            for skipped in result.skipped:
                label = "FAILS" if skipped.failed else "skipped"
                click.echo(f"{label:>11}  cell {skipped.index}: {skipped.reason}")
            for warning in result.warnings:
                click.echo(f"warning: {warning}", err=True)
            if not result.files:
                click.echo("nothing to promote: no cell creates or saves a table, and no cell is marked as ingestion")

"""`rat`: the CLI verbs of interfaces.md. Every user error prints one line and exits 1."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ratatouille_nb.errors import RatError

FORMATS = click.Choice(["table", "csv", "json"])


class RatGroup(click.Group):
    """Turns RatError into `error: …` on stderr (traceback only with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RatError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was committed by the statement in progress", err=True)
            sys.exit(130)


def _settings(ctx: click.Context, **extra: Any) -> Any:
    from ratatouille_nb.settings import Settings

    opts = dict(ctx.obj["opts"])
    opts.update({k: v for k, v in extra.items() if v is not None})
    return Settings.from_env(**opts)


def _session(ctx: click.Context, **extra: Any) -> Any:
    from ratatouille_nb.engine.session import Session

    return Session(_settings(ctx, **extra))


@click.group(cls=RatGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="RAT_HOME", help="Root of the embedded lakehouse (default ~/.ratatouille).")
@click.option("--workspace", "-w", envvar="RAT_WORKSPACE", help="Workspace folder or name.")
@click.option("--profile", envvar="RAT_PROFILE", help="Resource profile: tiny, small, medium, large or a YAML path.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="ratatouille_nb", prog_name="rat")
@click.pass_context
def cli(ctx: click.Context, home: str | None, workspace: str | None, profile: str | None, debug: bool) -> None:
    """Ratatouille: a lakehouse for small data teams — DuckDB over Iceberg, with git-like branches."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["opts"] = {"home": home, "workspace": workspace, "profile": profile}


# -- workspaces -------------------------------------------------------------------------------


@cli.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Workspace name (default: the folder name).")
@click.option("--description", default="", help="One line about the workspace.")
@click.pass_context
def init(ctx: click.Context, path: Path, name: str | None, description: str) -> None:
    """Scaffold a workspace at PATH (workspace.yaml, pipelines/, macros/, schemas/, notebooks/)."""
    from ratatouille_nb.workspace import init_workspace

    started = time.perf_counter()
    ws = init_workspace(path, _settings(ctx), name=name, description=description)
    click.echo(f"created workspace '{ws.name}' in {ws.root} ({time.perf_counter() - started:.2f}s)")
    click.echo(f"  branch: {ws.branch}\n  storage prefix: {ws.prefix}")


@cli.group()
def workspace() -> None:
    """List, create and show workspaces."""


@workspace.command("list")
@click.pass_context
def workspace_list(ctx: click.Context) -> None:
    """Workspaces known under RAT_HOME."""
    from ratatouille_nb.cli.output import render_table
    from ratatouille_nb.workspace import list_workspaces

    records = list_workspaces(_settings(ctx))
    if not records:
        click.echo("no workspaces yet: create one with `rat workspace create NAME`")
        return
    render_table(["name", "branch", "prefix", "path"], [(r.name, r.branch, r.prefix, r.path) for r in records])


@workspace.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.pass_context
def workspace_create(ctx: click.Context, name: str, description: str) -> None:
    """Create workspace NAME under RAT_HOME/workspaces."""
    from ratatouille_nb.workspace import init_workspace

    settings = _settings(ctx)
    ws = init_workspace(settings.workspaces_dir / name, settings, name=name, description=description)
    click.echo(f"created workspace '{ws.name}' in {ws.root} (branch {ws.branch})")


@workspace.command("show")
@click.pass_context
def workspace_show(ctx: click.Context) -> None:
    """The current workspace: folder, branch, storage root, profile."""
    with _session(ctx) as s:
        r = s.resources
        rows = [
            ("name", s.workspace.name),
            ("folder", str(s.workspace.root)),
            ("branch", s.branch),
            ("storage root", s.warehouse.location(s.workspace.prefix)),
            ("catalog", s.settings.catalog),
            ("profile", f"{r.name} (max_memory_mb {r.max_memory_mb}, duckdb {r.duckdb_limit_mb} MB, threads {r.threads})"),
            ("tables", str(len(s.contents()))),
        ]
        for k, v in rows:
            click.echo(f"{k:>13}: {v}")


# -- SQL and tables ---------------------------------------------------------------------------


@cli.command()
@click.argument("statement")
@click.option("--branch", "-b", envvar="RAT_BRANCH", help="Ref to read/write: branch, tag, hash, name@time.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--limit", type=int, default=100, show_default=True, help="Rows to show in table format.")
@click.pass_context
def sql(ctx: click.Context, statement: str, branch: str | None, fmt: str, limit: int) -> None:
    """Run SQL: DuckDB SELECTs over layer.table names; writes are atomic commits on the branch."""
    from ratatouille_nb.cli.output import write_result
    from ratatouille_nb.pipeline.templating import render_adhoc

    with _session(ctx) as s:
        result = s.sql(render_adhoc(s, statement), ref=branch)
        write_result(result, fmt, limit if fmt == "table" else None)


@cli.group(invoke_without_command=True)
@click.option("--branch", "-b", envvar="RAT_BRANCH", help="Ref to list.")
@click.option("--format", "fmt", type=FORMATS, default="table")
@click.pass_context
def tables(ctx: click.Context, branch: str | None, fmt: str) -> None:
    """List tables on a ref;  `rat tables show layer.t` for one."""
    if ctx.invoked_subcommand is not None:
        ctx.obj["tables_branch"] = branch
        return
    from ratatouille_nb.cli.output import render_table

    with _session(ctx) as s:
        ref = branch or s.branch
        stats = [s.table_stats(k, ref) for k in sorted(s.contents(ref))]
        if fmt == "json":
            import json

            click.echo(json.dumps([{k: v for k, v in t.items() if k != "schema"} for t in stats], indent=2))
            return
        if not stats:
            click.echo(f"no tables on '{ref}'")
            return
        render_table(
            ["table", "rows", "files", "size", "snapshots"],
            [(t["table"], f"{t['rows']:,}", t["files"], _size(t["size_bytes"]), t["snapshots"]) for t in stats],
        )


@tables.command("show")
@click.argument("table")
@click.option("--branch", "-b", help="Ref to read.")
@click.pass_context
def tables_show(ctx: click.Context, table: str, branch: str | None) -> None:
    """Schema, rows and snapshots of one table."""
    from ratatouille_nb.cli.output import render_table

    with _session(ctx) as s:
        t = s.table_stats(table, branch or ctx.obj.get("tables_branch"))
        click.echo(f"{t['table']}  rows {t['rows']:,}  files {t['files']}  size {_size(t['size_bytes'])}  snapshots {t['snapshots']}")
        if t["partition_by"]:
            click.echo(f"partitioned by: {', '.join(t['partition_by'])}")
        render_table(["column", "type", "nullable"], t["schema"])
        click.echo(f"metadata: {t['metadata_location']}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} TB"


# -- branches ---------------------------------------------------------------------------------

from ratatouille_nb.cli.branches import register as _register_branches  # noqa: E402
from ratatouille_nb.cli.maintenance import register as _register_maintenance  # noqa: E402

_register_branches(cli, _session, _settings)
from ratatouille_nb.cli.products import register as _register_products  # noqa: E402

_register_products(cli, _session, _settings)
_register_maintenance(cli, _session, _settings)
from ratatouille_nb.cli.lineage import register as _register_lineage  # noqa: E402

_register_lineage(cli, _session, _settings)
from ratatouille_nb.cli.pipelines import register as _register_pipelines  # noqa: E402

_register_pipelines(cli, _session, _settings)
from ratatouille_nb.cli.dbt import register as _register_dbt  # noqa: E402

_register_dbt(cli, _session, _settings)


@cli.command()
@click.option("--rows", type=int, default=1_000_000, show_default=True, help="Sales rows to generate.")
@click.option("--path", type=click.Path(file_okay=False, path_type=Path), default=None, help="Workspace folder (default ./workspaces/demo).")
@click.pass_context
def demo(ctx: click.Context, rows: int, path: Path | None) -> None:
    """The main job on the embedded default: build the demo workspace end to end."""
    from ratatouille_nb.demo import run_demo

    run_demo(_settings(ctx), path or Path("workspaces/demo"), rows=rows, echo=click.echo)


def main() -> None:
    cli(obj={})


if __name__ == "__main__":
    main()

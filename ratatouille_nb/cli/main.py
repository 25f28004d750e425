"""`rat`: the CLI verbs of interfaces.md. Every user error prints one line and exits 1."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

FORMATS = click.Choice(["table", "csv", "json"])


class RatGroup(click.Group):
    """Turns RatError — and the library errors errormap.py knows — into `error: …` on stderr
    (the traceback only with --debug); anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from ratatouille_nb.errormap import map_error

        try:
            return super().invoke(ctx)
        except Exception as exc:
            mapped = map_error(exc)
            if mapped is None or (ctx.obj and ctx.obj.get("debug")):
                raise
            click.echo(f"error: {mapped}", err=True)
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
    from ratatouille_nb.verbs.session import open_session

    opts = {**ctx.obj["opts"], **{k: v for k, v in extra.items() if v is not None}}
    return open_session(**opts)





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
    """Scaffold a workspace at PATH (workspace.yaml, pipelines/, macros/, schemas/, notebooks/); you own it."""
    from ratatouille_nb.verbs import workspaces

    started = time.perf_counter()
    ws = workspaces.init(_settings(ctx), path, name=name, description=description)
    click.echo(f"created workspace '{ws.name}' in {ws.root} ({time.perf_counter() - started:.2f}s)")
    click.echo(f"  branch: {ws.branch}\n  storage prefix: {ws.prefix}")


@cli.group()
def workspace() -> None:
    """List, create, show and move workspaces; manage their members."""


@workspace.command("list")
@click.pass_context
def workspace_list(ctx: click.Context) -> None:
    """Workspaces known under RAT_HOME, with their owner and your role."""
    from ratatouille_nb.cli.output import render_table
    from ratatouille_nb.verbs import workspaces

    lines = workspaces.listing(_settings(ctx))
    if not lines:
        click.echo("no workspaces yet: create one with `rat workspace create NAME`")
        return
    render_table(
        ["name", "branch", "prefix", "owner", "your role", "path"],
        [(w.record.name, w.record.branch, w.record.prefix, w.record.owner or "-", w.role or "-", w.record.path) for w in lines],
    )


@workspace.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.pass_context
def workspace_create(ctx: click.Context, name: str, description: str) -> None:
    """Create workspace NAME under RAT_HOME/workspaces."""
    from ratatouille_nb.verbs import workspaces

    ws = workspaces.create(_settings(ctx), name, description=description)
    click.echo(f"created workspace '{ws.name}' in {ws.root} (branch {ws.branch})")


@workspace.command("show")
@click.pass_context
def workspace_show(ctx: click.Context) -> None:
    """The current workspace: folder, branch, storage root, profile."""
    with _session(ctx) as s:
        r = s.resources
        rows = [
            ("name", s.workspace.name),
            ("you", f"{s.principal} ({s.access.role() or 'no role'})"),
            ("folder", str(s.workspace.root)),
            ("branch", s.branch),
            ("storage root", s.warehouse.location(s.workspace.prefix)),
            ("catalog", s.settings.catalog),
            ("profile", f"{r.name} (max_memory_mb {r.max_memory_mb}, duckdb {r.duckdb_limit_mb} MB, threads {r.threads})"),
            ("tables", str(len(s.contents()))),
        ]
        for k, v in rows:
            click.echo(f"{k:>13}: {v}")


@workspace.command("move")
@click.argument("name")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def workspace_move(ctx: click.Context, name: str, path: Path) -> None:
    """Point registered workspace NAME at its new folder PATH (owners only)."""
    from ratatouille_nb.verbs import workspaces

    record = workspaces.move(_settings(ctx), name, path)
    click.echo(f"workspace '{name}' is now at {record.path}")


@workspace.command("members")
@click.argument("name", required=False)
@click.pass_context
def workspace_members(ctx: click.Context, name: str | None) -> None:
    """Members of workspace NAME (default: the current workspace) and their roles."""
    from ratatouille_nb.cli.output import render_table
    from ratatouille_nb.verbs import workspaces

    settings = _settings(ctx)
    if name is None:
        from ratatouille_nb.workspace import find_workspace

        name = find_workspace(settings).name
    rows = workspaces.members(settings, name)
    render_table(["principal", "role", "granted by", "granted (UTC)"], [
        (m.principal, m.role, m.granted_by or "-", time.strftime("%Y-%m-%d %H:%M", time.gmtime(m.granted_at))) for m in rows
    ])


@workspace.command("grant")
@click.argument("name")
@click.argument("principal")
@click.argument("role", type=click.Choice(["viewer", "editor", "owner"]))
@click.pass_context
def workspace_grant(ctx: click.Context, name: str, principal: str, role: str) -> None:
    """Give PRINCIPAL the ROLE in workspace NAME (owners of NAME, or administrators)."""
    from ratatouille_nb.verbs import workspaces

    workspaces.grant(_settings(ctx), name, principal, role)
    click.echo(f"{principal} is {role} of workspace '{name}'")


@workspace.command("revoke")
@click.argument("name")
@click.argument("principal")
@click.pass_context
def workspace_revoke(ctx: click.Context, name: str, principal: str) -> None:
    """Remove PRINCIPAL from workspace NAME."""
    from ratatouille_nb.verbs import workspaces

    removed = workspaces.revoke(_settings(ctx), name, principal)
    click.echo(f"{principal} removed from workspace '{name}'" if removed else f"{principal} was not a member of '{name}'")


@cli.group()
def admin() -> None:
    """RAT_HOME's administrators (they own `main` and run `rat gc`)."""


@admin.command("list")
@click.pass_context
def admin_list(ctx: click.Context) -> None:
    """The administrators of this RAT_HOME."""
    from ratatouille_nb.verbs import workspaces

    for name in workspaces.admins(_settings(ctx)):
        click.echo(name)


@admin.command("add")
@click.argument("principal")
@click.pass_context
def admin_add(ctx: click.Context, principal: str) -> None:
    """Make PRINCIPAL an administrator (administrators only)."""
    from ratatouille_nb.verbs import workspaces

    workspaces.add_admin(_settings(ctx), principal)
    click.echo(f"{principal} is an administrator")


@admin.command("remove")
@click.argument("principal")
@click.pass_context
def admin_remove(ctx: click.Context, principal: str) -> None:
    """Remove PRINCIPAL from the administrators (the last one stays)."""
    from ratatouille_nb.verbs import workspaces

    removed = workspaces.remove_admin(_settings(ctx), principal)
    click.echo(f"{principal} is no longer an administrator" if removed else f"{principal} was not an administrator")


@admin.command("policies")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("policies"), show_default=True)
@click.pass_context
def admin_policies(ctx: click.Context, out: Path) -> None:
    """Write one S3 policy per workspace (s3/NAME.json) and Nessie authorization rules (nessie/authorization.properties)."""
    from ratatouille_nb.verbs import workspaces

    built, written = workspaces.policies(_settings(ctx), out)
    for path in written:
        click.echo(f"wrote {path}")
    if not built.s3:
        click.echo("no S3 policies: the warehouse is local (set RAT_WAREHOUSE=s3://… on the full stack)")


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
    from ratatouille_nb.verbs import sql as sql_verbs

    with _session(ctx) as s:
        result = sql_verbs.sql(s, statement, ref=branch)
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
    from ratatouille_nb.verbs import sql as sql_verbs

    with _session(ctx) as s:
        ref = branch or s.branch
        stats = sql_verbs.tables(s, ref)
        if fmt == "json":
            import json

            click.echo(json.dumps([{k: v for k, v in t.items() if k != "schema"} for t in stats], indent=2))
            return
        if not stats:
            click.echo(f"no tables on '{ref}'")
            return
        render_table(
            ["table", "rows", "files", "size", "snapshots"],
            [
                (t["table"], "BROKEN", "-", "-", "-") if t["kind"] == "broken"
                else (t["table"], f"{t['rows']:,}", t["files"], _size(t["size_bytes"]), t["snapshots"])
                for t in stats
            ],
        )
        for t in stats:
            if t["kind"] == "broken":
                click.echo(f"broken: {t['error']}\n  hint: {t['hint']}", err=True)


@tables.command("show")
@click.argument("table")
@click.option("--branch", "-b", help="Ref to read.")
@click.pass_context
def tables_show(ctx: click.Context, table: str, branch: str | None) -> None:
    """Schema, rows and snapshots of one table."""
    from ratatouille_nb.cli.output import render_table
    from ratatouille_nb.verbs import sql as sql_verbs

    with _session(ctx) as s:
        t = sql_verbs.table(s, table, branch or ctx.obj.get("tables_branch"))
        click.echo(f"{t['table']}  rows {t['rows']:,}  files {t['files']}  delete files {t['delete_files']} ({t['deleted_fraction']:.1%} deleted)  "
                   f"size {_size(t['size_bytes'])}  snapshots {t['snapshots']}")
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
from ratatouille_nb.cli.doctor import register as _register_doctor  # noqa: E402

_register_doctor(cli, _session, _settings)
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

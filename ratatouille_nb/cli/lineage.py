"""`rat lineage`: table and column lineage of the workspace's pipelines, and which run wrote a snapshot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach `rat lineage` to the root group."""

    @cli.command()
    @click.argument("model", required=False)
    @click.option("--upstream", "direction", flag_value="upstream", help="Only MODEL and what it is built from.")
    @click.option("--downstream", "direction", flag_value="downstream", help="Only MODEL and what is built from it.")
    @click.option("--columns", is_flag=True, help="Column-level lineage of SQL models: the source columns of each output column.")
    @click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json"]), default="text", show_default=True)
    @click.option("--branch", "-b", envvar="RAT_BRANCH", help="Ref to read tables and schemas from: branch, tag, hash, name@time.")
    @click.option("--run", "show_run", is_flag=True, help="Which run produced MODEL's current snapshot, and from which inputs.")
    @click.option("--snapshot", type=int, help="With --run: this snapshot id instead of the current one.")
    @click.pass_context
    def lineage(
        ctx: click.Context,
        model: str | None,
        direction: str | None,
        columns: bool,
        fmt: str,
        branch: str | None,
        show_run: bool,
        snapshot: int | None,
    ) -> None:
        """Lineage of the workspace's tables: the whole graph, or MODEL (pipeline name or layer.table)
        with its upstream and downstream."""
        from ratatouille_nb.lineage import LineageError
        from ratatouille_nb.verbs import lineage as lineage_verbs

        if snapshot is not None and not show_run:
            raise LineageError("--snapshot goes with --run", hint="e.g. `rat lineage silver.sales --run --snapshot 123`")
        with session_factory(ctx) as s:
            if show_run:
                if model is None:
                    raise LineageError("--run needs a MODEL (pipeline name or layer.table)")
                table, found = lineage_verbs.producer(s, model, snapshot=snapshot, ref=branch)
                _echo_run(table, snapshot, found, fmt, branch or s.branch)
                return
            graph = lineage_verbs.graph(s, model, direction=direction, columns=columns, ref=branch)
            click.echo(graph.render(fmt, columns=columns), nl=False)


def _echo_run(table: str, snapshot: int | None, found: Any, fmt: str, ref: str) -> None:
    import json

    if fmt == "json":
        click.echo(json.dumps(found.to_json() if found else None, indent=2))
        return
    if found is None:
        what = f"snapshot {snapshot}" if snapshot is not None else f"the current snapshot on '{ref}'"
        click.echo(f"no recorded run produced {what} of {table} (written with `rat sql` or outside a run?)")
        return
    when = datetime.fromtimestamp(found.finished_at or found.started_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    commit = (found.commit_hash or "")[:12] or "no commit"
    click.echo(f"{table} @ snapshot {found.snapshot_id}")
    click.echo(f"  produced by run {found.run_id} (rat {found.command} on {found.branch}, {when}, commit {commit})")
    updated = f", {found.rows_updated:,} updated" if found.rows_updated else ""
    click.echo(f"  model {found.model}: {found.operation or 'ran'}, {found.rows_written:,} rows{updated}")
    if found.inputs:
        click.echo("  read:")
        for name, snap in found.inputs:
            click.echo(f"    {name} @ snapshot {snap if snap is not None else '(empty)'}")
    else:
        click.echo("  read: no tables recorded (a Python pipeline, or a model reading only files)")

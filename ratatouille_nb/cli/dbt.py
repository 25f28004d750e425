"""`rat seed`, `rat deps`, `rat docs`: the dbt commands a dbt project folder needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach `seed`, `deps` and `docs` to the root group."""
    from ratatouille_nb.cli.pipelines import _progress_printer, warn_project

    @cli.command("seed")
    @click.argument("selectors", nargs=-1)
    @click.option("--select", "-s", "select", multiple=True, metavar="SELECTOR", help="dbt selector (repeatable).")
    @click.option("--exclude", "exclude", multiple=True, metavar="SELECTOR", help="Leave these out (repeatable).")
    @click.option("--branch", "-b", envvar="RAT_BRANCH", help="Branch to load on (default: the workspace branch).")
    @click.pass_context
    def seed(ctx: click.Context, selectors: tuple[str, ...], select: tuple[str, ...], exclude: tuple[str, ...], branch: str | None) -> None:
        """Load the dbt project's seed CSVs into tables (one atomic commit); `rat build` includes them too."""
        from ratatouille_nb.pipeline.dbt_commands import run_seeds
        from ratatouille_nb.pipeline.errors import ModelRunError

        with session_factory(ctx) as s:
            record = run_seeds(s, [*selectors, *select], exclude=exclude, branch=branch, on_event=_progress_printer(0))
            if record.status != "success":
                raise ModelRunError(record.error.split(":")[0] if record.error else "?", record.error or "failed",
                                    hint="nothing was committed")
            click.echo(f"seeded {len(record.models)} table(s)" + (f", committed {record.commit_hash[:12]}" if record.commit_hash else ""))

    @cli.command("deps")
    @click.pass_context
    def deps(ctx: click.Context) -> None:
        """Say where each package of packages.yml comes from; Ratatouille downloads none."""
        from ratatouille_nb.errors import WorkspaceError
        from ratatouille_nb.pipeline.dbt_commands import dependencies
        from ratatouille_nb.workspace import find_workspace

        workspace = find_workspace(settings_factory(ctx))
        found = dependencies(workspace.root)
        if not found:
            click.echo("no packages declared (packages.yml / dependencies.yml)")
            return
        for status in found:
            click.echo(f"{status.name:<20} {status.source:<9} {status.message}")
        missing = [s.name for s in found if s.source == "missing"]
        if missing:
            raise WorkspaceError(f"{len(missing)} package(s) cannot be fetched here: {', '.join(missing)}",
                                 hint="copy each into dbt_packages/<name> (a checkout of the package)")

    @cli.command("docs")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder for the site (default: <workspace>/target/docs).")
    @click.option("--branch", "-b", envvar="RAT_BRANCH", help="Ref to document (default: the workspace branch).")
    @click.pass_context
    def docs(ctx: click.Context, out: Path | None, branch: str | None) -> None:
        """Write a static HTML site: models, columns, types, tests, descriptions, lineage graph, last run."""
        from ratatouille_nb.lineage.site import write_site
        from ratatouille_nb.pipeline.loader import load_project

        with session_factory(ctx) as s:
            project = load_project(s.workspace.root)
            warn_project(project)
            index = write_site(s, out or s.workspace.root / "target" / "docs", ref=branch, project=project)
            click.echo(f"wrote {index}")

"""`rat branch …` and `rat tag …`: git-like verbs (ratatouille_nb/verbs/branches.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach the branch, tag and gc commands to the root group."""

    @cli.group()
    def branch() -> None:
        """Create, list, merge, diff and delete branches."""

    @branch.command("list")
    @click.option("--no-builds", is_flag=True, help="Hide the branches failed builds left (`rat branch prune --builds`).")
    @click.option("--all", "every", is_flag=True, help="Also other workspaces' refs you may read (administrators).")
    @click.pass_context
    def branch_list(ctx: click.Context, no_builds: bool, every: bool) -> None:
        """This workspace's branches and tags (and main) with their heads; build branches are marked."""
        from ratatouille_nb.cli.output import render_table
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            rows = []
            for ref in branches.list_refs(s, builds=not no_builds, own_only=not every):
                flags = ", ".join(f for f, on in (("protected", ref.protected), ("build", ref.build)) if on)
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ref.head_time))
                rows.append(("*" if ref.current else " ", ref.name, ref.kind, ref.hash[:12], when, ref.tables, flags))
            render_table(["", "name", "kind", "head", "time (UTC)", "tables", ""], rows)

    @branch.command("prune")
    @click.option("--builds", is_flag=True, required=True, help="Remove the branches failed builds kept for inspection.")
    @click.option("--older-than", "older_than", default="0", show_default=True, help="Only builds older than this (30m, 1h, 7d).")
    @click.option("--dry-run", is_flag=True, help="List what would be removed.")
    @click.pass_context
    def branch_prune(ctx: click.Context, builds: bool, older_than: str, dry_run: bool) -> None:
        """Remove leftover build branches (`<branch>/build/<id>`)."""
        from ratatouille_nb.cli.maintenance import parse_duration
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            pruned = branches.prune_builds(s, older_than_seconds=parse_duration(older_than), dry_run=dry_run)
            for name in pruned:
                click.echo(f"{'would delete' if dry_run else 'deleted'} {name}")
            if not pruned:
                click.echo("no build branches to prune")

    @branch.command("create")
    @click.argument("name")
    @click.option("--from", "from_ref", help="Start from this ref (default: the workspace branch).")
    @click.pass_context
    def branch_create(ctx: click.Context, name: str, from_ref: str | None) -> None:
        """Create branch NAME: zero-copy, O(number of tables)."""
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            ref = branches.create(s, name, from_ref=from_ref)
            click.echo(f"created branch '{name}' at {ref.hash[:12]} (from {from_ref or s.branch})")

    @branch.command("delete")
    @click.argument("name")
    @click.pass_context
    def branch_delete(ctx: click.Context, name: str) -> None:
        """Delete branch NAME (its commits stay until `rat gc`)."""
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            branches.delete(s, name)
            click.echo(f"deleted branch '{name}'")

    @branch.command("merge")
    @click.argument("source")
    @click.option("--into", "target", help="Target branch (default: the current branch, i.e. the workspace branch unless --branch/RAT_BRANCH).")
    @click.option("--message", "-m", help="Merge commit message.")
    @click.pass_context
    def branch_merge(ctx: click.Context, source: str, target: str | None, message: str | None) -> None:
        """Merge SOURCE into the target: fast-forward, merge commit, or a conflict naming tables."""
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            result = branches.merge(s, source, into=target, message=message)
            if result.kind == "up-to-date":
                click.echo(f"'{result.target}' already contains '{source}'")
                return
            click.echo(f"merged '{source}' into '{result.target}' ({result.kind}) -> {result.commit.short}")
            for table in result.tables:
                click.echo(f"  {table}")

    @branch.command("diff")
    @click.argument("from_ref")
    @click.argument("to_ref")
    @click.option("--rows", "rows", is_flag=True, help="Count rows exactly with DuckDB (by the table's unique key) where metadata cannot.")
    @click.option("--sample", type=int, default=0, show_default=True, help="Show up to N changed rows of each kind (implies --rows).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.pass_context
    def branch_diff(ctx: click.Context, from_ref: str, to_ref: str, rows: bool, sample: int, fmt: str) -> None:
        """Per table: added/removed/changed, rows added, deleted and updated, schema changes."""
        from ratatouille_nb.cli.output import render_table
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            diffs = branches.diff(s, from_ref, to_ref, rows=rows or sample > 0, sample=max(sample, 0))
            if fmt == "json":
                import json

                click.echo(json.dumps([d.model_dump(mode="json") for d in diffs], indent=2))
                return
            if not diffs:
                click.echo(f"no differences between '{from_ref}' and '{to_ref}'")
                return

            def count(sign: str, n: int, exact: bool) -> str:
                return f"{'' if exact else '~'}{sign}{n:,}"

            render_table(
                ["table", "status", "added", "deleted", "updated", "net", "schema changes"],
                [
                    (
                        d.table,
                        d.status,
                        count("+", d.rows_added, d.rows_exact),
                        count("\u2212", d.rows_removed, d.rows_exact),
                        count("~", d.rows_updated, True) if d.method == "key" else "-",
                        f"{d.net_rows:+,}".replace("-", "\u2212"),
                        ", ".join(f"{c.change} {c.name}" + (f" {c.old_type}->{c.new_type}" if c.change == "retyped" else "") for c in d.schema_changes) or "-",
                    )
                    for d in diffs
                ],
            )
            if any(not d.rows_exact for d in diffs):
                click.echo("~ estimated from the files that differ; --rows counts rows exactly")
            for d in diffs:
                for item in d.sample:
                    mark = {"added": "+", "deleted": "\u2212", "updated": "~"}[item["change"]]
                    detail = item["row"]
                    if item["change"] == "updated":
                        detail = {k: item["row"].get(k) for k in d.key} | {c: f"{item['before'].get(c)!r} -> {item['row'].get(c)!r}" for c in item["columns"]}
                    click.echo(f"  {d.table} {mark} {detail}")

    @branch.command("log")
    @click.argument("ref", required=False)
    @click.option("-n", "limit", type=int, default=20, show_default=True)
    @click.pass_context
    def branch_log(ctx: click.Context, ref: str | None, limit: int) -> None:
        """Commits from REF backwards (default: the workspace branch)."""
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            commits = branches.log(s, ref, limit=limit)
            if not commits:
                click.echo("no commits yet")
            for c in commits:
                ops = ", ".join(f"{op} {t}" for t, op in sorted(c.operations.items()))
                merge = " (merge)" if len(c.parents) > 1 else ""
                click.echo(f"{c.short}  {c.when:%Y-%m-%d %H:%M:%S}  {c.author}{merge}  {c.message[:80]}")
                if ops:
                    click.echo(f"              {ops}")

    @branch.command("protect")
    @click.argument("name")
    @click.option("--off", is_flag=True, help="Allow direct writes again.")
    @click.pass_context
    def branch_protect(ctx: click.Context, name: str, off: bool) -> None:
        """Protect NAME so only merges (by an owner) change it and it cannot be deleted."""
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            branches.protect(s, name, not off)
            click.echo(f"branch '{name}' is {'no longer ' if off else ''}protected")

    @cli.group()
    def tag() -> None:
        """Immutable names for commits."""

    @tag.command("create")
    @click.argument("name")
    @click.option("--from", "from_ref", help="Branch, tag or commit hash (default: the workspace branch).")
    @click.pass_context
    def tag_create(ctx: click.Context, name: str, from_ref: str | None) -> None:
        """Tag the commit FROM resolves to."""
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            ref = branches.tag(s, name, from_ref=from_ref)
            click.echo(f"created tag '{name}' at {ref.hash[:12]}")

    @tag.command("delete")
    @click.argument("name")
    @click.pass_context
    def tag_delete(ctx: click.Context, name: str) -> None:
        from ratatouille_nb.verbs import branches

        with session_factory(ctx) as s:
            branches.delete(s, name, kind="tag")
            click.echo(f"deleted tag '{name}'")

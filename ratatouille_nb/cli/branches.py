"""`rat branch …`, `rat tag …` and `rat gc`: git-like verbs over the version store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach the branch, tag and gc commands to the root group."""

    @cli.group()
    def branch() -> None:
        """Create, list, merge, diff and delete branches."""

    @branch.command("list")
    @click.pass_context
    def branch_list(ctx: click.Context) -> None:
        """Branches and tags with their heads."""
        from ratatouille_nb.cli.output import render_table

        with session_factory(ctx) as s:
            rows = []
            for ref in s.store.list_references():
                head = s.store.get_commit(ref.hash)
                mark = "*" if ref.name == s.branch else " "
                flags = "protected" if ref.protected else ""
                rows.append((mark, ref.name, ref.kind, ref.hash[:12], head.when.strftime("%Y-%m-%d %H:%M:%S"), len(head.contents), flags))
            render_table(["", "name", "kind", "head", "time (UTC)", "tables", ""], rows)

    @branch.command("create")
    @click.argument("name")
    @click.option("--from", "from_ref", help="Start from this ref (default: the workspace branch).")
    @click.pass_context
    def branch_create(ctx: click.Context, name: str, from_ref: str | None) -> None:
        """Create branch NAME: zero-copy, O(number of tables)."""
        with session_factory(ctx) as s:
            ref = s.store.create_reference(name, "branch", from_ref or s.branch)
            click.echo(f"created branch '{name}' at {ref.hash[:12]} (from {from_ref or s.branch})")

    @branch.command("delete")
    @click.argument("name")
    @click.pass_context
    def branch_delete(ctx: click.Context, name: str) -> None:
        """Delete branch NAME (its commits stay until `rat gc`)."""
        from ratatouille_nb.errors import CatalogError

        with session_factory(ctx) as s:
            if name == s.branch:
                raise CatalogError(f"cannot delete '{name}': it is the current branch", hint="switch with --branch first")
            if s.store.get_reference(name).kind != "branch":
                raise CatalogError(f"'{name}' is a tag, not a branch", hint=f"delete it with `rat tag delete {name}`")
            s.store.delete_reference(name)
            click.echo(f"deleted branch '{name}'")

    @branch.command("merge")
    @click.argument("source")
    @click.option("--into", "target", help="Target branch (default: the workspace branch).")
    @click.option("--message", "-m", help="Merge commit message.")
    @click.pass_context
    def branch_merge(ctx: click.Context, source: str, target: str | None, message: str | None) -> None:
        """Merge SOURCE into the target: fast-forward, merge commit, or a conflict naming tables."""
        with session_factory(ctx) as s:
            result = s.store.merge(source, target or s.branch, message=message)
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
        from ratatouille_nb.catalog.diff import diff_refs
        from ratatouille_nb.cli.output import render_table

        with session_factory(ctx) as s:
            diffs = diff_refs(s.store, s.warehouse, from_ref, to_ref, rows=rows or sample > 0, sample=max(sample, 0), con=s.con)
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
        with session_factory(ctx) as s:
            commits = s.store.log(ref or s.branch, limit=limit)
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
        """Protect NAME so only merges change it."""
        with session_factory(ctx) as s:
            s.store.set_protected(name, not off)
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
        with session_factory(ctx) as s:
            ref = s.store.create_reference(name, "tag", from_ref or s.branch)
            click.echo(f"created tag '{name}' at {ref.hash[:12]}")

    @tag.command("delete")
    @click.argument("name")
    @click.pass_context
    def tag_delete(ctx: click.Context, name: str) -> None:
        from ratatouille_nb.errors import CatalogError

        with session_factory(ctx) as s:
            if s.store.get_reference(name).kind != "tag":
                raise CatalogError(f"'{name}' is a branch, not a tag", hint=f"delete it with `rat branch delete {name}`")
            s.store.delete_reference(name)
            click.echo(f"deleted tag '{name}'")

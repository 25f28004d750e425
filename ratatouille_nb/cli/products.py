"""`rat products …`: publish, list, show, subscribe, refresh, grant, revoke."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach the products group to the root CLI."""

    @cli.group()
    def products() -> None:
        """Data products: versioned, zero-copy releases of tables for other workspaces."""

    @products.command("list")
    @click.pass_context
    def products_list(ctx: click.Context) -> None:
        """Products this workspace may read."""
        from ratatouille_nb.cli.output import render_table
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            rows, broken = [], []
            for info in product_verbs.listing(s):
                name = info["name"]
                if info["broken"]:
                    broken.append(info["broken"])
                latest = info["versions"][-1]["version"]
                freshness = "BROKEN" if info["broken"] else _age(info["freshness_seconds"])
                rows.append((name, latest, info["owner"], info["access"], freshness, (info["description"] or "")[:50]))
            if not rows:
                click.echo("no products visible to this workspace")
                return
            render_table(["product", "latest", "owner", "access", "freshness", "description"], rows)
            for message in broken:
                click.echo(f"broken: {message}", err=True)

    @products.command("show")
    @click.argument("name")
    @click.pass_context
    def products_show(ctx: click.Context, name: str) -> None:
        """Versions, schema, owner, grants, subscribers and freshness."""
        from ratatouille_nb.cli.output import render_table
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            info = product_verbs.show(s, name)
            click.echo(f"{info['name']}  owner {info['owner']}  source {info['source']}  freshness {_age(info['freshness_seconds'])}")
            if info["description"]:
                click.echo(info["description"].strip())
            render_table(
                ["version", "published (UTC)", "by", "refreshes"],
                [(v["version"], time.strftime("%Y-%m-%d %H:%M", time.gmtime(v["created_at"])), v["created_by"], v["refreshes"]) for v in info["versions"]],
            )
            click.echo("schema:")
            render_table(["column", "type", "required"], [(c["name"], c["type"], c.get("required", False)) for c in info["schema"]])
            click.echo("grants: " + (", ".join(f"{w}:{lvl}" for w, lvl in info["grants"]) or "none (owner only)"))
            subs = info["subscribers"]
            click.echo("subscribers: " + (", ".join(f"{x['consumer_workspace']} ({x['version_constraint']})" for x in subs) or "none"))

    @products.command("publish")
    @click.argument("source")
    @click.argument("name")
    @click.argument("version")
    @click.option("--access", multiple=True, help="WORKSPACE:LEVEL (read|write|none); WORKSPACE may be * or a glob.")
    @click.option("--description", help="What the product holds.")
    @click.pass_context
    def products_publish(ctx: click.Context, source: str, name: str, version: str, access: tuple[str, ...], description: str | None) -> None:
        """Publish SOURCE_TABLE as product NAME at VERSION (zero-copy pin of its current snapshot)."""
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            release = product_verbs.publish(s, source, name, version, access=access, description=description)
            click.echo(f"published {name} {release.version} from {source} (snapshot {release.iceberg_snapshot_id}, owner {release.owner_workspace})")

    @products.command("subscribe")
    @click.argument("name")
    @click.option("--version", "constraint", default="latest", show_default=True, help="^1.0.0, ~1.2, 1.x, latest or exact.")
    @click.option("--alias", help="Local name: {{ ref('ALIAS') }} in pipelines.")
    @click.pass_context
    def products_subscribe(ctx: click.Context, name: str, constraint: str, alias: str | None) -> None:
        """Subscribe this workspace to a product."""
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            resolved = product_verbs.subscribe(s, name, constraint, alias)
            click.echo(f"subscribed to {name} {constraint} (now {resolved.release.version})" + (f" as {alias}" if alias else ""))

    @products.command("refresh")
    @click.argument("name")
    @click.pass_context
    def products_refresh(ctx: click.Context, name: str) -> None:
        """Re-pin the newest version to the source's current snapshot (schema must still match)."""
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            release, pin = product_verbs.refresh(s, name)
            click.echo(f"refreshed {name} {release.version} -> snapshot {pin.snapshot_id}")

    @products.command("grant")
    @click.argument("name")
    @click.argument("workspace")
    @click.argument("level", type=click.Choice(["read", "write", "none"]))
    @click.pass_context
    def products_grant(ctx: click.Context, name: str, workspace: str, level: str) -> None:
        """Give WORKSPACE (or a pattern like * or team-*) LEVEL access."""
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            product_verbs.grant(s, name, workspace, level)
            click.echo(f"granted {level} on {name} to {workspace}")

    @products.command("revoke")
    @click.argument("name")
    @click.argument("workspace")
    @click.pass_context
    def products_revoke(ctx: click.Context, name: str, workspace: str) -> None:
        """Remove WORKSPACE's grant."""
        from ratatouille_nb.verbs import products as product_verbs

        with session_factory(ctx) as s:
            removed = product_verbs.revoke(s, name, workspace)
            click.echo(f"revoked {workspace} on {name}" if removed else f"{workspace} had no grant on {name}")

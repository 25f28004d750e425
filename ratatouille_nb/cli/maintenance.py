"""`rat gc`: delete warehouse files no branch or tag reaches any more."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """`0`, `90`, `90s`, `30m`, `1h`, `2d`, `1w`, `1h30m` -> seconds.

    Raises:
        click.BadParameter: on anything else.
    """
    value = text.strip().lower()
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise click.BadParameter(f"'{text}' is not a duration: use e.g. 0, 90s, 30m, 1h, 7d")
    return total


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach the maintenance commands (`rat gc`) to the root group."""

    @cli.command("gc")
    @click.option(
        "--older-than",
        "older_than",
        default="1h",
        show_default=True,
        help="Only delete unreferenced files older than this (0, 90s, 30m, 1h, 7d); protects writes in flight.",
    )
    @click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
    @click.option("--verbose", "-v", is_flag=True, help="List every file deleted (or that would be).")
    @click.pass_context
    def gc(ctx: click.Context, older_than: str, dry_run: bool, verbose: bool) -> None:
        """Delete table files no branch, tag or product reaches: old versions, deleted branches, killed writes.

        An administrator's verb (`rat admin list`): it sees every workspace's files.
        """
        from ratatouille_nb.verbs import maintenance

        seconds = parse_duration(older_than)
        settings = settings_factory(ctx)
        if settings.catalog != "local":
            from ratatouille_nb.errors import CatalogError

            raise CatalogError(f"`rat gc` supports the local catalog only, not '{settings.catalog}'")
        report = maintenance.gc(settings, older_than_seconds=seconds, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        if verbose:
            for path in report.deleted:
                click.echo(f"  {path}")
        click.echo(
            f"gc{' (dry run)' if dry_run else ''}: {verb} {report.files_deleted} file(s), {_size(report.bytes_freed)}; "
            f"{report.snapshots_expired} snapshot(s) expired; kept {report.files_kept} file(s) "
            f"({report.live_files} live, {len(report.too_recent)} unreferenced but newer than {older_than})"
            + (f"; {report.files_ignored} non-table file(s) left alone" if report.files_ignored else "")
        )

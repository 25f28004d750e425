"""`rat doctor`: check every store under RAT_HOME; print each problem with the command that fixes it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click


def register(cli: click.Group, session_factory: Callable[..., Any], settings_factory: Callable[..., Any]) -> None:
    """Attach `rat doctor` to the root group."""

    @cli.command("doctor")
    @click.pass_context
    def doctor(ctx: click.Context) -> None:
        """Check catalog.db, registry.db, runs.db, access.db, every table and product pin, and orphan files.

        Exits 1 when a problem (not only a warning) is found.
        """
        from ratatouille_nb.maintenance.doctor import render
        from ratatouille_nb.verbs.maintenance import doctor as doctor_verb

        diagnosis = doctor_verb(settings_factory(ctx))
        for line in render(diagnosis):
            click.echo(line)
        if diagnosis.errors:
            sys.exit(1)

"""Promote verbs: a notebook's `%%rat sql` and ingestion cells into pipeline files (export/)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.export.promote import PromoteResult


def plan(s: Session, notebook: Path, *, into: Path | None = None) -> PromoteResult:
    """What promoting would write (files, conflicts, skipped cells), writing nothing."""
    from ratatouille_nb.export.promote import plan_promotion

    return plan_promotion(notebook, s.workspace, into=into, session=s)


def promote(s: Session, notebook: Path, *, into: Path | None = None, force: bool = False, dry_run: bool = False) -> PromoteResult:
    """Write the pipeline files (refusing to overwrite changed files unless `force`)."""
    from ratatouille_nb.export import promote as promote_

    s.access.require_role("editor", f"write pipeline files of workspace '{s.workspace.name}'")
    return promote_(notebook, s.workspace, into=into, force=force, dry_run=dry_run, session=s)

"""Promote verbs: a notebook's `%%rat sql` and ingestion cells into pipeline files (export/)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.export.promote import PromoteResult


def plan(s: Session, notebook: Path, *, into: Path | None = None, skip: Iterable[int] = ()) -> PromoteResult:
    """What promoting would write (files, models, conflicts, skipped and failing cells), writing nothing."""
    from ratatouille_nb.export.promote import plan_promotion

    return plan_promotion(notebook, s.workspace, into=into, session=s, skip=skip)


def promote(
    s: Session, notebook: Path, *, into: Path | None = None, force: bool = False, dry_run: bool = False, skip: Iterable[int] = ()
) -> PromoteResult:
    """Write the pipeline files (refusing to overwrite changed files unless `force`, and while a failing
    cell is not in `skip`: cell numbers, 1-based positions in the notebook)."""
    from ratatouille_nb.export import promote as promote_

    s.access.require_role("editor", f"write pipeline files of workspace '{s.workspace.name}'")
    return promote_(notebook, s.workspace, into=into, force=force, dry_run=dry_run, session=s, skip=skip)

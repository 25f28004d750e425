"""POST /ratatouille/promote: a notebook -> pipeline files (export/promote.py), preview first.

Body `{"path", "force", "dry_run", "skip"}`. With `dry_run` the answer is the preview: the files
(with their content and whether each is new, unchanged or differs), the models with their
materializations, and every skipped cell with its reason, failing cells marked `failed`. Without
it the files are written: 409 lists the files that differ unless `force`; 400 names a failing
cell unless its number is in `skip`. Cell numbers are 1-based positions in the notebook.
Each written file also has `lab_path`, its path relative to the server root, for Lab to open.
The answer is `models.PromoteResult`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ratatouille_nb.server.models import PromotedFile, PromotedModel, PromoteResult, SkippedCell
from ratatouille_nb.server.service import ApiError, json_object, resolve_notebook

PROMOTE_FIELDS = ("path", "force", "dry_run", "skip")
MAX_SKIPPED = 1000


def validate_body(body: object) -> tuple[str, bool, bool, list[int]]:
    """`{"path": str, "force": bool = false, "dry_run": bool = false, "skip": [int] = []}`; unknown fields are refused."""
    body = json_object(body, PROMOTE_FIELDS)
    if "path" not in body:
        raise ApiError(400, "missing field 'path' (the notebook path relative to the server root)")
    if not isinstance(body["path"], str):
        raise ApiError(400, "field 'path' must be a string")
    for key in ("force", "dry_run"):
        if key in body and not isinstance(body[key], bool):
            raise ApiError(400, f"field '{key}' must be a boolean")
    skip = body.get("skip", [])
    if (
        not isinstance(skip, list)
        or len(skip) > MAX_SKIPPED
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in skip)
    ):
        raise ApiError(400, "field 'skip' must be a list of cell numbers (1-based positions in the notebook)")
    return body["path"], bool(body.get("force", False)), bool(body.get("dry_run", False)), sorted(set(skip))


def _lab_path(path: Path, server_root: Path) -> str | None:
    """Where Lab finds `path`: inside the server root, or under a folder linked into its top level."""
    real, root = path.resolve(), server_root.resolve()
    if real.is_relative_to(root):
        return real.relative_to(root).as_posix()
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return None
    for entry in entries:  # e.g. `ln -s ~/lakehouse/demo demo` in the folder Lab serves
        if entry.is_symlink() and entry.is_dir():
            target = entry.resolve()
            if real.is_relative_to(target):
                return (Path(entry.name) / real.relative_to(target)).as_posix()
    return None


def _file(f: Any, root: Path, server_root: Path, with_content: bool) -> PromotedFile:
    return PromotedFile(
        path=str(f.path.relative_to(root)),
        lab_path=_lab_path(f.path, server_root),
        status=f.status,
        cell=f.cell,
        content=f.content if with_content else None,
    )


def promote_notebook(
    session: Any, server_root: Path, rel: str, *, force: bool = False, dry_run: bool = False, skip: list[int] | None = None
) -> dict[str, Any]:
    """The endpoint's work over a session (the `rat promote` engine)."""
    from ratatouille_nb.verbs import promote

    notebook = resolve_notebook(server_root, rel)
    ws = session.workspace
    plan = promote.plan(session, notebook, skip=skip or ())
    if not dry_run:
        if plan.conflicts and not force:
            names = [str(f.path.relative_to(ws.root)) for f in plan.conflicts]
            raise ApiError(
                409,
                f"promoting would overwrite {len(names)} existing file(s) that differ: {', '.join(names)}",
                hint="review them, then promote again with force",
                conflicts=names,
                files=[_file(f, ws.root, server_root, False).model_dump(exclude_none=True) for f in plan.files],
                workspace_root=str(ws.root),
            )
        if plan.failed:
            numbers = [c.index for c in plan.failed]
            first = plan.failed[0]
            raise ApiError(
                400,
                f"cell {first.index} fails: {first.reason}",
                hint=f"fix the cell, or promote without it (skip {', '.join(map(str, numbers))})",
                failed=numbers,
            )
    result = plan if dry_run else promote.promote(session, notebook, force=force, skip=skip or ())
    return PromoteResult(
        notebook=rel,
        workspace=ws.name,
        workspace_root=str(ws.root),
        written=result.written,
        dry_run=dry_run,
        files=[_file(f, ws.root, server_root, dry_run) for f in result.files],
        models=[
            PromotedModel(
                cell=m.cell,
                name=m.name,
                target=m.target,
                kind=m.kind,
                materialized=m.materialized,
                files=[str(p.relative_to(ws.root)) for p in m.files],
            )
            for m in result.models
        ],
        skipped=[SkippedCell(cell=s.index, reason=s.reason, failed=s.failed) for s in result.skipped],
        warnings=list(result.warnings),
    ).model_dump()

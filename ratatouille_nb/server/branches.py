"""The branch and workspace menu's endpoints (status bar → labextension/src/branchmenu.ts).

| method | path | answer |
|---|---|---|
| GET  | /ratatouille/branch/list?path=&branch=      | `BranchMenu`: own branches, build branches grouped, tags |
| POST | /ratatouille/branch/create `{"name", "from"}` | `BranchChanged` (from the notebook's branch by default) |
| POST | /ratatouille/branch/switch `{"name"}`         | `BranchChanged`: the branch exists and is readable |
| GET  | /ratatouille/branch/diff?source=&into=       | `BranchDiff`: rows added/deleted/updated since the fork point |
| POST | /ratatouille/branch/merge `{"source", "into"}` | `MergeOutcome` (409 with the tables on a conflict) |
| POST | /ratatouille/branch/delete `{"name"}`         | `BranchChanged` (not the current, default or a protected branch) |
| POST | /ratatouille/branch/prune `{"dry_run"}`       | `PruneOutcome`: leftover build branches deleted |
| GET  | /ratatouille/workspaces?path=                | `WorkspaceList`: registered workspaces with your role |

`?path=` (the notebook, relative to the server root) picks the workspace when RAT_WORKSPACE is
unset; `?branch=` is the notebook kernel's branch, the "current" branch of create, merge and
delete. The switch itself happens in the kernel (notebook/link.py): the server only checks it.
The response models are in server/models.py. Everything goes through the verb layer; who may do what is the version store's decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import tornado.web
from jupyter_server.utils import url_path_join

from ratatouille_nb.errors import MergeConflictError
from ratatouille_nb.server import service
from ratatouille_nb.server.handlers import RatHandler
from ratatouille_nb.server.models import (
    BranchChanged,
    BranchDiff,
    BranchLine,
    BranchMenu,
    BuildGroup,
    ColumnChangeLine,
    MergeOutcome,
    PruneOutcome,
    TableChange,
    WorkspaceItem,
    WorkspaceList,
)
from ratatouille_nb.server.service import ApiError

DIFF_SAMPLE_ROWS = 5


# -- what the endpoints do (plain functions over a Session) --------------------------------------


def _line(r: Any, default: str) -> BranchLine:
    return BranchLine(
        name=r.name, kind=r.kind, hash=r.hash, protected=r.protected, current=r.current, default=r.name == default,
        build=r.build, head_time=r.head_time, tables=r.tables,
    )


def branch_menu(session: Any) -> dict[str, Any]:
    from ratatouille_nb.verbs import branches

    default = session.store.default_branch
    refs = branches.list_refs(session, own_only=True)
    groups: dict[str, list[BranchLine]] = {}
    plain: list[BranchLine] = []
    tags: list[BranchLine] = []
    for r in refs:
        line = _line(r, default)
        if r.kind == "tag":
            tags.append(line)
        elif r.build:
            groups.setdefault(branches.build_parent(r.name) or "", []).append(line)
        else:
            plain.append(line)
    plain.sort(key=lambda b: (not b.current, b.name != session.workspace.branch, b.name))
    return BranchMenu(
        workspace=session.workspace.name,
        workspace_root=str(session.workspace.root),
        workspace_branch=session.workspace.branch,
        current=session.branch,
        default=default,
        branches=plain,
        builds=[BuildGroup(parent=p, branches=sorted(g, key=lambda b: b.name, reverse=True)) for p, g in sorted(groups.items())],
        tags=tags,
    ).model_dump()


def _changed(session: Any, action: Literal["created", "switch", "deleted"], name: str, hash_: str) -> dict[str, Any]:
    return BranchChanged(
        action=action, name=name, hash=hash_, workspace=session.workspace.name, workspace_root=str(session.workspace.root)
    ).model_dump()


def create_branch(session: Any, name: str, from_ref: str | None = None) -> dict[str, Any]:
    from ratatouille_nb.verbs import branches

    ref = branches.create(session, name, from_ref=from_ref)
    return _changed(session, "created", ref.name, ref.hash)


def switch_branch(session: Any, name: str) -> dict[str, Any]:
    """Check that the kernel can switch to `name` (it exists, is a branch, is readable)."""
    from ratatouille_nb.verbs import branches

    branches.checkout(session, name)
    ref = session.store.get_reference(name)
    return _changed(session, "switch", ref.name, ref.hash)


def delete_branch(session: Any, name: str) -> dict[str, Any]:
    from ratatouille_nb.verbs import branches

    ref = session.store.get_reference(name)
    if ref.kind == "branch" and ref.protected:
        raise ApiError(400, f"cannot delete '{name}': it is a protected branch", hint="unprotect it first (owners only)")
    branches.delete(session, name, kind=ref.kind)
    return _changed(session, "deleted", name, ref.hash)


def _table_change(d: Any) -> TableChange:
    return TableChange(
        table=d.table, status=d.status, rows_added=d.rows_added, rows_deleted=d.rows_removed, rows_updated=d.rows_updated,
        net_rows=d.net_rows, rows_exact=d.rows_exact, method=d.method,
        schema_changes=[ColumnChangeLine(name=c.name, change=c.change, old_type=c.old_type, new_type=c.new_type) for c in d.schema_changes],
        sample=[json.loads(json.dumps(row, default=str)) for row in d.sample],
    )


def branch_diff(session: Any, source: str, into: str | None = None, sample: int = DIFF_SAMPLE_ROWS) -> dict[str, Any]:
    from ratatouille_nb.verbs import branches

    target = into or session.branch
    fork = branches.fork_point(session, source, target)
    diffs = branches.diff(session, fork, source, rows=True, sample=sample)
    tables = [_table_change(d) for d in diffs]
    return BranchDiff(
        source=source, into=target, fork_point=fork, tables=tables,
        rows_added=sum(t.rows_added for t in tables), rows_deleted=sum(t.rows_deleted for t in tables),
        rows_updated=sum(t.rows_updated for t in tables),
    ).model_dump()


def merge_branch(session: Any, source: str, into: str | None = None) -> dict[str, Any]:
    from ratatouille_nb.verbs import branches

    try:
        result = branches.merge(session, source, into=into)
    except MergeConflictError as exc:
        raise ApiError(409, str(exc.args[0] if exc.args else exc), hint=exc.hint or "nothing was changed", tables=exc.tables) from None
    return MergeOutcome(source=result.source, into=result.target, kind=result.kind, hash=result.commit.hash, tables=list(result.tables)).model_dump()


def prune_builds(session: Any, dry_run: bool = False) -> dict[str, Any]:
    from ratatouille_nb.verbs import branches

    return PruneOutcome(deleted=branches.prune_builds(session, dry_run=dry_run), dry_run=dry_run).model_dump()


def list_workspaces(user: str | None, current: str | None) -> dict[str, Any]:
    """Every registered workspace with the principal's role (from settings: no session needed)."""
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.verbs import workspaces

    settings = Settings.from_env()
    if settings.user is None and user:
        settings = settings.with_(user=user)
    if current is None and settings.workspace:
        from ratatouille_nb.errors import WorkspaceError
        from ratatouille_nb.workspace import find_workspace

        try:
            current = str(find_workspace(settings).root)
        except WorkspaceError:
            current = None
    here = Path(current).resolve() if current else None
    items = [
        WorkspaceItem(
            name=line.record.name, path=line.record.path, branch=line.record.branch, role=line.role,
            current=here is not None and Path(line.record.path).resolve() == here,
        )
        for line in workspaces.listing(settings)
    ]
    names = [i.name for i in items if i.current]
    return WorkspaceList(current=names[0] if names else None, workspaces=items).model_dump()


# -- Tornado handlers --------------------------------------------------------------------------


def _body(handler: RatHandler, fields: dict[str, type]) -> dict[str, Any]:
    body = service.json_object(handler.json_body(), fields)
    for key, kind in fields.items():
        if key in body and body[key] is not None and not isinstance(body[key], kind):
            raise ApiError(400, f"field '{key}' must be a {'string' if kind is str else 'boolean'}")
    return body


def _name(value: Any, field: str) -> str:
    name = service.validate_branch_param(value, field)
    if name is None:
        raise ApiError(400, f"missing field '{field}'")
    return name


async def _run_parsed(handler: RatHandler, parse: Callable[[], tuple[Any, ...]], fn: Callable[..., Any]) -> None:
    """Answer `fn(*parse())`, or the ApiError that `parse` raises on a bad request."""
    try:
        args = parse()
    except ApiError as exc:
        handler.fail(exc)
        return
    await handler.run(fn, *args)


class BranchListHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.run(branch_menu)


class BranchCreateHandler(RatHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        def parse() -> tuple[Any, ...]:
            body = _body(self, {"name": str, "from": str})
            return _name(body.get("name"), "name"), service.validate_branch_param(body.get("from"), "from")

        await _run_parsed(self, parse, create_branch)


class BranchSwitchHandler(RatHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        await _run_parsed(self, lambda: (_name(_body(self, {"name": str}).get("name"), "name"),), switch_branch)


class BranchDeleteHandler(RatHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        await _run_parsed(self, lambda: (_name(_body(self, {"name": str}).get("name"), "name"),), delete_branch)


class BranchDiffHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        def parse() -> tuple[Any, ...]:
            source = _name(self.get_query_argument("source", None), "source")
            return source, service.validate_branch_param(self.get_query_argument("into", None), "into")

        await _run_parsed(self, parse, branch_diff)


class BranchMergeHandler(RatHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        def parse() -> tuple[Any, ...]:
            body = _body(self, {"source": str, "into": str})
            return _name(body.get("source"), "source"), service.validate_branch_param(body.get("into"), "into")

        await _run_parsed(self, parse, merge_branch)


class BranchPruneHandler(RatHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        await _run_parsed(self, lambda: (bool(_body(self, {"dry_run": bool}).get("dry_run", False)),), prune_builds)


class WorkspacesHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            folder, _branch = self.where()
        except ApiError as exc:
            self.fail(exc)
            return
        await self.answer(list_workspaces, self.principal, str(folder) if folder else None)


def branch_handlers(base: str) -> list[tuple[str, type[RatHandler]]]:
    return [
        (url_path_join(base, "branch", "list"), BranchListHandler),
        (url_path_join(base, "branch", "create"), BranchCreateHandler),
        (url_path_join(base, "branch", "switch"), BranchSwitchHandler),
        (url_path_join(base, "branch", "delete"), BranchDeleteHandler),
        (url_path_join(base, "branch", "diff"), BranchDiffHandler),
        (url_path_join(base, "branch", "merge"), BranchMergeHandler),
        (url_path_join(base, "branch", "prune"), BranchPruneHandler),
        (url_path_join(base, "workspaces"), WorkspacesHandler),
    ]

"""What the REST endpoints do, without Tornado: plain functions over a `Session`, testable alone.

Every function validates its parameters and raises `ApiError` (status, message) for anything a
client got wrong; `RatError`s from the core are mapped to statuses by `status_of`. The workspace
and home come from the environment (`RAT_WORKSPACE`, `RAT_HOME`, …), exactly as for the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ratatouille_nb.errors import RatError
from ratatouille_nb.server import models

MAX_QUERY_CHARS = 100
MAX_PATH_CHARS = 1024
PRODUCT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ApiError(Exception):
    """A request the server refuses: HTTP status, one-line message, optional extra JSON fields."""

    def __init__(self, status: int, message: str, *, hint: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.extra = extra

    def payload(self) -> dict[str, Any]:
        return models.ErrorBody(message=self.message, hint=self.hint or None, **self.extra).model_dump(exclude_none=True)


def status_of(exc: RatError) -> int:
    """The HTTP status for a core error: 404 for what does not exist, 403 for access, 503 without a workspace."""
    from ratatouille_nb.errors import AccessDeniedError, ReferenceNotFoundError, TableNotFoundError, WorkspaceError
    from ratatouille_nb.products.errors import ProductNotFoundError

    if isinstance(exc, (ProductNotFoundError, ReferenceNotFoundError, TableNotFoundError)):
        return 404
    if isinstance(exc, AccessDeniedError):
        return 403
    if isinstance(exc, WorkspaceError):
        return 503
    return 400


def api_error_from(exc: RatError) -> ApiError:
    message = exc.args[0] if exc.args else str(exc)
    return ApiError(status_of(exc), str(message), hint=exc.hint)


@contextmanager
def open_server_session(user: str | None = None, *, workspace: Path | None = None, branch: str | None = None) -> Iterator[Any]:
    """A fresh engine session from the environment for the request's principal, closed afterwards.

    The principal is RAT_USER, else `user` (the Jupyter server's authenticated user), else the OS login.
    `workspace` (a folder, from the notebook's path: `workspace_for`) and `branch` (the notebook
    kernel's branch) override the environment's.
    """
    from ratatouille_nb.verbs.session import open_session

    session = open_session(server_user=user, workspace=str(workspace) if workspace else None, branch=branch or None)
    try:
        yield session
    finally:
        session.close()


# -- parameters ------------------------------------------------------------------------------


def json_object(body: object, fields: Iterable[str]) -> dict[str, Any]:
    """A request body that must be a JSON object with only `fields` (named, in order, in the hint)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    accepted = list(fields)
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(map(str, unknown))}", hint=f"accepted: {', '.join(accepted)}")
    return body


def validate_query(q: str | None) -> str:
    """The products search text: optional, at most 100 printable characters."""
    if q is None:
        return ""
    if len(q) > MAX_QUERY_CHARS:
        raise ApiError(400, f"search text too long ({len(q)} characters, at most {MAX_QUERY_CHARS})")
    if not q.isprintable():
        raise ApiError(400, "search text must be printable characters")
    return q.strip().lower()


def validate_product_name(name: str) -> str:
    if not PRODUCT_NAME_RE.match(name or ""):
        raise ApiError(
            400,
            f"invalid product name {name[:80]!r}",
            hint="product names are lowercase letters, digits and '_', starting with a letter",
        )
    return name


def resolve_notebook(root: Path, rel: str) -> Path:
    """The notebook at `rel` (relative to the server root); refuses anything that leaves the root.

    Refused: empty or over-long paths, NUL bytes, absolute paths (POSIX or Windows), `..` parts,
    non-.ipynb names, and paths whose real location (symlinks resolved) is outside `root`.
    """
    if not rel or not rel.strip():
        raise ApiError(400, "field 'path' is empty")
    if len(rel) > MAX_PATH_CHARS or "\x00" in rel:
        raise ApiError(400, "field 'path' is not a valid path")
    posix = rel.replace("\\", "/")
    if posix.startswith("/") or PureWindowsPath(rel).drive or PureWindowsPath(rel).is_absolute():
        raise ApiError(400, f"'{rel}' is an absolute path", hint="pass the notebook path relative to the Jupyter server root")
    parts = PurePosixPath(posix).parts
    if ".." in parts:
        raise ApiError(400, f"'{rel}' contains '..'", hint="pass the notebook path relative to the Jupyter server root")
    if not posix.endswith(".ipynb"):
        raise ApiError(400, f"'{rel}' is not a notebook (.ipynb)")
    base = root.resolve()
    candidate = base.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ApiError(404, f"no notebook at '{rel}'") from None
    except (OSError, RuntimeError):  # symlink loops and the like
        raise ApiError(400, f"'{rel}' cannot be resolved") from None
    if not real.is_relative_to(base):
        raise ApiError(403, f"'{rel}' points outside the server root")
    if not real.is_file():
        raise ApiError(404, f"no notebook at '{rel}'")
    return real


# -- endpoints -------------------------------------------------------------------------------


def session_info(session: Any) -> dict[str, Any]:
    """GET /ratatouille/session: the workspace and branch the server (and new kernels) use."""
    from ratatouille_nb.verbs.session import describe

    return models.Session(**describe(session)).model_dump()


def list_branches(session: Any) -> dict[str, Any]:
    """GET /ratatouille/branches: the workspace's branches and tags (and main), the current one marked."""
    from ratatouille_nb.verbs.branches import list_refs

    return models.Branches(
        current=session.branch,
        default=session.store.default_branch,
        references=[
            models.Reference(name=r.name, kind=r.kind, hash=r.hash, protected=r.protected, current=r.current, build=r.build)
            for r in list_refs(session)
        ],
    ).model_dump()


def product_query(name: str) -> str:
    """The `%%rat sql` cell the sidebar inserts to read a product."""
    return f"%%rat sql\nSELECT *\nFROM products.{name}\nLIMIT 100"


def product_detail(session: Any, name: str) -> dict[str, Any]:
    """GET /ratatouille/products/<name>: versions, owner, description, schema, freshness, query."""
    from ratatouille_nb.verbs import products

    validate_product_name(name)
    service = session.products
    shown = products.show(session, name)
    sla = service.freshness_sla_hours(name) if shown["owner"] == session.workspace.name else None
    versions = shown["versions"]
    return models.Product(
        name=shown["name"],
        owner=shown["owner"],
        description=shown["description"],
        source=shown["source"],
        latest=versions[-1]["version"] if versions else None,
        versions=[models.Version(**v) for v in versions],
        schema=[
            models.Column(name=c.get("name"), type=c.get("type"), required=bool(c.get("required", False)))
            for c in shown["schema"]
        ],
        freshness_seconds=shown["freshness_seconds"],
        freshness_sla_hours=sla,
        access=shown["access"],
        subscribers=len(shown["subscribers"]),
        query=product_query(name),
    ).model_dump()


def list_products(session: Any, q: str | None = None) -> dict[str, Any]:
    """GET /ratatouille/products?q=: the products this workspace may read, filtered by name/description/owner."""
    from ratatouille_nb.verbs.products import readable

    needle = validate_query(q)
    products = []
    for name in readable(session):
        try:
            detail = product_detail(session, name)
        except RatError:  # a product whose pin vanished must not hide the others
            continue
        haystack = " ".join(str(detail[k] or "") for k in ("name", "description", "owner", "source")).lower()
        if needle and needle not in haystack:
            continue
        products.append(detail)
    return models.Products(
        workspace=session.workspace.name, query=needle, products=[models.Product(**p) for p in products]
    ).model_dump()


# POST /ratatouille/promote lives in server/promote.py (preview, failing cells, skip).


# -- the workspace of a notebook -------------------------------------------------------------

BRANCH_PARAM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@-]{0,199}$")


def resolve_server_path(root: Path, rel: str) -> Path:
    """A file or folder at `rel` inside the server root (the `?path=` of every endpoint).

    Refused like `resolve_notebook`: NUL bytes, absolute paths, `..` parts, and anything whose
    real location is outside `root`. A path that does not exist (yet) resolves to its nearest
    existing parent folder, so an unsaved notebook still finds its workspace.
    """
    if len(rel) > MAX_PATH_CHARS or "\x00" in rel:
        raise ApiError(400, "parameter 'path' is not a valid path")
    posix = rel.replace("\\", "/").strip()
    if posix.startswith("/") or PureWindowsPath(rel).drive:
        raise ApiError(400, f"'{rel}' is an absolute path", hint="pass the notebook path relative to the Jupyter server root")
    parts = PurePosixPath(posix).parts if posix else ()
    if ".." in parts:
        raise ApiError(400, f"'{rel}' contains '..'", hint="pass the notebook path relative to the Jupyter server root")
    base = root.resolve()
    candidate = base.joinpath(*parts)
    while not candidate.exists() and candidate != base:
        candidate = candidate.parent
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ApiError(400, f"'{rel}' cannot be resolved") from None
    if not real.is_relative_to(base):
        raise ApiError(403, f"'{rel}' points outside the server root")
    return real


def workspace_for(root: Path, rel: str | None) -> Path | None:
    """The workspace folder of the notebook at `rel`, when RAT_WORKSPACE does not name one.

    With RAT_WORKSPACE set, or without a path, None: the session comes from the environment as
    before. Otherwise the nearest folder at or above the notebook holding workspace.yaml (or
    dbt_project.yml); then the server's own folder; else one clear error.
    """
    if os.environ.get("RAT_WORKSPACE") or rel is None:
        return None
    from ratatouille_nb.settings import Settings
    from ratatouille_nb.verbs.workspaces import locate

    target = resolve_server_path(root, rel)
    start = target if target.is_dir() else target.parent
    settings = Settings.from_env()
    found = locate(settings, start) or locate(settings, Path.cwd())
    if found is None:
        shown = rel or "the server root"
        raise ApiError(
            503,
            f"no workspace for '{shown}': no workspace.yaml or dbt_project.yml in its folder or any folder above",
            hint="open a notebook inside a workspace, create one with `rat init PATH`, or start Jupyter with RAT_WORKSPACE set",
        )
    return found.root


def validate_branch_param(name: str | None, field: str = "branch") -> str | None:
    """A branch name sent by the frontend (`?branch=`, body fields): None, or a plausible ref name."""
    if name is None or name == "":
        return None
    if not isinstance(name, str) or not BRANCH_PARAM_RE.match(name) or ".." in name:
        raise ApiError(400, f"'{field}' is not a valid branch name")
    return name


def validate_workspace_param(value: str | None) -> Path | None:
    """`?workspace=`: the absolute folder of the workspace a notebook's kernel is in (its state event)."""
    if not value:
        return None
    if len(value) > MAX_PATH_CHARS or "\x00" in value or not value.startswith("/"):
        raise ApiError(400, "parameter 'workspace' must be the absolute folder of a workspace")
    folder = Path(value)
    if ".." in folder.parts or not ((folder / "workspace.yaml").is_file() or (folder / "dbt_project.yml").is_file()):
        raise ApiError(400, f"'{value[:200]}' is not a workspace folder (no workspace.yaml or dbt_project.yml)")
    return folder

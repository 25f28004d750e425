"""What the REST endpoints do, without Tornado: plain functions over a `Session`, testable alone.

Every function validates its parameters and raises `ApiError` (status, message) for anything a
client got wrong; `RatError`s from the core are mapped to statuses by `status_of`. The workspace
and home come from the environment (`RAT_WORKSPACE`, `RAT_HOME`, …), exactly as for the CLI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
def open_server_session(user: str | None = None) -> Iterator[Any]:
    """A fresh engine session from the environment for the request's principal, closed afterwards.

    The principal is RAT_USER, else `user` (the Jupyter server's authenticated user), else the OS login.
    """
    from ratatouille_nb.verbs.session import open_session

    session = open_session(server_user=user)
    try:
        yield session
    finally:
        session.close()


# -- parameters ------------------------------------------------------------------------------


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

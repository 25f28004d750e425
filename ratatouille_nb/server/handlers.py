"""Tornado handlers for `/ratatouille/…`: Jupyter's auth (`@authenticated`) and XSRF checks (POST,
through `APIHandler`), JSON in and out, engine work off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from ratatouille_nb.errormap import map_error
from ratatouille_nb.server import promote, service
from ratatouille_nb.server.service import ApiError

NAMESPACE = "ratatouille"
MAX_BODY_BYTES = 64 * 1024


def _mapped(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(…)` with RatErrors and the library errors errormap.py knows as an ApiError; a bug stays a 500."""
    try:
        return fn(*args, **kwargs)
    except ApiError:
        raise
    except Exception as exc:
        mapped = map_error(exc)
        if mapped is None:
            raise
        raise service.api_error_from(mapped) from None


def _session_call(
    user: str | None, fn: Callable[..., Any], *args: Any, where: tuple[Path | None, str | None] = (None, None), **kwargs: Any
) -> Any:
    """Open a session for the request's principal (in the workspace and on the branch `where` names,
    else the environment's), run `fn(session, …)`, close it — in one worker thread."""

    def call() -> Any:
        with service.open_server_session(user, workspace=where[0], branch=where[1]) as session:
            return fn(session, *args, **kwargs)

    return _mapped(call)


class RatHandler(APIHandler):
    """Base: JSON responses and errors as `{"message": …, "hint": …}` (what JupyterLab's client reads)."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def send(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(payload, default=str))

    @property
    def principal(self) -> str | None:
        """The authenticated user's name when the server knows who it is (JupyterHub, a custom identity
        provider); None for jupyter_server's own token/password login, whose users are anonymous —
        the principal is then the OS login that runs the server (access/principal.py)."""
        provider = getattr(self, "identity_provider", None)
        if provider is None or type(provider).__module__.startswith("jupyter_server."):
            return None
        user = self.current_user
        name = getattr(user, "username", None) or (user.get("name") if isinstance(user, dict) else None)
        return str(name) if name else None

    def where(self, path: str | None = None) -> tuple[Path | None, str | None]:
        """The workspace folder of the request's notebook (`?workspace=`, the folder its kernel is
        in, else found from `?path=` or `path` given) and the notebook kernel's branch (`?branch=`);
        (None, None) means the environment's."""
        rel = path if path is not None else self.get_query_argument("path", None)
        branch = service.validate_branch_param(self.get_query_argument("branch", None))
        kernel_workspace = service.validate_workspace_param(self.get_query_argument("workspace", None))
        if kernel_workspace is not None:  # the workspace the notebook's kernel is in (it may have switched)
            return kernel_workspace, branch
        return service.workspace_for(self.server_root, rel), branch

    async def run(self, fn: Callable[..., Any], *args: Any, where: tuple[Path | None, str | None] | None = None, **kwargs: Any) -> None:
        """Answer `fn(session, …)` in a session of the request's workspace and branch (`where`)."""
        try:
            place = self.where() if where is None else where
        except ApiError as exc:
            self._refuse(exc)
            return
        await self.answer(_session_call, self.principal, fn, *args, where=place, **kwargs)

    async def answer(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Send `fn(…)`, run off the event loop, or the ApiError it raises (core errors mapped)."""
        try:
            result = await IOLoop.current().run_in_executor(None, lambda: _mapped(fn, *args, **kwargs))
        except ApiError as exc:
            self._refuse(exc)
            return
        self.send(result)

    def _refuse(self, exc: ApiError) -> None:
        if exc.status >= 500:
            self.log.warning("ratatouille: %s", exc.message)
        self.fail(exc)

    def fail(self, exc: ApiError) -> None:
        self.send(exc.payload(), exc.status)

    def json_body(self, empty: bytes = b"{}") -> Any:
        """The request body parsed as JSON (`empty` stands for an empty body); ApiError 413 when it is
        larger than MAX_BODY_BYTES, 400 when it is not JSON."""
        if len(self.request.body) > MAX_BODY_BYTES:
            raise ApiError(413, "request body too large")
        try:
            return json.loads(self.request.body or empty)
        except ValueError:
            raise ApiError(400, "the request body is not valid JSON") from None

    @property
    def server_root(self) -> Path:
        root = getattr(self.contents_manager, "root_dir", None) or self.settings.get("server_root_dir") or "."
        return Path(root).expanduser()


class SessionHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.run(service.session_info)


class BranchesHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.run(service.list_branches)


class ProductsHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            q = service.validate_query(self.get_query_argument("q", None))
        except ApiError as exc:
            self.fail(exc)
            return
        await self.run(service.list_products, q)


class ProductHandler(RatHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        try:
            service.validate_product_name(name)
        except ApiError as exc:
            self.fail(exc)
            return
        await self.run(service.product_detail, name)


class PromoteHandler(RatHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        try:
            body = self.json_body(b"null")
            path, force, dry_run, skip = promote.validate_body(body)
            service.resolve_notebook(self.server_root, path)  # refuse bad paths before opening a session
            where = self.where(path)
        except ApiError as exc:
            self.fail(exc)
            return
        await self.run(promote.promote_notebook, self.server_root, path, force=force, dry_run=dry_run, skip=skip, where=where)


class TablesHandler(RatHandler):
    """GET /ratatouille/tables?path=NOTEBOOK&branch=B (server/tables.py): the sidebar's tables browser."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from ratatouille_nb.server import tables

        try:
            ref = tables.validate_ref(self.get_query_argument("branch", None))
            folder, _ = self.where()
        except ApiError as exc:
            self.fail(exc)
            return
        await self.run(tables.list_tables, ref, where=(folder, None))


def setup_handlers(web_app: Any) -> None:
    base = url_path_join(web_app.settings["base_url"], NAMESPACE)
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "session"), SessionHandler),
            (url_path_join(base, "branches"), BranchesHandler),
            (url_path_join(base, "products"), ProductsHandler),
            (url_path_join(base, "products", r"([^/]+)"), ProductHandler),
            (url_path_join(base, "promote"), PromoteHandler),
            (url_path_join(base, "tables"), TablesHandler),
        ],
    )

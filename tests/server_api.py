"""The `/ratatouille/` test client shared by tests/test_server.py and tests/test_server_shell.py.

Import these fixtures after `from pytest_jupyter.jupyter_server import *` (they need its jp_fetch
and override its jp_server_config); pytest-jupyter stays out of every other test module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVER_CONFIG = REPO / "jupyter-config" / "server-config" / "ratatouille_nb.json"

Api = Callable[..., tuple[int, Any]]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """The config file the package ships, so these tests also prove it enables the extension."""
    return json.loads(SERVER_CONFIG.read_text())


@pytest.fixture
def api(jp_fetch: Any, jp_asyncio_loop: Any) -> Api:
    """`api(method, "products", …, body=…, params=…, headers=…)` -> (status, JSON body)."""

    def call(method: str, *parts: str, body: Any = None, raw: bytes | None = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            raw = json.dumps(body).encode()
        if method == "POST" and raw is None:
            raw = b""
        response = jp_asyncio_loop.run_until_complete(
            jp_fetch("ratatouille", *parts, method=method, body=raw, raise_error=False, **kwargs)
        )
        text = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(text) if text else None
        except ValueError:
            return response.code, text

    return call

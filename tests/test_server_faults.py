"""Corrupted state over REST: `GET /ratatouille/products` answers with one message, never a 500 traceback.

Runs in the Jupyter-server pytest process with tests/test_server.py (`make test-server`), using its fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("jupyter_server")
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures for this module only

from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace
from tests.test_server import Api, api, jp_server_config, lakehouse  # noqa: F401 - the same fixtures

DOCTOR = "`rat doctor` checks every store and table and prints the command that fixes each problem"


def test_a_truncated_product_pin_leaves_the_list_intact(api: Api, lakehouse: Workspace, settings: Settings) -> None:  # noqa: F811
    with Session(settings, lakehouse) as s:
        location = s.products.resolve("sales_kpis").pin.metadata_location
    Path(location).write_bytes(b"{")

    status, body = api("GET", "products")
    assert status == 200, body
    listed = {p["name"]: p for p in body["products"]}
    assert sorted(listed) == ["customers", "sales_kpis"]  # nothing hidden, nothing lost
    assert listed["sales_kpis"]["freshness_seconds"] is None and listed["customers"]["freshness_seconds"] is not None

    status, detail = api("GET", "products", "sales_kpis")
    assert status == 200 and detail["schema"][0]["name"] == "day"


def test_a_garbage_registry_is_one_message(api: Api, lakehouse: Workspace, settings: Settings) -> None:  # noqa: F811
    registry = settings.home / "registry.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{registry}{suffix}").unlink(missing_ok=True)
    registry.write_bytes(b"not a database" * 500)
    status, body = api("GET", "products")
    assert status == 400, body
    assert body == {"message": f"{registry} is damaged: file is not a database", "hint": DOCTOR}

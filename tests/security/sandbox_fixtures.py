"""Two workspaces under one RAT_HOME for the sandbox attacks, and a fingerprint of everything they own.

Workspace `a` has a table (`silver.orders`) published as product `orders`; workspace `b` is the
attacker (or, with the grant, a consumer). `fingerprint` records every file under RAT_HOME and the
workspace folders (by content), and every row of catalog.db, registry.db and runs.db, so a test can
assert that a refused attack changed nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import init_workspace


@dataclass
class Pair:
    """Workspace a (owner of product `orders`) and workspace b, each with an open session."""

    settings: Settings
    a: Session
    b: Session

    @property
    def pin(self) -> Any:
        return self.a.products.resolve("orders").pin

    def pin_files(self) -> list[str]:
        from ratatouille_nb.catalog.models import TableEntry
        from ratatouille_nb.engine.sandbox import pin_files

        pin = self.pin
        return list(pin_files(self.a.warehouse, TableEntry(metadata_location=pin.metadata_location, snapshot_id=pin.snapshot_id)))

    def data_file(self) -> str:
        return next(f for f in self.pin_files() if f.endswith(".parquet"))


def make_pair(settings: Settings, root: Path, *, grant: bool) -> Pair:
    wa = init_workspace(root / "a", settings, name="a")
    wb = init_workspace(root / "b", settings, name="b")
    a, b = Session(settings, wa), Session(settings, wb)
    a.sql("CREATE TABLE silver.orders AS SELECT i AS id, i * 10 AS amount FROM range(100) t(i)")
    a.products.publish("silver.orders", "orders", "1.0.0", access=[("b", "read")] if grant else [])
    b.sql("CREATE TABLE silver.mine AS SELECT 1 AS x")
    return Pair(settings, a, b)


@pytest.fixture
def pair(settings: Settings, tmp_path: Path) -> Iterator[Pair]:
    """a and b; b holds no grant on a's product."""
    made = make_pair(settings, tmp_path, grant=False)
    yield made
    made.a.close()
    made.b.close()


@pytest.fixture
def granted(settings: Settings, tmp_path: Path) -> Iterator[Pair]:
    """a and b; b may read product `orders`."""
    made = make_pair(settings, tmp_path, grant=True)
    yield made
    made.a.close()
    made.b.close()


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    if not path.is_file():
        return {}
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def fingerprint(settings: Settings, *folders: Path) -> dict[str, Any]:
    """Every file (sha256) under RAT_HOME and `folders` except SQLite's -wal/-shm, and every store row."""
    files: dict[str, str] = {}
    for base in (settings.home, *folders):
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")) and not path.name.endswith(".db"):
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    stores = {name: _rows(settings.home / name) for name in ("catalog.db", "registry.db", "runs.db")}
    return {"files": files, "stores": stores}


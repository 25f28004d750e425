"""The expiry log (RAT_HOME/expiry.db): table versions `rat expire` retired, which gc may then collect.

Commits keep their rows forever (history stays readable as a log), but a table version older
than its layer's `retention_days` stops being a gc root once `rat expire` records its metadata
location here. gc (catalog/gc.py) still keeps it when a branch head, a tag or a product pin
points at it, or when a commit made after the expiry names it again (a branch created later
from old history).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS expired (
    metadata_location TEXT PRIMARY KEY,
    table_key TEXT NOT NULL,
    expired_at REAL NOT NULL
)
"""


class ExpiryLog:
    """Metadata locations retired by retention, with when; one owner of `expiry.db`."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / "expiry.db"

    def _connect(self, *, write: bool) -> sqlite3.Connection | None:
        if not write and not self.path.is_file():
            return None
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=60)
            con.execute(_SCHEMA)
            return con
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60)

    def record(self, expired: Iterable[tuple[str, str]], at: float | None = None) -> int:
        """Record (table key, metadata location) pairs as expired now; returns how many are new."""
        rows = [(loc, key, at or time.time()) for key, loc in expired]
        if not rows:
            return 0
        con = self._connect(write=True)
        assert con is not None
        try:
            with con:
                before = con.total_changes
                con.executemany("INSERT OR IGNORE INTO expired VALUES (?, ?, ?)", rows)
                return con.total_changes - before
        finally:
            con.close()

    def expired(self) -> dict[str, float]:
        """metadata location -> when it was expired."""
        con = self._connect(write=False)
        if con is None:
            return {}
        try:
            try:
                return {loc: at for loc, at in con.execute("SELECT metadata_location, expired_at FROM expired")}
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return {}
                raise
        finally:
            con.close()

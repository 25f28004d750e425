"""The product registry: the seed's schema (products, product_access, product_subscriptions) plus
refreshes, behind an interface a PostgreSQL implementation could fill. SQLite under RAT_HOME here.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ratatouille_nb.products.errors import VersionExistsError
from ratatouille_nb.sqlite_store import Migration, open_sqlite


class Pin(BaseModel):
    """Where a release's data is: one immutable Iceberg metadata file and its snapshot."""

    model_config = ConfigDict(frozen=True)

    metadata_location: str
    snapshot_id: int | None = None
    pinned_at: float = 0.0
    reason: str = "publish"


class Release(BaseModel):
    """One published version of a product (a row of the seed's `products` table)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    version: str
    owner_workspace: str
    description: str | None = None
    schema_: list[dict] = Field(default_factory=list, alias="schema")
    storage_path: str = ""
    iceberg_snapshot_id: int | None = None
    metadata_location: str = ""
    source_table: str = ""
    created_at: float = 0.0
    created_by: str = ""


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True)

    product_name: str
    consumer_workspace: str
    alias: str | None = None
    version_constraint: str = "latest"
    subscribed_at: float = 0.0


class ProductRegistry(ABC):
    """Storage of releases, grants, subscriptions and refreshes (no policy: see service.py)."""

    @abstractmethod
    def releases(self, name: str | None = None) -> list[Release]: ...

    @abstractmethod
    def add_release(self, release: Release) -> None:
        """Raises VersionExistsError if (name, version) exists."""

    @abstractmethod
    def grants(self, name: str) -> list[tuple[str, str]]: ...

    @abstractmethod
    def set_grant(self, name: str, workspace: str, level: str, by: str) -> None: ...

    @abstractmethod
    def revoke(self, name: str, workspace: str) -> bool: ...

    @abstractmethod
    def subscribe(self, sub: Subscription) -> None: ...

    @abstractmethod
    def subscriptions(self, *, consumer: str | None = None, product: str | None = None) -> list[Subscription]: ...

    @abstractmethod
    def add_refresh(self, name: str, version: str, pin: Pin, by: str) -> None: ...

    @abstractmethod
    def pins(self, name: str, version: str) -> list[Pin]:
        """Every pin of a release, oldest first (the publish, then each refresh)."""


MIGRATIONS: list[Migration] = [
    """CREATE TABLE IF NOT EXISTS products (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, owner_workspace TEXT NOT NULL,
        description TEXT, schema_json TEXT, storage_path TEXT, iceberg_snapshot_id BIGINT,
        created_at TIMESTAMP, created_by TEXT, metadata_location TEXT, source_table TEXT,
        UNIQUE(name, version));
    CREATE TABLE IF NOT EXISTS product_access (
        id TEXT PRIMARY KEY, product_name TEXT NOT NULL, workspace TEXT NOT NULL,
        access_level TEXT NOT NULL, granted_at TIMESTAMP, granted_by TEXT,
        UNIQUE(product_name, workspace));
    CREATE TABLE IF NOT EXISTS product_subscriptions (
        id TEXT PRIMARY KEY, product_name TEXT NOT NULL, consumer_workspace TEXT NOT NULL,
        alias TEXT, version_constraint TEXT, subscribed_at TIMESTAMP,
        UNIQUE(product_name, consumer_workspace));
    CREATE TABLE IF NOT EXISTS product_refreshes (
        id TEXT PRIMARY KEY, product_name TEXT NOT NULL, version TEXT NOT NULL,
        metadata_location TEXT NOT NULL, snapshot_id BIGINT, refreshed_at TIMESTAMP, refreshed_by TEXT, reason TEXT)""",
]
"""registry.db's schema, step by step (sqlite_store.migrate applies the missing steps on open)."""


class SqliteProductRegistry(ProductRegistry):
    """The registry in RAT_HOME/registry.db (WAL), shared by every workspace of that home."""

    def __init__(self, home: Path) -> None:
        self._conn = open_sqlite(home / "registry.db", MIGRATIONS)

    def _row_release(self, row: tuple) -> Release:
        (id_, name, version, owner, desc, schema_json, storage, snap, created_at, created_by, meta, source) = row
        return Release(
            id=id_, name=name, version=version, owner_workspace=owner, description=desc,
            schema=json.loads(schema_json or "[]"), storage_path=storage or "", iceberg_snapshot_id=snap,
            created_at=created_at or 0.0, created_by=created_by or "", metadata_location=meta or "", source_table=source or "",
        )

    def releases(self, name: str | None = None) -> list[Release]:
        sql = "SELECT * FROM products" + (" WHERE name = ?" if name else "") + " ORDER BY name, created_at"
        return [self._row_release(r) for r in self._conn.execute(sql, (name,) if name else ())]

    def add_release(self, release: Release) -> None:
        try:
            self._conn.execute(
                "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (release.id, release.name, release.version, release.owner_workspace, release.description,
                 json.dumps(release.schema_), release.storage_path, release.iceberg_snapshot_id, release.created_at,
                 release.created_by, release.metadata_location, release.source_table),
            )
        except sqlite3.IntegrityError:
            raise VersionExistsError(
                f"product '{release.name}' version {release.version} already exists: versions are immutable",
                hint="publish a new version, or `rat products refresh` to re-pin the newest one",
            ) from None

    def grants(self, name: str) -> list[tuple[str, str]]:
        rows = self._conn.execute(
            "SELECT workspace, access_level FROM product_access WHERE product_name = ? ORDER BY workspace", (name,)
        )
        return [(r[0], r[1]) for r in rows]

    def set_grant(self, name: str, workspace: str, level: str, by: str) -> None:
        self._conn.execute(
            "INSERT INTO product_access VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(product_name, workspace) "
            "DO UPDATE SET access_level = excluded.access_level, granted_at = excluded.granted_at, granted_by = excluded.granted_by",
            (uuid.uuid4().hex, name, workspace, level, time.time(), by),
        )

    def revoke(self, name: str, workspace: str) -> bool:
        cur = self._conn.execute("DELETE FROM product_access WHERE product_name = ? AND workspace = ?", (name, workspace))
        return cur.rowcount > 0

    def subscribe(self, sub: Subscription) -> None:
        self._conn.execute(
            "INSERT INTO product_subscriptions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(product_name, consumer_workspace) "
            "DO UPDATE SET alias = excluded.alias, version_constraint = excluded.version_constraint",
            (uuid.uuid4().hex, sub.product_name, sub.consumer_workspace, sub.alias, sub.version_constraint, sub.subscribed_at or time.time()),
        )

    def subscriptions(self, *, consumer: str | None = None, product: str | None = None) -> list[Subscription]:
        sql = "SELECT product_name, consumer_workspace, alias, version_constraint, subscribed_at FROM product_subscriptions WHERE 1=1"
        args: list[str] = []
        if consumer:
            sql += " AND consumer_workspace = ?"
            args.append(consumer)
        if product:
            sql += " AND product_name = ?"
            args.append(product)
        return [
            Subscription(product_name=r[0], consumer_workspace=r[1], alias=r[2], version_constraint=r[3] or "latest", subscribed_at=r[4] or 0)
            for r in self._conn.execute(sql + " ORDER BY product_name", args)
        ]

    def add_refresh(self, name: str, version: str, pin: Pin, by: str) -> None:
        self._conn.execute(
            "INSERT INTO product_refreshes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, name, version, pin.metadata_location, pin.snapshot_id, pin.pinned_at, by, pin.reason),
        )

    def pins(self, name: str, version: str) -> list[Pin]:
        release = next((r for r in self.releases(name) if r.version == version), None)
        out = []
        if release is not None:
            out.append(Pin(metadata_location=release.metadata_location, snapshot_id=release.iceberg_snapshot_id, pinned_at=release.created_at))
        rows = self._conn.execute(
            "SELECT metadata_location, snapshot_id, refreshed_at, reason FROM product_refreshes "
            "WHERE product_name = ? AND version = ? ORDER BY refreshed_at",
            (name, version),
        )
        out += [Pin(metadata_location=r[0], snapshot_id=r[1], pinned_at=r[2], reason=r[3] or "refresh") for r in rows]
        return out

    def all_pins(self) -> list[Pin]:
        """Every pin of every release (publishes and refreshes): what garbage collection must keep."""
        rows = [
            *self._conn.execute("SELECT metadata_location, iceberg_snapshot_id, created_at FROM products"),
            *self._conn.execute("SELECT metadata_location, snapshot_id, refreshed_at FROM product_refreshes"),
        ]
        return [Pin(metadata_location=loc, snapshot_id=snap, pinned_at=at or 0.0) for loc, snap, at in rows if loc]

    def close(self) -> None:
        self._conn.close()

"""The warehouse: root URI, per-workspace prefixes, and the FileIO pyiceberg and gc use.

Local warehouses use plain absolute paths (both DuckDB and pyiceberg take them); an S3 warehouse
uses `s3://bucket/path` with the same layout: `<root>/<workspace prefix>/<layer>/<table>/`.

On S3, pyiceberg reads and writes through its FileIO (configured by `io_properties`), DuckDB
through httpfs with the secret `duckdb_secret_sql()` returns, and listing/deleting (gc, the
cleanup of a failed write) through pyarrow's `S3FileSystem`. Path-style addressing is used
whenever an endpoint is given (MinIO, moto and most S3-compatible servers need it).

Every file a workspace writes must lie under its storage root `<root>/<prefix>/`:
`check_within` is the guard the writer and the table catalog call before writing.
"""

from __future__ import annotations

import os
import posixpath
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.errormap import mapped_errors
from ratatouille_nb.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    from ratatouille_nb.settings import Settings

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


class StoragePrefixError(CatalogError):
    """A write aimed outside the workspace's storage prefix: refused before any byte is written."""


def _normalize_s3(uri: str) -> str:
    for scheme in S3_SCHEMES[1:]:
        if uri.startswith(scheme):
            return "s3://" + uri[len(scheme) :]
    return uri


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Warehouse:
    """Root of all table files; `io_properties` configure pyiceberg's FileIO (S3 credentials)."""

    root: str
    io_properties: dict[str, str] = field(default_factory=dict, repr=False)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def s3(
        cls,
        root: str,
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
    ) -> Warehouse:
        """An S3 warehouse; `endpoint` (e.g. `http://127.0.0.1:9000`) selects an S3-compatible server."""
        root = _normalize_s3(root).rstrip("/")
        bucket = root[len("s3://") :].split("/", 1)[0]
        if not bucket:
            raise ConfigError(f"RAT_WAREHOUSE '{root}' names no bucket", hint="use s3://<bucket>/<path>")
        props = {"s3.region": region or "us-east-1"}
        if endpoint:
            if "://" not in endpoint:
                endpoint = f"https://{endpoint}"
            props["s3.endpoint"] = endpoint.rstrip("/")
            props["s3.force-virtual-addressing"] = "false"
        if access_key:
            props["s3.access-key-id"] = access_key
        if secret_key:
            props["s3.secret-access-key"] = secret_key
        return cls(root=root, io_properties=props)

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        """The warehouse RAT_WAREHOUSE names (S3 with S3_* credentials), else RAT_HOME/warehouse."""
        root = settings.warehouse_root
        if root.startswith(S3_SCHEMES):
            return cls.s3(
                root,
                endpoint=settings.s3_endpoint,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key,
                region=settings.s3_region,
            )
        if "://" in root and not root.startswith("file://"):
            raise ConfigError(
                f"RAT_WAREHOUSE '{root}': only local paths and s3:// are supported",
                hint="set RAT_WAREHOUSE=s3://<bucket>/<path> (with S3_ENDPOINT for MinIO) or a local folder",
            )
        return cls(root=str(Path(root.removeprefix("file://")).expanduser().resolve()))

    # -- layout -------------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def is_s3(self) -> bool:
        return self.root.startswith(S3_SCHEMES)

    def location(self, *parts: str) -> str:
        """Join path parts under the root."""
        base = self.root.removeprefix("file://").rstrip("/")
        return "/".join([base, *(p.strip("/") for p in parts if p)])

    def table_location(self, prefix: str, key: str) -> str:
        layer, name = key.split(".", 1)
        return self.location(prefix, layer, name)

    def new_data_dir(self, table_location: str) -> str:
        """A fresh folder for one write's data files, so a failed write is cleaned by removing it."""
        return f"{table_location}/data/w-{uuid.uuid4().hex[:16]}"

    # -- the prefix guard ---------------------------------------------------------------------

    def _canonical(self, path: str) -> str:
        """One spelling per location: no file://, s3a:// -> s3://, '.' and '..' resolved."""
        path = _normalize_s3(path.removeprefix("file://"))
        if "://" in path:
            scheme, rest = path.split("://", 1)
            return f"{scheme}://{posixpath.normpath('/' + rest).lstrip('/')}"
        return os.path.normpath(path)

    def within(self, prefix: str, path: str) -> bool:
        """True when `path` lies strictly under the workspace's storage root `<root>/<prefix>/`."""
        base = self._canonical(self.location(prefix))
        return self._canonical(path).startswith(base.rstrip("/") + "/")

    def check_within(self, prefix: str, path: str, what: str = "file") -> None:
        """Refuse (StoragePrefixError) a write of `what` at `path` outside `<root>/<prefix>/`."""
        if not self.within(prefix, path):
            raise StoragePrefixError(
                f"refusing to write {what} at {path}: outside this workspace's storage root {self.location(prefix)}/",
                hint="each workspace writes only under its own isolation.s3_prefix; write that table from the "
                "workspace that owns it, or create a copy here (CREATE TABLE layer.t AS SELECT …)",
            )

    # -- DuckDB -------------------------------------------------------------------------------

    def duckdb_secret_sql(self) -> str | None:
        """The `CREATE SECRET` that lets DuckDB's httpfs reach this warehouse (None when local)."""
        if not self.is_s3:
            return None
        props = self.io_properties
        options = ["TYPE S3", f"REGION {_sql_str(props.get('s3.region', 'us-east-1'))}"]
        if props.get("s3.access-key-id"):
            options.append(f"KEY_ID {_sql_str(props['s3.access-key-id'])}")
        if props.get("s3.secret-access-key"):
            options.append(f"SECRET {_sql_str(props['s3.secret-access-key'])}")
        endpoint = props.get("s3.endpoint")
        if endpoint:
            scheme, host = endpoint.split("://", 1)
            options.append(f"ENDPOINT {_sql_str(host)}")
            options.append("URL_STYLE 'path'")
            options.append(f"USE_SSL {'true' if scheme == 'https' else 'false'}")
        bucket = self.root[len("s3://") :].split("/", 1)[0]
        options.append(f"SCOPE {_sql_str('s3://' + bucket)}")
        return f"CREATE OR REPLACE SECRET rat_warehouse ({', '.join(options)})"

    # -- files --------------------------------------------------------------------------------

    def file_io(self) -> Any:
        from pyiceberg.io import load_file_io

        return load_file_io(dict(self.io_properties), self.root)

    def makedirs(self, path: str) -> None:
        """Create a local folder (DuckDB's COPY does not); S3 has no folders to create."""
        if self.is_local:
            with mapped_errors(path=path):  # permission denied, disk full: one line naming the folder
                Path(path).mkdir(parents=True, exist_ok=True)

    def list_files(self, prefix: str) -> Iterator[tuple[str, float]]:
        """(path, mtime) of every file under prefix."""
        if self.is_local:
            for dirpath, _dirs, files in os.walk(prefix):
                for name in files:
                    full = os.path.join(dirpath, name)
                    try:
                        yield full, os.path.getmtime(full)
                    except FileNotFoundError:
                        continue
            return
        from pyarrow import fs

        selector = fs.FileSelector(self._key(prefix).rstrip("/"), recursive=True, allow_not_found=True)
        for info in self._s3().get_file_info(selector):
            if info.type == fs.FileType.File:
                yield "s3://" + info.path, info.mtime.timestamp() if info.mtime else 0.0

    def delete(self, path: str) -> None:
        """Delete one file; a file already gone is not an error."""
        with mapped_errors(path=path):
            try:
                if self.is_local:
                    os.remove(path)
                else:
                    self._s3().delete_file(self._key(path))
            except FileNotFoundError:
                pass

    def remove_tree(self, path: str) -> None:
        """Delete a folder of files written by a failed statement."""
        if self.is_local:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            return
        key = self._key(path).rstrip("/")
        if "/" not in key:
            raise StoragePrefixError(f"refusing to delete a whole bucket ({path})")
        try:
            self._s3().delete_dir(key)
        except FileNotFoundError:
            pass

    def _key(self, path: str) -> str:
        """`s3://bucket/key` -> `bucket/key` (pyarrow's S3 path form)."""
        path = _normalize_s3(path)
        if not path.startswith("s3://"):
            raise ValueError(f"not an s3:// path: {path}")
        return path[len("s3://") :]

    def _s3(self) -> Any:
        return _s3_filesystem(tuple(sorted(self.io_properties.items())))


_FS_LOCK = threading.Lock()
_FS_CACHE: dict[tuple[tuple[str, str], ...], Any] = {}


def _s3_filesystem(key: tuple[tuple[str, str], ...]) -> Any:
    """One pyarrow S3FileSystem per set of credentials (creating one costs a few ms)."""
    from pyarrow import fs

    with _FS_LOCK:
        cached = _FS_CACHE.get(key)
        if cached is not None:
            return cached
        props = dict(key)
        endpoint = props.get("s3.endpoint", "")
        kwargs: dict[str, Any] = {
            "access_key": props.get("s3.access-key-id"),
            "secret_key": props.get("s3.secret-access-key"),
            "region": props.get("s3.region", "us-east-1"),
        }
        if endpoint:
            scheme, host = endpoint.split("://", 1) if "://" in endpoint else ("https", endpoint)
            kwargs["endpoint_override"] = host
            kwargs["scheme"] = scheme
            kwargs["force_virtual_addressing"] = False
        filesystem = fs.S3FileSystem(**kwargs)
        _FS_CACHE[key] = filesystem
        return filesystem

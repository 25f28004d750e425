"""The warehouse: root URI, per-workspace prefixes, and the FileIO pyiceberg and gc use.

Local warehouses use plain absolute paths (both DuckDB and pyiceberg take them); an S3 warehouse
uses `s3://bucket/path` with the same layout: `<root>/<workspace prefix>/<layer>/<table>/`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Warehouse:
    """Root of all table files; `io_properties` configure pyiceberg's FileIO (S3 credentials)."""

    root: str
    io_properties: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

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

    def file_io(self) -> Any:
        from pyiceberg.io import load_file_io

        return load_file_io(dict(self.io_properties), self.root)

    def makedirs(self, path: str) -> None:
        if self.is_local:
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

        filesystem, path = fs.FileSystem.from_uri(prefix) if not self.io_properties else (self._s3(), prefix.removeprefix("s3://"))
        for info in filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True)):
            if info.type == fs.FileType.File:
                yield "s3://" + info.path, info.mtime.timestamp() if info.mtime else 0.0

    def delete(self, path: str) -> None:
        if self.is_local:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            return
        self._s3().delete_file(path.removeprefix("s3://"))

    def remove_tree(self, path: str) -> None:
        """Delete a folder of files written by a failed statement."""
        if self.is_local:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            return
        from pyarrow import fs

        try:
            self._s3().delete_dir(path.removeprefix("s3://"))
        except (OSError, fs.ArrowException if hasattr(fs, "ArrowException") else OSError):
            pass

    def _s3(self) -> Any:
        from pyarrow import fs

        props = self.io_properties
        endpoint = props.get("s3.endpoint", "")
        return fs.S3FileSystem(
            access_key=props.get("s3.access-key-id"),
            secret_key=props.get("s3.secret-access-key"),
            region=props.get("s3.region", "us-east-1"),
            endpoint_override=endpoint.split("://", 1)[-1] or None,
            scheme="https" if endpoint.startswith("https") else "http",
        )

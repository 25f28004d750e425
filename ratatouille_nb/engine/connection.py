"""A DuckDB connection configured by a resource profile: memory cap, threads, spill folder — then locked.

The extensions load when the connection opens (avro and iceberg; httpfs too with an S3
warehouse — locally the sandbox allows no URL, so it would serve nothing): once the sandbox is
applied no `LOAD` can run, and loading lazily raced between parallel readers. With an S3
warehouse the S3 secret is created too, so `COPY … TO 's3://…'`, `read_parquet`, `glob()` and
`iceberg_scan` reach the bucket (path style for endpoints). A `SandboxPolicy` then restricts the
files SQL may reach and locks the configuration (engine/sandbox.py), so `SET memory_limit` cannot
lift the profile's cap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ratatouille_nb.engine.extensions import EXTENSIONS, load_extensions
from ratatouille_nb.resources import ResourceConfig, ensure_temp_directory

if TYPE_CHECKING:
    from ratatouille_nb.engine.sandbox import SandboxPolicy
    from ratatouille_nb.storage import Warehouse


def temp_directory(resources: ResourceConfig, spill_dir: Path) -> Path:
    """Where DuckDB spills: the profile's `temp_directory`, else the spill folder."""
    return Path(resources.duckdb.temp_directory).expanduser() if resources.duckdb.temp_directory else spill_dir


def connect(
    resources: ResourceConfig,
    spill_dir: Path,
    *,
    warehouse: Warehouse | None = None,
    policy: SandboxPolicy | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB that spills to `spill_dir` instead of exceeding the profile's cap."""
    temp = ensure_temp_directory(temp_directory(resources, spill_dir))
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "memory_limit": f"{resources.duckdb_limit_mb}MB",
            "threads": resources.threads,
            "temp_directory": str(temp),
            # Streaming writes and scans need not keep rows in order; this keeps COPY memory flat.
            "preserve_insertion_order": False,
        }
    )
    try:
        # No DuckDB progress bar: in notebooks it renders as a stray widget under every cell.
        con.execute("SET enable_progress_bar = false")
        secret = warehouse.duckdb_secret_sql() if warehouse is not None else None
        load_extensions(con, EXTENSIONS if secret is not None else tuple(e for e in EXTENSIONS if e != "httpfs"))
        if secret is not None:
            con.execute(secret)
        if policy is not None:
            policy.apply(con)
    except BaseException:
        con.close()
        raise
    return con

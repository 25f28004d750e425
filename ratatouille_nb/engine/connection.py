"""A DuckDB connection configured by a resource profile: memory cap, threads, spill folder.

With an S3 warehouse the connection also loads httpfs and creates the S3 secret, so `COPY … TO
's3://…'`, `read_parquet`, `glob()` and `iceberg_scan` reach the bucket (path style for endpoints).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ratatouille_nb.engine.extensions import load_extensions
from ratatouille_nb.resources import ResourceConfig

if TYPE_CHECKING:
    from ratatouille_nb.storage import Warehouse


def connect(
    resources: ResourceConfig,
    spill_dir: Path,
    *,
    extensions: tuple[str, ...] | None = None,
    warehouse: Warehouse | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB that spills to `spill_dir` instead of exceeding the profile's cap."""
    temp = Path(resources.duckdb.temp_directory).expanduser() if resources.duckdb.temp_directory else spill_dir
    temp.mkdir(parents=True, exist_ok=True)
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
    # No DuckDB progress bar: in notebooks it renders as a stray widget under every cell.
    con.execute("SET enable_progress_bar = false")
    if extensions is None:
        load_extensions(con)
    else:
        load_extensions(con, extensions)
    secret = warehouse.duckdb_secret_sql() if warehouse is not None else None
    if secret is not None:
        if extensions is not None and "httpfs" not in extensions:
            load_extensions(con, ("httpfs",))
        con.execute(secret)
    return con

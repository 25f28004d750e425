"""A DuckDB connection configured by a resource profile: memory cap, threads, spill folder."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ratatouille_nb.engine.extensions import load_extensions
from ratatouille_nb.resources import ResourceConfig


def connect(resources: ResourceConfig, spill_dir: Path, *, extensions: tuple[str, ...] | None = None) -> duckdb.DuckDBPyConnection:
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
    return con

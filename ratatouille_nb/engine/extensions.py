"""Load DuckDB extensions from their PyPI packages: `INSTALL` cannot download on offline machines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from ratatouille_nb.errors import ConfigError

# avro must come before iceberg (iceberg needs it at load); httpfs is needed for s3:// paths.
EXTENSIONS = ("avro", "iceberg", "httpfs")


def extension_path(name: str) -> Path:
    """Path of the `.duckdb_extension` file shipped by `duckdb-extension-<name>` for this DuckDB."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the DuckDB extension package 'duckdb-extension-{name}' is not installed",
            hint=f"pip install duckdb-extension-{name}=={duckdb.__version__}",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise ConfigError(
            f"duckdb-extension-{name} does not match DuckDB {duckdb.__version__} (no {path.name} for it)",
            hint=f"pip install duckdb=={duckdb.__version__} duckdb-extension-{name}=={duckdb.__version__}",
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, names: tuple[str, ...] = EXTENSIONS) -> None:
    """LOAD each extension by file path (no network, no unsigned flag needed)."""
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")

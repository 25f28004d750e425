"""Ratatouille: a Jupyter-first lakehouse — memory-capped DuckDB over Iceberg with git-like branches.

`from ratatouille_nb import rat, pipeline, ref`; heavy modules load only when used.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["pipeline", "rat", "ref"]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext ratatouille_nb`: register the `%rat` magics (heavy modules load on first use)."""
    from ratatouille_nb.notebook.magics import load

    load(ipython)


def __getattr__(name: str) -> Any:
    if name in ("rat", "ref"):
        from ratatouille_nb import api

        return getattr(api, name)
    if name == "pipeline":
        from ratatouille_nb.pipeline.decorators import pipeline

        return pipeline
    if name == "ingest":
        from ratatouille_nb.pipeline import ingest

        return ingest
    raise AttributeError(f"module 'ratatouille_nb' has no attribute {name!r}")

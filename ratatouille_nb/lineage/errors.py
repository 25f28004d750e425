"""Lineage errors (all RatError: the CLI prints them as one `error:` line)."""

from __future__ import annotations

from ratatouille_nb.errors import RatError


class LineageError(RatError):
    """Lineage cannot be computed or shown as asked (bad direction, format, …)."""


class UnknownNodeError(LineageError):
    """A model name or `layer.table` that is not in the lineage graph."""


class ColumnLineageError(LineageError):
    """sqlglot could not parse or resolve a compiled SQL model."""

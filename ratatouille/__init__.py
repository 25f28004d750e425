"""Compatibility name for the seed's examples (`from ratatouille import pipeline, ingest`)."""

from ratatouille_nb import __getattr__  # noqa: F401

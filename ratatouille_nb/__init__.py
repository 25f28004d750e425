"""Ratatouille."""

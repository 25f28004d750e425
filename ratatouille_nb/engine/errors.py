"""Errors of the SQL boundary: statements Ratatouille refuses to run, files SQL may not reach."""

from __future__ import annotations

from ratatouille_nb.errors import AccessDeniedError, SqlError, UnsupportedStatementError


class ForbiddenStatementError(UnsupportedStatementError, AccessDeniedError):
    """A statement outside the allow-list (ATTACH, SET, COPY outside exports/ …); nothing ran."""


class SandboxError(SqlError, AccessDeniedError):
    """SQL tried to read or write a file outside what this workspace's sandbox allows; nothing changed."""

"""Errors of the product registry (all RatError)."""

from __future__ import annotations

from ratatouille_nb.errors import AccessDeniedError, RatError

__all__ = ["AccessDeniedError", "IncompatibleVersionError", "ProductError", "ProductNotFoundError", "VersionExistsError"]


class ProductError(RatError):
    """Bad product name, version or request."""


class ProductNotFoundError(ProductError):
    """No such product, or no version satisfies the constraint."""


class VersionExistsError(ProductError):
    """Versions are immutable contracts: a version can be published once."""


class IncompatibleVersionError(ProductError):
    """The schema change needs a bigger version bump."""


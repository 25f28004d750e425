"""Where table files live: a local warehouse folder or an S3 prefix."""

from ratatouille_nb.storage.warehouse import Warehouse

__all__ = ["Warehouse"]

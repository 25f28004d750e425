"""Resource profiles: how much memory, how many threads, where to spill."""

from ratatouille_nb.resources.profiles import (
    PROFILE_NAMES,
    InvalidResourcesError,
    ResourceConfig,
    ensure_temp_directory,
    load_profile,
)

__all__ = ["PROFILE_NAMES", "InvalidResourcesError", "ResourceConfig", "ensure_temp_directory", "load_profile"]

"""What a name in `ref('…')`, `{{ ref(…) }}` or `rat.ref(…)` stands for: the one resolver.

A pipeline name is the table its model builds; `layer.table` is itself; `products.<name>` is a
data product; a bare name that is no model is a subscription alias of a product. The runner
(pipeline/executor.py), notebooks and the `rat` API all resolve through `resolve_name`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.loader import Project


def resolve_name(
    key: str, *, project: Project | None, aliases: Mapping[str, str], tables: Collection[str] = ()
) -> str | None:
    """The SQL name `key` refers to (`layer.table` or `products.<name>`), or None if nothing matches."""
    if key.startswith("products."):
        return key
    models = project.models if project is not None else {}
    if "." not in key and key not in models:
        name = aliases.get(key)
        return f"products.{name}" if name is not None else None
    if key in models:
        return models[key].target
    targets = project.by_target() if project is not None else {}
    return key if key in targets or key in tables else None

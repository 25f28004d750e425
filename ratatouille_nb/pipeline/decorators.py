"""`@pipeline`: marks a Python function as an ingestion model (the seed's Python pipeline form)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PipelineSpec:
    name: str | None = None
    layer: str | None = None
    schedule: str | None = None
    outputs: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    description: str | None = None


def pipeline(
    name: str | None = None,
    layer: str | None = None,
    schedule: str | None = None,
    outputs: list[str] | None = None,
    depends_on: list[str] | None = None,
    tags: list[str] | None = None,
    description: str | None = None,
) -> Callable[[F], F]:
    """Declare an ingestion pipeline; `name="bronze_raw_sales", layer="bronze"` writes `bronze.raw_sales`."""

    def mark(fn: F) -> F:
        fn.__rat_pipeline__ = PipelineSpec(  # type: ignore[attr-defined]
            name=name,
            layer=layer,
            schedule=schedule,
            outputs=list(outputs or []),
            depends_on=list(depends_on or []),
            tags=list(tags or []),
            description=description or (fn.__doc__ or "").strip() or None,
        )
        return fn

    return mark

"""dbt-like pipelines: SQL + YAML models and Python ingestion, run as one atomic commit per run.

The seed names this subpackage `pipeline`, and interfaces.md names the decorator
`from ratatouille_nb import pipeline`. Both hold: once this subpackage is imported it *is* the
attribute `ratatouille_nb.pipeline`, so the module itself is made callable as the decorator.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _PipelineModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ratatouille_nb.pipeline.decorators import pipeline

        return pipeline(*args, **kwargs)


sys.modules[__name__].__class__ = _PipelineModule

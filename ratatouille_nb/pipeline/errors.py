"""Pipeline errors: every one names the file (and line, when there is one)."""

from __future__ import annotations

from pathlib import Path

from ratatouille_nb.errors import RatError


class PipelineError(RatError):
    """A pipeline file is invalid: bad header, YAML, template, reference or cycle."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None, hint: str | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message, hint=hint)
        self.path = path
        self.line = line


class CycleError(PipelineError):
    """Models depend on each other in a loop."""


class ModelRunError(RatError):
    """A model failed while running; the run's commit did not happen."""

    def __init__(self, model: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"model {model} failed: {message}", hint=hint)
        self.model = model


class TestFailure(RatError):
    """Error-level data tests failed."""

"""Jinja2 for SQL models: `ref`, `source`, `this`, `is_incremental`, `watermark`, `var`, `env_var`, macros.

The functions read the model being rendered from a context variable, so macros from `macros/`
(imported once, as dbt makes them global) see the same `ref()` as the model that calls them.
Errors carry the file and line of the template that raised them.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ratatouille_nb.pipeline.errors import PipelineError

_CURRENT: contextvars.ContextVar[RenderContext] = contextvars.ContextVar("rat_render_context")


@dataclass
class RenderContext:
    """What one render of one model may ask about its surroundings."""

    model_name: str
    this: str
    resolve_ref: Callable[[str], str]
    resolve_source: Callable[[str], str]
    incremental: bool = False
    watermark: Callable[[str], Any] = lambda col: ""
    variables: dict[str, Any] = field(default_factory=dict)
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _ctx() -> RenderContext:
    try:
        return _CURRENT.get()
    except LookupError:
        raise PipelineError("ref()/source()/this are only available while rendering a model") from None


def _ref(name: str, *more: str) -> str:
    ctx = _ctx()
    key = ".".join((name, *more))
    ctx.refs.append(key)
    return ctx.resolve_ref(key)


def _source(path: str, *more: str) -> str:
    ctx = _ctx()
    key = "/".join((path, *more))
    ctx.sources.append(key)
    return ctx.resolve_source(key)


def _is_incremental() -> bool:
    return _ctx().incremental


def _watermark(column: str) -> Any:
    return _ctx().watermark(column)


_MISSING = object()


def _var(name: str, default: Any = _MISSING) -> Any:
    ctx = _ctx()
    if name in ctx.variables:
        return ctx.variables[name]
    if default is _MISSING:
        raise PipelineError(f"var('{name}') is not set and has no default", hint=f"pass --vars {name}=VALUE")
    return default


def _env_var(name: str, default: Any = _MISSING) -> Any:
    if name in os.environ:
        return os.environ[name]
    if default is _MISSING:
        raise PipelineError(f"env_var('{name}') is not set and has no default")
    return default


class _This:
    def __str__(self) -> str:
        return _ctx().this

    def __html__(self) -> str:
        return str(self)


class Templates:
    """A Jinja environment over one workspace's models and macros."""

    def __init__(self, macros_dir: Path | None = None) -> None:
        import jinja2

        self._sources: dict[str, tuple[str, str]] = {}
        self.env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self.env.globals.update(
            ref=_ref,
            source=_source,
            is_incremental=_is_incremental,
            watermark=_watermark,
            var=_var,
            env_var=_env_var,
            this=_This(),
        )
        if macros_dir is not None and macros_dir.is_dir():
            for path in sorted(macros_dir.glob("*.sql")):
                module = self._compile(path, path.read_text()).module
                for name in dir(module):
                    if not name.startswith("_"):
                        self.env.globals[name] = getattr(module, name)

    def _load(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        if name not in self._sources:
            return None
        source, filename = self._sources[name]
        return source, filename, lambda: True

    def _compile(self, path: Path, source: str) -> Any:
        import jinja2

        self._sources[str(path)] = (source, str(path))
        try:
            return self.env.get_template(str(path))
        except jinja2.TemplateSyntaxError as exc:
            raise PipelineError(f"template syntax error: {exc.message}", path=path, line=exc.lineno) from None
        except PipelineError:
            raise
        except Exception as exc:  # noqa: BLE001 - macro module execution may raise anything
            raise PipelineError(f"{type(exc).__name__}: {exc}", path=path, line=_template_line(exc, str(path))) from None

    def render(self, path: Path, source: str, context: RenderContext) -> str:
        """Render a model's SQL; errors name the file and line."""
        import jinja2

        template = self._compile(path, source)
        token = _CURRENT.set(context)
        try:
            return template.render()
        except PipelineError as exc:
            if exc.path is None:
                # args[0] is the message without the hint (str() would repeat it).
                raise PipelineError(exc.args[0], path=path, line=_template_line(exc, str(path)), hint=exc.hint) from None
            raise
        except jinja2.UndefinedError as exc:
            raise PipelineError(
                f"{exc.message} (unknown macro or variable?)", path=path, line=_template_line(exc, str(path))
            ) from None
        except Exception as exc:  # noqa: BLE001 - user template code may raise anything
            raise PipelineError(f"{type(exc).__name__}: {exc}", path=path, line=_template_line(exc, str(path))) from None
        finally:
            _CURRENT.reset(token)


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The line in `filename` where the template raised (jinja rewrites frames to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

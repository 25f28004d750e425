"""Jinja2 (sandboxed) for SQL models: `ref`, `source`, `this`, `is_incremental`, `watermark`, `var`,
`env_var`, macros — and for dbt projects dbt's context (pipeline/dbt/context.py).

The functions read the model being rendered from a context variable, so macros from `macros/`
(imported once, as dbt makes them global) see the same `ref()` as the model that calls them.
Values from outside the template (`var()`, `env_var()`) render as SQL literals, or as escaped
string content where the template quotes them (pipeline/literals.py); `| sqlsafe` inserts one
as SQL text. Errors carry the file and line of the template that raised them.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.literals import Outside, Raw, Sentinels, outside, sqlsafe
from ratatouille_nb.pipeline.macros import MACRO_PREFIX, MacroCall, MacroNamespace, MacroReturn, macro_return, macro_source

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
    # dbt: config() calls seen, the model's effective config, whether this is a real run
    # (dbt's `execute`), and how `run_query` / column lookups reach the engine.
    config: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)
    execute: bool = False
    run_query: Callable[[str], Any] | None = None
    describe: Callable[[str], list[tuple[str, str]]] | None = None
    sentinels: Sentinels = field(default_factory=Sentinels)
    packages: frozenset[str] = frozenset()


def current_context() -> RenderContext:
    """The render in progress on this thread (what `ref()`, `var()`, dbt's context functions ask)."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise PipelineError("ref()/source()/this are only available while rendering a model") from None


REF_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class Relation(Raw):
    """A table name as SQL text, with dbt's relation attributes (`.schema`, `.identifier`, …)."""

    @property
    def schema(self) -> str:
        return str.__str__(self).rsplit(".", 1)[0] if "." in self else "main"

    @property
    def identifier(self) -> str:
        return str.__str__(self).rsplit(".", 1)[-1]

    name = identifier
    table = identifier

    @property
    def database(self) -> str:
        return "ratatouille"

    def include(self, **_parts: Any) -> Relation:
        return self

    def render(self) -> str:
        return str.__str__(self)


def checked_ref_name(key: Any) -> str:
    """A ref() argument must be a table or model name, never SQL."""
    if not isinstance(key, str) or not REF_NAME_RE.match(key):
        raise PipelineError(f"ref({key!r}): not a model or table name (letters, digits, '_', one optional '.')")
    return str.__str__(key)


def _ref(name: str, *more: str, **kwargs: Any) -> str:
    ctx = current_context()
    if not ctx.execute and any(p == "" for p in (name, *more)):
        return Relation("")  # parse time: a var() that has no value yet names nothing
    parts = [checked_ref_name(p) for p in (name, *more)]
    version = kwargs.pop("v", kwargs.pop("version", None))
    if kwargs:
        raise PipelineError(f"ref(): unknown argument(s) {', '.join(sorted(kwargs))}")
    # dbt's two-argument form names a package first; models of every package share one namespace here.
    key = parts[-1] if len(parts) == 2 and parts[0] in ctx.packages else ".".join(parts)
    if version is not None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(version)):
            raise PipelineError(f"ref(…, v={version!r}): a version is letters, digits or '_'")
        key = f"{key}_v{version}"
    ctx.refs.append(key)
    return Relation(ctx.resolve_ref(key))




def _source(path: str, *more: str) -> str:
    ctx = current_context()
    key = "/".join((path, *more))
    ctx.sources.append(key)
    return ctx.resolve_source(key)


def _is_incremental() -> bool:
    return current_context().incremental


def _watermark(column: str) -> Any:
    return current_context().watermark(column)


_MISSING = object()


def _var(name: str, default: Any = _MISSING) -> Any:
    ctx = current_context()
    if name in ctx.variables:
        return outside(ctx.variables[name])
    if default is _MISSING:
        raise PipelineError(f"var('{name}') is not set and has no default", hint=f"pass --vars {name}=VALUE")
    return outside(default)


def _env_var(name: str, default: Any = _MISSING) -> Any:
    if name in os.environ:
        return outside(os.environ[name])
    if default is _MISSING:
        raise PipelineError(f"env_var('{name}') is not set and has no default")
    return outside(default)


def _finalize(value: Any) -> Any:
    """Every `{{ … }}` output: outside values become sentinels, resolved after rendering."""
    if isinstance(value, Outside):
        ctx = _CURRENT.get(None)
        if ctx is None:
            from ratatouille_nb.pipeline.literals import sql_literal

            return sql_literal(value)
        return ctx.sentinels.hold(value)
    return value


class _This:
    """`{{ this }}`: the model's own table, with dbt's relation attributes."""

    def __str__(self) -> str:
        return current_context().this

    def __html__(self) -> str:
        return str(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(Relation(current_context().this), name)


class Templates:
    """A sandboxed Jinja environment over one workspace's models and macros."""

    def __init__(
        self,
        macros_dir: Path | None = None,
        *,
        macro_paths: list[Path] | None = None,
        packages: dict[str, list[Path]] | None = None,
        extra_globals: dict[str, Any] | None = None,
    ) -> None:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment

        self._sources: dict[str, tuple[str, str]] = {}
        self.env = SandboxedEnvironment(
            loader=jinja2.FunctionLoader(self._load),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            finalize=_finalize,
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
        )
        self.env.filters["sqlsafe"] = sqlsafe
        self.env.globals.update(
            ref=_ref,
            source=_source,
            is_incremental=_is_incremental,
            watermark=_watermark,
            var=_var,
            env_var=_env_var,
            this=_This(),
        )
        self.env.globals["return"] = macro_return
        self.env.globals.update(extra_globals or {})
        self.macros: dict[str, MacroCall] = {}
        self.tests: dict[str, MacroCall] = {}
        for name, folders in (packages or {}).items():
            namespace = MacroNamespace(name)
            for path in (p for folder in folders for p in sorted(folder.rglob("*.sql"))):
                for macro in self._load_macros(path):
                    namespace.macros[macro.name] = macro
                    self.env.globals.setdefault(macro.name, macro)
            self.env.globals[name] = namespace
        dirs = list(macro_paths or [])
        if macros_dir is not None:
            dirs.insert(0, macros_dir)
        for folder in dirs:
            if folder.is_dir():
                for path in sorted(folder.rglob("*.sql")):
                    for macro in self._load_macros(path):
                        self.env.globals[macro.name] = macro

    def _load_macros(self, path: Path) -> list[MacroCall]:
        module = self._compile(path, macro_source(path.read_text())).module
        found = []
        for attr in dir(module):
            if attr.startswith(MACRO_PREFIX):
                name = attr[len(MACRO_PREFIX) :]
                call = MacroCall(getattr(module, attr), name, path)
                found.append(call)
                self.macros[name] = call
                if name.startswith("test_"):
                    self.tests[name[5:]] = call
            elif not attr.startswith("_"):
                self.env.globals[attr] = getattr(module, attr)
        return found

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
            raise PipelineError(f"template syntax error: {exc.message}", path=path, line=exc.lineno, hint=_syntax_hint(exc.message or "")) from None
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
            try:
                text = template.render()
            except MacroReturn as ret:
                text = str(ret.value)
            return context.sentinels.resolve(text)
        except PipelineError as exc:
            if exc.path is None:
                # args[0] is the message without the hint (str() would repeat it).
                raise PipelineError(exc.args[0], path=path, line=_template_line(exc, str(path)), hint=exc.hint) from None
            raise
        except jinja2.UndefinedError as exc:
            raise PipelineError(
                f"{exc.message} (unknown macro or variable?)", path=path, line=_template_line(exc, str(path))
            ) from None
        except jinja2.exceptions.SecurityError as exc:
            raise PipelineError(f"not allowed in a template: {exc}", path=path, line=_template_line(exc, str(path))) from None
        except RatError as exc:
            raise PipelineError(str(exc), path=path, line=_template_line(exc, str(path))) from None
        except Exception as exc:  # noqa: BLE001 - user template code may raise anything
            raise PipelineError(f"{type(exc).__name__}: {exc}", path=path, line=_template_line(exc, str(path))) from None
        finally:
            _CURRENT.reset(token)

    def render_string(self, text: str, context: RenderContext, names: dict[str, Any] | None = None) -> str:
        """Render text that is no file (ad-hoc SQL); `names` are extra template variables."""
        import jinja2

        token = _CURRENT.set(context)
        try:
            try:
                template = self.env.from_string(text)
            except jinja2.TemplateSyntaxError as exc:
                raise PipelineError(f"template error on line {exc.lineno}: {exc.message}") from None
            return context.sentinels.resolve(template.render(**(names or {})))
        except jinja2.UndefinedError as exc:
            raise PipelineError(f"{exc.message} (unknown macro or variable?)") from None
        except jinja2.exceptions.SecurityError as exc:
            raise PipelineError(f"not allowed in a template: {exc}") from None
        except MacroReturn as ret:
            return str(ret.value)
        finally:
            _CURRENT.reset(token)

    def call_macro(self, macro: MacroCall, context: RenderContext, *args: Any, **kwargs: Any) -> str:
        """Call a macro (a generic test, say) with a render context; errors name the macro's file."""
        token = _CURRENT.set(context)
        try:
            return context.sentinels.resolve(str(macro(*args, **kwargs)))
        except PipelineError:
            raise
        except RatError as exc:
            raise PipelineError(str(exc), path=macro.path, line=_template_line(exc, str(macro.path))) from None
        except Exception as exc:  # noqa: BLE001 - user macro code may raise anything
            raise PipelineError(f"{type(exc).__name__}: {exc}", path=macro.path, line=_template_line(exc, str(macro.path))) from None
        finally:
            _CURRENT.reset(token)


UNSUPPORTED_TAGS = {
    "materialization": "custom materializations are not supported: use one of view, table, incremental, ephemeral, snapshot",
    "call": "{% call statement(...) %} is not supported: use run_query(sql)",
    "snapshot": "{% snapshot %} blocks belong in snapshot-paths (snapshots/)",
    "docs": "{% docs %} blocks belong in .md files under docs-paths",
}


def _syntax_hint(message: str) -> str | None:
    for tag, hint in UNSUPPORTED_TAGS.items():
        if f"'{tag}'" in message:
            return hint
    return None


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The line in `filename` where the template raised (jinja rewrites frames to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line

"""`{{ python_var }}` in `%%rat sql` cells, bound safely: values become SQL literals, never syntax.

The cell renders in Jinja's sandboxed environment. Every value a cell prints is held as a
sentinel and, after rendering, replaced per occurrence by pipeline/literals.py: a complete literal
where it stands alone (`WHERE d = {{ day }}` -> `DATE '2024-01-01'`), escaped string content
inside a quoted string (`'{{ name }}%'`). Only `ref()` results and values passed through the
`sqlsafe` filter are inserted raw, and `ref()` accepts only a table or model name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ratatouille_nb.errors import SqlError
from ratatouille_nb.pipeline.literals import Raw, Sentinels, sql_literal

__all__ = ["Raw", "render_cell", "sql_literal"]


def render_cell(source: str, namespace: Mapping[str, Any], ref: Callable[[str], str]) -> str:
    """Render a cell: user variables as literals, `ref('x')` and `| sqlsafe` as raw SQL."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from ratatouille_nb.errors import RatError
    from ratatouille_nb.pipeline.templating import checked_ref_name

    sentinels = Sentinels()

    def finalize(value: Any) -> str:
        if isinstance(value, jinja2.Undefined):
            return str(value)  # raises inside the render (an unsafe attribute, a missing name)
        return str.__str__(value) if isinstance(value, Raw) else sentinels.hold(value)

    def safe_ref(name: Any) -> Raw:
        try:
            return Raw(ref(checked_ref_name(name)))
        except RatError as exc:
            raise SqlError(str(exc)) from None

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, finalize=finalize, autoescape=False, keep_trailing_newline=True)
    env.filters["sqlsafe"] = lambda value: Raw(str.__str__(value) if isinstance(value, str) else str(value))
    env.globals["ref"] = safe_ref
    try:
        text = env.from_string(source).render(**{k: v for k, v in namespace.items() if not k.startswith("_")})
    except jinja2.TemplateSyntaxError as exc:
        raise SqlError(f"template error on line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise SqlError(f"{exc.message} (define it in a Python cell first)") from None
    except jinja2.exceptions.SecurityError as exc:
        raise SqlError(f"not allowed in a cell template: {exc}") from None
    return sentinels.resolve(text)

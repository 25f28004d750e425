"""Jinja in ad-hoc SQL (`rat sql`, and for the magics and API through the same function)."""

from __future__ import annotations

from typing import Any

from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.literals import outside
from ratatouille_nb.pipeline.templating import RenderContext


def render_adhoc(session: Any, text: str, namespace: dict[str, Any] | None = None) -> str:
    """Jinja in an ad-hoc statement (`rat sql "… {{ ref('x') }} …"`, `%%rat sql`), as `dbt show --inline`.

    The workspace's macros, vars and (for dbt projects) dbt's context apply; `ref('x')` is the
    table model `x` builds (or a table name, checked), `source('s', 't')` a declared dbt source;
    `namespace` values (a notebook's variables) render as SQL literals unless `| sqlsafe`.
    Text without `{{` or `{%` is returned as it is, without loading the project.
    """
    if "{{" not in text and "{%" not in text:
        return text
    from ratatouille_nb.pipeline.loader import load_project

    project = load_project(session.workspace.root)
    assert project.templates is not None

    def resolve_ref(key: str) -> str:
        from ratatouille_nb.pipeline.names import resolve_name

        aliases = session.products.aliases() if "." not in key and key not in project.models else {}
        return resolve_name(key, project=project, aliases=aliases, tables=session.contents()) or key

    def resolve_source(key: str) -> str:
        found = project.source_relation(key)
        if found is None:
            raise PipelineError(f"source('{key}') is not a declared dbt source", hint="ad-hoc SQL reads tables by name")
        return found

    ctx = RenderContext(
        model_name="adhoc",
        this="adhoc",
        resolve_ref=resolve_ref,
        resolve_source=resolve_source,
        variables=dict(project.variables),
        execute=True,
        packages=frozenset(project.packages),
    )
    names = {k: outside(v) for k, v in (namespace or {}).items() if not k.startswith("_")}
    return project.templates.render_string(text, ctx, names).strip()

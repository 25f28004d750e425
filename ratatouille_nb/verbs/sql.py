"""SQL and table verbs: run statements on a ref, list and describe tables, resolve names.

`rat sql`, `rat.sql`, `%%rat sql` and the REST service run SQL through `sql()`; what a statement
may do is the engine's rule (engine/statements.py), what files it may touch the sandbox's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratatouille_nb.errors import RatError

if TYPE_CHECKING:
    from ratatouille_nb.engine.result import StatementResult
    from ratatouille_nb.engine.session import Session


def sql(s: Session, text: str, *, ref: str | None = None, jinja: bool = True) -> StatementResult:
    """Run one or more statements on `ref` (default: the current branch); each write is one commit.

    `{{ ref('model') }}`, the workspace's macros and vars render first (pipeline/adhoc.py), as in
    `dbt show --inline`; text without `{{`/`{%` runs as it is. Notebook cells render their own
    variables first (notebook/binding.py) and pass `jinja=False`.
    """
    if jinja:
        from ratatouille_nb.pipeline.adhoc import render_adhoc

        text = render_adhoc(s, text)
    return s.sql(text, ref=ref)


def resolve_name(s: Session, name: str) -> str:
    """A model name, `layer.table`, `products.<name>` or subscription alias -> its SQL name (else unchanged)."""
    from ratatouille_nb.pipeline.loader import load_project
    from ratatouille_nb.pipeline.names import resolve_name as resolve

    try:
        project = load_project(s.workspace.root)
    except RatError:
        project = None  # a broken pipeline file must not stop ad-hoc SQL
    found = resolve(name, project=project, aliases=s.products.aliases(), tables=s.contents())
    return found or name


def tables(s: Session, ref: str | None = None) -> list[dict[str, Any]]:
    """Every table of a ref with rows, files, size and snapshots (from Iceberg metadata only).

    A table whose metadata cannot be read is listed as `kind: broken` with the error and its hint,
    so one damaged file neither hides the other tables nor the way to fix it.
    """
    from ratatouille_nb.errors import TableMetadataError

    where = ref or s.branch
    out: list[dict[str, Any]] = []
    for key in sorted(s.contents(where)):
        try:
            out.append(s.table_stats(key, where))
        except TableMetadataError as exc:
            out.append({"table": key, "kind": "broken", "error": exc.args[0], "hint": exc.hint})
    return out


def table(s: Session, key: str, ref: str | None = None) -> dict[str, Any]:
    """Schema, rows, files and snapshots of one table."""
    return s.table_stats(key, ref)

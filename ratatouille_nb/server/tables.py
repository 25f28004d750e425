"""GET /ratatouille/tables?path=NOTEBOOK&branch=B: the tables browser of the Lab sidebar (verbs/tables.py).

The answer is `models.TablesResponse`.

The workspace is the request's, as for every endpoint (handlers.py `RatHandler.where`: the notebook
kernel's `?workspace=`, else found from `?path=`, else RAT_WORKSPACE). `branch`
(optional) is the ref to list, by default the session's branch (what the notebook's kernel uses
is passed by the frontend).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ratatouille_nb.server.models import TableColumn, TableFreshness, TableItem, TableLayer, TablesResponse
from ratatouille_nb.server.service import ApiError

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.verbs.tables import TableInfo

MAX_REF_CHARS = 200
REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/@~^]*$")


def table_query(table: str) -> str:
    """The `%%rat sql` cell "Insert query" puts in the notebook."""
    return f"%%rat sql\nSELECT *\nFROM {table}\nLIMIT 100"


def lineage_line(table: str) -> str:
    """The cell "Show lineage" puts in the notebook."""
    return f"%rat lineage {table}"


def validate_ref(branch: str | None) -> str | None:
    if branch is None or branch == "":
        return None
    if len(branch) > MAX_REF_CHARS or not REF_RE.match(branch) or ".." in branch:
        raise ApiError(400, f"invalid branch name {branch[:80]!r}")
    return branch


def _item(t: TableInfo) -> TableItem:
    f = t.freshness
    return TableItem(
        table=t.table,
        layer=t.layer,
        name=t.name,
        kind=t.kind,
        rows=t.rows,
        columns=[TableColumn(name=c.name, type=c.type, nullable=c.nullable) for c in t.columns],
        snapshot_at=t.snapshot_at,
        commit=t.commit,
        model=t.model,
        model_path=t.model_path,
        freshness=TableFreshness(
            status=f.status,
            basis=f.basis,
            age_hours=f.age_hours,
            warn_after_hours=f.warn_after_hours,
            error_after_hours=f.error_after_hours,
            column=f.column,
            text=f.text,
        ),
        error=t.error,
        hint=t.hint,
        query=table_query(t.table),
        lineage=lineage_line(t.table),
    )


def list_tables(session: Session, branch: str | None = None) -> dict[str, Any]:
    """GET /ratatouille/tables: the answer, from verbs/tables.py."""
    from ratatouille_nb.verbs.tables import list_tables as listing

    found = listing(session, validate_ref(branch))
    return TablesResponse(
        workspace=found.workspace,
        workspace_root=str(session.workspace.root),
        ref=found.ref,
        commit=found.commit,
        layers=[TableLayer(name=layer.name, tables=[_item(t) for t in layer.tables]) for layer in found.layers],
    ).model_dump()

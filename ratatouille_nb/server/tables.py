"""GET /ratatouille/tables?path=NOTEBOOK&branch=B: the tables browser of the Lab sidebar (verbs/tables.py).

The answer is `models.TablesResponse`.

`path` (optional) is the active notebook, relative to the server root: without RAT_WORKSPACE the
workspace is the nearest folder holding workspace.yaml (or dbt_project.yml) above it. `branch`
(optional) is the ref to list, by default the session's branch (what the notebook's kernel uses
is passed by the frontend).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.server.models import TableColumn, TableFreshness, TableItem, TableLayer, TablesResponse
from ratatouille_nb.server.service import ApiError, resolve_notebook

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


def workspace_for(server_root: Path, path: str | None) -> str | None:
    """The workspace folder of the notebook at `path` when RAT_WORKSPACE does not name one (else None)."""
    from ratatouille_nb.workspace.manager import CONFIG_NAME, DBT_PROJECT

    if not path or os.environ.get("RAT_WORKSPACE"):
        return None
    notebook = resolve_notebook(server_root, path)
    for folder in notebook.parents:
        if (folder / CONFIG_NAME).is_file() or (folder / DBT_PROJECT).is_file():
            return str(folder)
        if folder == server_root.resolve():
            break
    return None


@contextmanager
def open_tables_session(user: str | None, server_root: Path, path: str | None) -> Iterator[Session]:
    """The server session, in the notebook's workspace when the environment names none."""
    from ratatouille_nb.server import service
    from ratatouille_nb.verbs.session import open_session

    folder = workspace_for(server_root, path)
    if folder is None:
        with service.open_server_session(user) as session:
            yield session
        return
    session = open_session(server_user=user, workspace=folder)
    try:
        yield session
    finally:
        session.close()


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


def answer(user: str | None, server_root: Path, path: str | None, branch: str | None) -> dict[str, Any]:
    """The whole request, in one worker thread: open the notebook's session, list, close; core errors as ApiError."""
    from ratatouille_nb.errormap import map_error
    from ratatouille_nb.server import service

    ref = validate_ref(branch)
    try:
        with open_tables_session(user, server_root, path) as session:
            return list_tables(session, ref)
    except ApiError:
        raise
    except Exception as exc:  # RatErrors and the library errors errormap.py knows become a status; a bug stays a 500
        mapped = map_error(exc)
        if mapped is None:
            raise
        raise service.api_error_from(mapped) from None


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

"""SQL and table verbs: run statements on a ref, list and describe tables, resolve names.

`rat sql`, `rat.sql`, `%%rat sql` and the REST service run SQL through `sql()`; what a statement
may do is the engine's rule (engine/statements.py), what files it may touch the sandbox's.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from ratatouille_nb.errors import RatError, SqlError, TableNotFoundError

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
    try:
        return s.sql(text, ref=ref)
    except (TableNotFoundError, SqlError) as exc:
        suggest(s, exc, text, ref)
        raise


_MISSING_TABLE_RE = re.compile(r"table '([^']+)' does not exist|Table with name \"?([A-Za-z_][\w]*)\"? does not exist", re.IGNORECASE)
_MISSING_COLUMN_RE = re.compile(r'column "([^"]+)" not found|does not have a column named "([^"]+)"', re.IGNORECASE)


def _closest(word: str, candidates: list[str]) -> str | None:
    by_lower = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def did_you_mean(s: Session, message: str, sql_text: str, ref: str | None = None) -> str | None:
    """"did you mean …?" for a missing table (against the ref's tables) or column (against the columns
    of the tables the statement reads), or None when nothing is close."""
    from ratatouille_nb.engine.scope import PAIR_RE

    contents = s.contents(ref)
    m = _MISSING_TABLE_RE.search(message)
    if m:
        wanted = m.group(1) or m.group(2)
        if "." in wanted:
            close = _closest(wanted, [k for k in contents if k != wanted.lower()])
        else:  # an unqualified name: compare with the table part of each layer.table
            by_table = {k.split(".", 1)[1]: k for k in contents}
            match = _closest(wanted, list(by_table))
            close = by_table[match] if match else None
        return f"did you mean {close}?" if close else None
    m = _MISSING_COLUMN_RE.search(message)
    if m:
        wanted = m.group(1) or m.group(2)
        wanted = wanted.rsplit(".", 1)[-1]
        columns: dict[str, str] = {}
        for a, b in PAIR_RE.findall(sql_text):
            key = f"{a}.{b}".lower()
            if key in contents:
                try:
                    for name, _type, _nullable in s.table_stats(key, ref)["schema"]:
                        columns.setdefault(name, key)
                except RatError:
                    continue
        close = _closest(wanted, [c for c in columns if c.lower() != wanted.lower()])
        return f"did you mean {close} ({columns[close]})?" if close else None
    return None


def suggest(s: Session, exc: RatError, sql_text: str, ref: str | None = None) -> None:
    """Append "did you mean …?" to the first line of `exc`'s message (kept one RatError line)."""
    message = str(exc.args[0]) if exc.args else ""
    if "did you mean" in message.lower():
        return
    try:
        extra = did_you_mean(s, message, sql_text, ref)
    except RatError:
        return  # suggestions are a courtesy: never replace the real error
    if extra:
        first, sep, rest = message.partition("\n")
        exc.args = (f"{first.rstrip()} — {extra}{sep}{rest}", *exc.args[1:])


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

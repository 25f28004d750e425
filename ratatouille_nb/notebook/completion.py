"""Kernel completion for `%%rat sql` cells and `%rat` lines (registered by `%load_ext ratatouille_nb`).

In a `%%rat sql` cell, Tab offers:
  - `layer.table` names on the session's branch (`gold.da` -> `gold.daily_sales`), and the layers;
  - columns after `table.` / `alias.` (`s.cu` -> `customer_id`), and in a SELECT list (or WHERE,
    GROUP BY, …) the columns of the tables the cell reads (FROM / JOIN, `{{ ref('…') }}` too);
  - model and table names inside `ref('`;
  - on the `%%rat sql` line, branches after `--branch` and tables after `--save`.
Python's completions (IPython's matchers and Jedi) are left out of SQL cells entirely.

In a `%rat` line, Tab offers the verbs, the `branch` sub-verbs and branch names, and model names
for `run|test|build|lineage`.

The completer is an IPython "Matcher API v2" matcher in `IPCompleter.custom_matchers`; SQL cells
are filtered after all matchers ran (`install` wraps the shell completer's `_complete`), which is
what keeps IPython's `%store` out of `stor` even when no SQL name matches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

MATCHER_ID = "ratatouille_nb.notebook.completion.matcher"

_WORD = re.compile(r"[A-Za-z_][\w.]*$|$")
_REF_OPEN = re.compile(r"""ref\(\s*['"]([\w.]*)$""")
_IDENT = r"[A-Za-z_]\w*"
_FROM = re.compile(
    rf"""\b(?:from|join)\s+(?:\{{\{{\s*ref\(\s*['"](?P<ref>[\w.]+)['"]\s*\)\s*\}}\}}|(?P<table>{_IDENT}(?:\.{_IDENT})?))"""
    rf"""(?:\s+(?:as\s+)?(?P<alias>{_IDENT}))?""",
    re.IGNORECASE,
)
_NOT_ALIAS = {
    "where", "join", "left", "right", "inner", "outer", "full", "cross", "on", "using", "group", "order", "limit",
    "having", "union", "except", "intersect", "window", "qualify", "natural", "positional", "asof", "anti", "semi",
    "lateral", "select", "offset", "sample", "pivot", "unpivot", "returning", "set", "values",
}
#: Clauses after which bare names are columns (not tables).
_COLUMN_CLAUSES = re.compile(r"\b(select|where|by|having|on|and|or|qualify|set|when|then|else|distinct)\s*$|,\s*$|\(\s*$", re.IGNORECASE)
_LAST_CLAUSE = re.compile(r"\b(select|from|join|where|group\s+by|order\s+by|having|on|limit|into|update|table)\b", re.IGNORECASE)

BRANCH_VERBS = ("checkout", "switch", "create", "merge", "diff", "log", "delete")
_BRANCH_ARG = {"checkout", "switch", "merge", "diff", "log", "delete"}
_MODEL_VERBS = {"run", "test", "build", "lineage"}


class Names(Protocol):
    """Where completions come from (the session's branch); `SessionNames` is the real one."""

    def tables(self) -> list[str]: ...
    def layers(self) -> list[str]: ...
    def columns(self, table: str) -> list[tuple[str, str]]: ...
    def models(self) -> dict[str, str]: ...
    def branches(self) -> list[str]: ...


class SessionNames:
    """Names from the kernel's current session (verbs/names.py); empty when there is none to open."""

    def _session(self) -> Any:
        from ratatouille_nb.verbs import session as sessions

        return sessions.current()

    def _safe(self, fn: Callable[[Any], Any], default: Any) -> Any:
        try:
            return fn(self._session())
        except Exception:  # noqa: BLE001 - a completer must never break typing; no names is the answer
            return default

    def tables(self) -> list[str]:
        from ratatouille_nb.verbs import names

        return list(self._safe(names.table_names, []))

    def layers(self) -> list[str]:
        from ratatouille_nb.verbs import names

        return list(self._safe(names.layer_names, []))

    def columns(self, table: str) -> list[tuple[str, str]]:
        from ratatouille_nb.verbs import names

        return list(self._safe(lambda s: names.columns(s, table), []))

    def models(self) -> dict[str, str]:
        from ratatouille_nb.verbs import names

        return dict(self._safe(names.model_names, {}))

    def branches(self) -> list[str]:
        from ratatouille_nb.verbs import names

        return list(self._safe(names.branch_names, []))


@dataclass
class Found:
    """Completions for the text before the cursor: each replaces `fragment` (its end)."""

    fragment: str
    items: list[tuple[str, str]] = field(default_factory=list)  # (text, type)

    def add(self, candidates: Iterable[str], kind: str, *, prefix: str | None = None) -> None:
        want = (self.fragment if prefix is None else prefix).lower()
        seen = {t for t, _ in self.items}
        for c in candidates:
            if c.lower().startswith(want) and c not in seen:
                self.items.append((c, kind))
                seen.add(c)


def is_sql_cell(full_text: str) -> bool:
    """A `%%rat sql` cell (its first line is the magic)."""
    first = full_text.lstrip("\n").split("\n", 1)[0].strip()
    return first == "%%rat sql" or first.startswith(("%%rat sql ", "%%rat sql\t"))


def tables_read(body: str, names: Names) -> dict[str, str]:
    """Alias or bare name -> `layer.table` for each FROM / JOIN of the SQL (refs resolved to their tables)."""
    out: dict[str, str] = {}
    models: dict[str, str] | None = None
    for m in _FROM.finditer(body):
        key = m.group("table")
        if m.group("ref"):
            if models is None:
                models = names.models()
            key = models.get(m.group("ref"), m.group("ref"))
        if not key or "." not in key:
            continue
        out.setdefault(key, key)
        out.setdefault(key.split(".", 1)[1], key)
        alias = m.group("alias")
        if alias and alias.lower() not in _NOT_ALIAS:
            out[alias] = key
    return out


def complete_sql(before: str, body: str, names: Names) -> Found:
    """Completions inside the SQL of a cell; `before` is the SQL up to the cursor, `body` all of it."""
    line = before.rsplit("\n", 1)[-1]
    ref = _REF_OPEN.search(line)
    if ref:
        found = Found(ref.group(1))
        found.add(names.models(), "model")
        found.add(names.tables(), "table")
        return found
    token = _WORD.search(line).group(0)  # type: ignore[union-attr]
    if "." in token:
        head, _, tail = token.rpartition(".")
        layers = set(names.layers())
        if head in layers:
            found = Found(token)
            found.add(names.tables(), "table")
            return found
        read = tables_read(body, names)
        table = read.get(head) or (head if head in names.tables() else None)
        found = Found(tail)
        if table is not None:
            found.add((c for c, _ in names.columns(table)), "column")
        return found
    found = Found(token)
    context = before[: len(before) - len(token)]
    clause = [m.group(1).lower() for m in _LAST_CLAUSE.finditer(context)]
    last = clause[-1] if clause else ""
    wants_table = last in ("from", "join", "into", "update", "table") and not _COLUMN_CLAUSES.search(context)
    read = tables_read(body, names)
    column_names = [c for key in dict.fromkeys(read.values()) for c, _ in names.columns(key)]
    if wants_table:
        found.add(names.tables(), "table")
        found.add((f"{layer}." for layer in names.layers()), "schema")
    else:
        if not token and not column_names:
            return found
        found.add(column_names, "column")
        if token:
            found.add(names.tables(), "table")
            found.add(read, "alias")
    return found


def complete_rat_line(line: str, names: Names, *, cell_magic: bool = False, verbs: Iterable[str] = ()) -> Found | None:
    """Completions for a `%rat …` line (or the first line of a `%%rat` cell) up to the cursor; None if it isn't one."""
    stripped = line.lstrip()
    magic = "%%rat" if cell_magic else "%rat"
    if not stripped.startswith(magic + " "):
        return None
    words = stripped.split()
    current = "" if stripped.endswith((" ", "\t")) else words[-1]
    done = words[1:] if current == "" else words[1:-1]
    found = Found(current)
    previous = done[-1] if done else ""
    if previous in ("--branch", "-b", "--from", "--into"):
        found.add(names.branches(), "branch")
    elif previous == "--save":
        found.add(names.tables(), "table")
        found.add((f"{layer}." for layer in names.layers()), "schema")
    elif not done:
        found.add(verbs, "magic")
    elif done[0] == "branch":
        args = [w for w in done[1:] if not w.startswith("-")]
        if not args:
            found.add(BRANCH_VERBS, "keyword")
            found.add(names.branches(), "branch")
        elif args[0] in _BRANCH_ARG and (len(args) == 1 or (args[0] == "diff" and len(args) == 2)):
            found.add(names.branches(), "branch")
    elif done[0] in _MODEL_VERBS:
        found.add(names.models(), "model")
        found.add(names.tables(), "table")
    elif done[0] == "sql" and current.startswith("-"):
        found.add(("--branch", "--save", "--output", "--limit", "--polars", "--pandas", "--arrow"), "keyword")
    return found


def complete(full_text: str, cursor_line: int, cursor_position: int, names: Names, verbs: Iterable[str] = ()) -> Found | None:
    """All of it: what to offer at (line, column) of a cell; None when the position is plain Python."""
    lines = full_text.split("\n")
    line = lines[cursor_line][:cursor_position] if cursor_line < len(lines) else ""
    if is_sql_cell(full_text):
        first = len(full_text) - len(full_text.lstrip("\n"))  # blank lines before the magic line
        if cursor_line <= first:
            return complete_rat_line(line, names, cell_magic=True, verbs=verbs) or Found("")
        body = "\n".join(lines[first + 1:])
        before = "\n".join([*lines[first + 1: cursor_line], line])
        return complete_sql(before, body, names)
    return complete_rat_line(line, names, verbs=verbs)


def _result(found: Found | None, *, suppress: bool) -> dict[str, Any]:
    from IPython.core.completer import SimpleCompletion

    if found is None:
        return {"completions": [], "suppress": False}
    return {
        "completions": [SimpleCompletion(text, type=kind) for text, kind in found.items],
        "matched_fragment": found.fragment,
        "suppress": suppress,
        "ordered": True,
    }


class RatCompleter:
    """The matcher and the SQL-cell filter for one IPython completer."""

    def __init__(self, names: Names | None = None, verbs: Callable[[], Iterable[str]] = tuple) -> None:
        self.names: Names = names or SessionNames()
        self.verbs = verbs  # the `%rat` verbs (magics.py's parser knows them)

    def matcher(self, context: Any) -> dict[str, Any]:
        found = complete(context.full_text, context.cursor_line, context.cursor_position, self.names, verbs=self.verbs())
        return _result(found, suppress=found is not None and bool(found.items))

    def install(self, completer: Any) -> None:
        """Add the matcher to `completer` and keep Python's completions out of `%%rat sql` cells."""
        from IPython.core.completer import context_matcher

        def rat_matcher(context: Any) -> dict[str, Any]:
            return self.matcher(context)

        matcher = context_matcher(identifier=MATCHER_ID, priority=100)(rat_matcher)
        completer.custom_matchers[:] = [m for m in completer.custom_matchers if getattr(m, "matcher_identifier", None) != MATCHER_ID]
        completer.custom_matchers.append(matcher)
        original = getattr(completer, "_rat_original_complete", None) or completer._complete
        completer._rat_original_complete = original

        def _complete(*args: Any, **kwargs: Any) -> Any:
            results = original(*args, **kwargs)
            full_text = kwargs.get("full_text") or kwargs.get("line_buffer") or ""
            if not is_sql_cell(full_text):
                return results
            mine = results.get(MATCHER_ID) or _result(Found(""), suppress=True)
            completer.matches = [c.text for c in mine["completions"]]
            return {MATCHER_ID: mine}

        completer._complete = _complete


def install(shell: Any, verbs: Callable[[], Iterable[str]] = tuple) -> RatCompleter | None:
    """Register the completer with `shell` (an InteractiveShell); None when it has no completer.
    `verbs` lists the `%rat` verbs."""
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return None
    rat = RatCompleter(verbs=verbs)
    rat.install(completer)
    return rat

"""Reading notebook cells: which ones define tables (`%%rat sql` that create or save) or ingest (Python).

Cells are named by their number: the 1-based position among all the notebook's cells (markdown
included), as the Promote dialog, the generated files' header comments and every error show it.
A cell that cannot be read (SQL that does not parse, a bad target) is skipped with `failed` set
and DuckDB's reason, so one bad cell names itself instead of stopping the promotion.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from ratatouille_nb.engine.statements import classify, split_statements
from ratatouille_nb.errors import RatError

TAG_SKIP = {"rat-skip", "rat-exclude"}
TAG_INCLUDE = {"rat-export", "rat-include"}
TAG_INGEST = "rat-ingest"
HEADER_LINE_RE = re.compile(r"^\s*--\s*@([A-Za-z_]+)\s*:\s*(.*?)\s*$")
PY_HEADER_RE = re.compile(r"^\s*#\s*@([A-Za-z_]+)\s*:\s*(.*?)\s*$")
INGEST_MARK_RE = re.compile(r"^\s*#\s*rat:\s*ingest\b", re.IGNORECASE)
# Jinja in `%%rat sql` cells ({{ ref('…') }}, {{ variable }}) is masked before DuckDB splits the SQL.
JINJA_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


@dataclass
class CellModel:
    """A table a notebook cell defines (`index`: the cell's 1-based number in the notebook)."""

    index: int
    target: str
    select_sql: str
    header: dict[str, str] = field(default_factory=dict)


@dataclass
class CellIngest:
    """A Python cell marked as ingestion."""

    index: int
    name: str
    layer: str
    code: str
    header: dict[str, str] = field(default_factory=dict)


@dataclass
class CellSkip:
    """A cell left out of the pipeline, and why; `failed` when it is left out because it is broken."""

    index: int
    reason: str
    failed: bool = False


def cell_number(position: int) -> int:
    """The number a person sees for the cell at 0-based `position`: its 1-based position."""
    return position + 1


def _parse_error(sql: str) -> str | None:
    """DuckDB's one-line complaint about `sql` (Jinja expressions masked), or None when it parses.

    SQL with Jinja blocks (`{% if %}`) is not checked: masking a block cannot keep it valid SQL.
    """
    import duckdb

    if "{%" in sql or not sql.strip():
        return None
    try:
        duckdb.extract_statements(JINJA_RE.sub("__rat_template__", sql))
    except duckdb.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _magic_args(first_line: str) -> dict[str, str | bool]:
    words = shlex.split(first_line)[2:]
    out: dict[str, str | bool] = {}
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("--save", "-o", "--output", "--branch", "-b", "--limit") and i + 1 < len(words):
            out[w.lstrip("-")] = words[i + 1]
            i += 2
            continue
        out[w.lstrip("-")] = True
        i += 1
    return out


def _split_header(body: str, pattern: re.Pattern[str]) -> tuple[dict[str, str], str]:
    header: dict[str, str] = {}
    lines = body.splitlines()
    rest = []
    in_header = True
    for line in lines:
        m = pattern.match(line) if in_header else None
        if m:
            header[m.group(1).lower()] = m.group(2)
            continue
        if in_header and not line.strip():
            continue
        in_header = False
        rest.append(line)
    return header, "\n".join(rest).strip()


def read_cell(index: int, source: str, tags: set[str]) -> CellModel | CellIngest | CellSkip:
    """Classify one code cell."""
    if tags & TAG_SKIP:
        return CellSkip(index, "tagged rat-skip")
    text = source.strip()
    first, _, body = text.partition("\n")
    if first.startswith("%%rat") and first.split()[1:2] == ["sql"]:
        options = _magic_args(first)
        header, sql = _split_header(body, HEADER_LINE_RE)
        if options.get("branch"):
            return CellSkip(index, "reads another branch (--branch)")
        save = options.get("save")
        if isinstance(save, str):
            problem = _parse_error(sql)
            if problem:
                return CellSkip(index, problem, failed=True)
            return CellModel(index, save.lower(), sql.rstrip().rstrip(";"), header)
        templated = bool(JINJA_RE.search(sql))
        try:
            statements = split_statements(JINJA_RE.sub("__rat_template__", sql)) if sql else []
        except RatError as exc:
            return CellSkip(index, str(exc.args[0] if exc.args else exc), failed=True)
        if len(statements) == 1:
            try:
                stmt = classify(statements[0])
            except RatError as exc:
                return CellSkip(index, str(exc.args[0] if exc.args else exc), failed=True)
            problem = _parse_error(sql) if stmt.kind == "create" else None
            if problem:
                return CellSkip(index, problem, failed=True)
            if stmt.kind == "create" and stmt.select_sql and stmt.target:
                return CellModel(index, stmt.target, _select_text(sql.strip() if templated else statements[0]), header)
            if stmt.kind in ("insert", "delete", "update", "drop"):
                return CellSkip(index, f"{stmt.kind.upper()} on {stmt.target}: only cells that create or save a table become models")
        if tags & TAG_INCLUDE and "name" in header and "." in header["name"]:
            return CellModel(index, header["name"].lower(), sql.rstrip().rstrip(";"), header)
        return CellSkip(index, "exploratory query (no --save or CREATE TABLE … AS)")
    marked = bool(INGEST_MARK_RE.match(text))
    header, code = _split_header("\n".join(line for line in text.splitlines() if not INGEST_MARK_RE.match(line)), PY_HEADER_RE)
    if TAG_INGEST in tags or marked:
        name = header.get("name") or f"bronze_ingest_cell_{index}"
        layer = header.get("layer") or (name.split("_", 1)[0] if "_" in name else "bronze")
        return CellIngest(index, name, layer, code, header)
    if text.startswith("%"):
        return CellSkip(index, "magic")
    return CellSkip(index, "exploratory Python")


def _select_text(statement: str) -> str:
    """The `AS SELECT …` part of a CREATE TABLE statement, as the user wrote it."""
    m = re.search(r"\bAS\s*(\(?\s*(?:SELECT|WITH|FROM|VALUES)\b.*)$", statement, re.IGNORECASE | re.DOTALL)
    if m:
        return m.group(1).strip().rstrip(";")
    stmt = classify(statement)
    return stmt.select_sql or ""

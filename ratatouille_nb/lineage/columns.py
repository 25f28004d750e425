"""Column-level lineage of one compiled SQL model, with sqlglot.

The query is qualified against the known schemas (`layer.table` -> {column: type}) so that
`SELECT *` expands and unqualified columns resolve to their table; then sqlglot's lineage walks
each output column down through CTEs, subqueries, joins, aggregates and set operations to the
physical columns it is computed from. `source('landing/…')` calls are compiled to a placeholder
table (`SOURCE_SCHEMA."landing/…"`) whose columns come out as `("landing/…", column)`.

DuckDB compares identifiers case-insensitively and sqlglot lowercases them while resolving; the
names handed back use the spelling of the schemas (sources) and of the SQL (outputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ratatouille_nb.lineage.errors import ColumnLineageError

DIALECT = "duckdb"
#: the schema name `source('path')` compiles to for lineage (never executed)
SOURCE_SCHEMA = "__rat_source__"

Schemas = dict[str, dict[str, str]]


@dataclass
class ColumnAnalysis:
    """What one query outputs and where each output column comes from."""

    outputs: dict[str, str] = field(default_factory=dict)  # output column -> type ("" if unknown), select order
    sources: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # output column -> {(table, column)}
    tables: set[str] = field(default_factory=set)  # tables the query reads (CTE names excluded)
    errors: dict[str, str] = field(default_factory=dict)  # output column -> why its lineage is unknown


def column_lineage(sql: str, schemas: Schemas | None = None) -> dict[str, set[tuple[str, str]]]:
    """Output column -> the (table, column) pairs feeding it. Raises ColumnLineageError if unresolvable."""
    result = analyze(sql, schemas or {})
    if result.errors:
        col, why = sorted(result.errors.items())[0]
        raise ColumnLineageError(f"cannot trace column '{col}': {why}")
    return result.sources


def output_columns(sql: str, schemas: Schemas | None = None) -> dict[str, str]:
    """The columns a query returns, with the types sqlglot infers ("" when it cannot)."""
    return analyze(sql, schemas or {}).outputs


def tables_read(sql: str) -> set[str]:
    """`layer.table` names a query reads (CTE names and table functions excluded)."""
    tree = _parse(sql)
    return _tables(tree, _case_map(tree, {}, sql_first=False))


def analyze(sql: str, schemas: Schemas) -> ColumnAnalysis:
    """Outputs, per-output sources and tables read; per-column failures land in `errors`."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope
    from sqlglot.schema import MappingSchema

    tree = _parse(sql)
    out_case = _case_map(tree, schemas, sql_first=True)
    src_case = _case_map(tree, schemas, sql_first=False)
    result = ColumnAnalysis(tables=_tables(tree, src_case))
    attempts = [schemas]
    guessed = _guess_unknown(tree, schemas)
    if guessed != schemas:
        attempts.append(guessed)
    for i, attempt in enumerate(attempts):
        try:
            schema = MappingSchema(dict(_nest(attempt)), dialect=DIALECT)
            qualified = qualify(tree.copy(), dialect=DIALECT, schema=schema, validate_qualify_columns=False, identify=False)
            scope = build_scope(qualified)
            break
        except (SqlglotError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if i == len(attempts) - 1:
                raise ColumnLineageError(f"cannot resolve the query's columns: {_first_line(exc)}") from None
    if scope is None or not isinstance(qualified, exp.Query):
        raise ColumnLineageError("column lineage needs a SELECT query")
    types = _types(qualified, schema)
    for i, select in enumerate(qualified.selects):
        name = select.alias_or_name
        shown = out_case.get(name.lower(), name)
        if shown in result.outputs:  # DuckDB names a duplicate `x_1`, `x_2`, … in the table it creates
            k = 1
            while f"{shown}_{k}" in result.outputs:
                k += 1
            shown = f"{shown}_{k}"
        result.outputs[shown] = types[i] if i < len(types) else ""
        if isinstance(select, exp.Star) or name == "*":
            # an unexpandable star: the unknown columns of every table in scope
            result.sources[shown] = {(t, "*") for t in _tables(qualified, src_case)} or set()
            continue
        try:
            result.sources[shown] = _trace(i, scope, schema, src_case)
        except Exception as exc:  # noqa: BLE001 - sqlglot raises assorted errors on odd SQL
            result.sources[shown] = set()
            result.errors[shown] = _first_line(exc)
    return result


# -- helpers ----------------------------------------------------------------------------------


def _parse(sql: str) -> Any:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
    except SqlglotError as exc:
        raise ColumnLineageError(f"cannot parse the compiled SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise ColumnLineageError(f"expected one SELECT statement, found {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise ColumnLineageError(f"column lineage needs a SELECT query, not {tree.key.upper()}")
    return tree


def _trace(index: int, scope: Any, schema: Any, case: dict[str, str]) -> set[tuple[str, str]]:
    """Walk sqlglot's lineage nodes for the index-th output column down to physical table columns.

    By position, not name: an output name can repeat (and sqlglot names unaliased expressions).
    """
    from sqlglot import exp
    from sqlglot.lineage import to_node

    try:
        root = to_node(index, scope=scope, dialect=DIALECT, schema=schema, trim_selects=False)
    except TypeError:  # sqlglot releases before `schema` was a parameter
        root = to_node(index, scope=scope, dialect=DIALECT, trim_selects=False)  # type: ignore[call-arg]
    found: set[tuple[str, str]] = set()
    for node in root.walk():
        if node.downstream or not isinstance(node.expression, exp.Table):
            continue
        table = _table_id(node.expression, case)
        if table is None:
            continue
        column = _leaf_column(node.name)
        found.add((table, case.get(column.lower(), column) if column != "*" else "*"))
    return found


def _leaf_column(name: str) -> str:
    """`alias.col` / `"odd alias".col` / `*` -> the column part."""
    import sqlglot
    from sqlglot import exp

    if name.endswith("*"):
        return "*"
    try:
        parsed = sqlglot.parse_one(name, dialect=DIALECT)
    except Exception:  # noqa: BLE001 - fall back to the text after the last dot
        return name.rsplit(".", 1)[-1].strip('"')
    if isinstance(parsed, exp.Column):
        return parsed.name
    return name.rsplit(".", 1)[-1].strip('"')


def _table_id(table: Any, case: dict[str, str]) -> str | None:
    from sqlglot import exp

    if not isinstance(table.this, exp.Identifier):
        return None  # a table function (read_csv(...), range(...)): no named table behind it
    parts = [p.name for p in table.parts if isinstance(p, exp.Identifier)]
    parts = [case.get(p.lower(), p) for p in parts]
    if len(parts) >= 2 and parts[-2].lower() == SOURCE_SCHEMA:
        return parts[-1]
    return ".".join(parts)


def _tables(tree: Any, case: dict[str, str]) -> set[str]:
    from sqlglot import exp

    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = set()
    for table in tree.find_all(exp.Table):
        if not table.db and table.name.lower() in ctes:
            continue
        if not table.db:
            continue  # a bare name that is no CTE is not a layer.table (DuckDB would fail on it too)
        found = _table_id(table, case)
        if found:
            out.add(found)
    return out


def _guess_unknown(tree: Any, schemas: Schemas) -> Schemas:
    """Schemas for tables nobody knows yet (a model not built, a missing source), from the query.

    sqlglot refuses to qualify `SELECT CAST(x AS INT) AS x … WHERE x > 0` without knowing whether
    `x` is a column; here every column the query names on such a table is taken to be one of its
    columns (unqualified ones only when there is a single unknown table).
    """
    from sqlglot import exp

    known = {k.lower() for k in schemas}
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    by_alias: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if not table.db or not isinstance(table.this, exp.Identifier):
            continue
        key = f"{table.db}.{table.name}"
        if key.lower() not in known and table.name.lower() not in ctes:
            by_alias[table.alias_or_name.lower()] = key
    if not by_alias:
        return schemas
    for select in tree.find_all(exp.Select):
        if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)) for e in select.expressions):
            return schemas  # a guessed schema would expand `*` to the few columns named elsewhere
    unknown = sorted(set(by_alias.values()))
    guessed: dict[str, dict[str, str]] = {t: {} for t in unknown}
    for column in tree.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        if column.table:
            target = by_alias.get(column.table.lower())
        else:
            target = unknown[0] if len(unknown) == 1 else None
        if target is not None:
            guessed[target].setdefault(column.name, "")
    return {**schemas, **{t: cols for t, cols in guessed.items() if cols}}


def _nest(schemas: Schemas) -> dict[str, dict[str, dict[str, str]]]:
    """{'layer.table': cols} -> {'layer': {'table': cols}} (what sqlglot's MappingSchema takes)."""
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for key, cols in schemas.items():
        parts = key.split(".")
        if len(parts) != 2 or not cols:
            continue
        nested.setdefault(parts[0], {})[parts[1]] = {c: (t or "UNKNOWN") for c, t in cols.items()}
    return nested


def _case_map(tree: Any, schemas: Schemas, *, sql_first: bool) -> dict[str, str]:
    """lowercase -> the spelling to show, from the SQL's identifiers and the schemas' columns."""
    from sqlglot import exp

    from_sql: dict[str, str] = {}
    for ident in tree.find_all(exp.Identifier):
        from_sql.setdefault(ident.name.lower(), ident.name)
    from_schema: dict[str, str] = {}
    for key, cols in schemas.items():
        for part in key.split("."):
            from_schema.setdefault(part.lower(), part)
        for col in cols:
            from_schema.setdefault(col.lower(), col)
    first, second = (from_sql, from_schema) if sql_first else (from_schema, from_sql)
    return {**second, **first}


def _types(qualified: Any, schema: Any) -> list[str]:
    from sqlglot import exp
    from sqlglot.optimizer.annotate_types import annotate_types

    try:
        annotated = annotate_types(qualified.copy(), schema=schema, dialect=DIALECT)
    except Exception:  # noqa: BLE001 - types are a nicety; lineage does not need them
        return []
    out = []
    for select in annotated.selects:
        dtype = select.type
        if dtype is None or dtype.this in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL):
            out.append("")
        else:
            out.append(dtype.sql(dialect=DIALECT))
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

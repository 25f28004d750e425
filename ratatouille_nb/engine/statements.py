"""What a statement does to Iceberg tables, decided with sqlglot before DuckDB runs anything."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from ratatouille_nb.errors import InvalidNameError, SqlError, UnsupportedStatementError

Kind = Literal["query", "create", "insert", "delete", "update", "drop", "local"]
TABLE_PART_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LEADING_COMMENTS_RE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
RESERVED_SCHEMAS = {"main", "information_schema", "pg_catalog", "temp", "system"}


@dataclass(frozen=True)
class Statement:
    """One parsed statement: its kind, target table key, and the SQL pieces the writer needs."""

    sql: str
    kind: Kind
    target: str | None = None
    select_sql: str | None = None
    columns: list[str] = field(default_factory=list)
    column_defs: list[tuple[str, str]] = field(default_factory=list)
    where_sql: str | None = None
    assignments: list[tuple[str, str]] = field(default_factory=list)
    replace: bool = False
    if_exists: bool = False
    if_not_exists: bool = False


def split_statements(sql: str) -> list[str]:
    """Split a script into statements with DuckDB's own parser (comments and strings handled)."""
    import duckdb

    try:
        return [s.query.strip() for s in duckdb.extract_statements(sql) if s.query.strip()]
    except duckdb.Error as exc:
        raise SqlError(str(exc).split("\n")[0], statement=sql) from None


def validate_table_key(key: str) -> str:
    """`layer.table`, both parts lowercase identifiers."""
    parts = key.split(".")
    if len(parts) != 2 or not all(TABLE_PART_RE.match(p) for p in parts) or parts[0] in RESERVED_SCHEMAS:
        raise InvalidNameError(
            f"invalid table name '{key}': use layer.table with lowercase letters, digits and '_' "
            f"(layer not one of {', '.join(sorted(RESERVED_SCHEMAS))})"
        )
    return key


def _key(table: object) -> str | None:
    from sqlglot import exp

    if not isinstance(table, exp.Table):
        return None
    if table.args.get("catalog") is not None or not table.db:
        return None
    return f"{table.db}.{table.name}".lower()


def classify(sql: str) -> Statement:
    """Decide whether `sql` reads, or writes a `layer.table`, and extract the parts to run."""
    body = _LEADING_COMMENTS_RE.sub("", sql)
    head = body.split(None, 1)[0].upper() if body.strip() else ""
    if head not in {"CREATE", "INSERT", "DELETE", "UPDATE", "DROP", "ALTER", "TRUNCATE", "MERGE", "COPY"}:
        return Statement(sql=sql, kind="query")

    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except ParseError as exc:
        raise SqlError(f"cannot parse statement: {exc.errors[0]['description'] if exc.errors else exc}", statement=sql) from None

    if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "TABLE":
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        key = _key(target)
        if key is None or (tree.args.get("properties") and any(
            isinstance(p, exp.TemporaryProperty) for p in tree.args["properties"].expressions
        )):
            return Statement(sql=sql, kind="local")
        validate_table_key(key)
        defs = []
        if isinstance(tree.this, exp.Schema):
            defs = [
                (c.name, c.args["kind"].sql("duckdb"))
                for c in tree.this.expressions
                if isinstance(c, exp.ColumnDef) and c.args.get("kind") is not None
            ]
        select = tree.expression
        return Statement(
            sql=sql,
            kind="create",
            target=key,
            select_sql=select.sql("duckdb") if select is not None else None,
            column_defs=defs,
            replace=bool(tree.args.get("replace")),
            if_not_exists=bool(tree.args.get("exists")),
        )
    if isinstance(tree, exp.Insert):
        target = tree.this
        columns: list[str] = []
        if isinstance(target, exp.Schema):
            columns = [c.name for c in target.expressions]
            target = target.this
        key = _key(target)
        if key is None:
            return Statement(sql=sql, kind="local")
        if tree.args.get("alternative") or tree.args.get("conflict") or tree.args.get("returning"):
            raise UnsupportedStatementError(
                "INSERT OR REPLACE / ON CONFLICT / RETURNING are not supported on Iceberg tables",
                statement=sql,
                hint="use a pipeline with materialized: incremental and unique_key for upserts",
            )
        validate_table_key(key)
        return Statement(sql=sql, kind="insert", target=key, select_sql=tree.expression.sql("duckdb"), columns=columns)
    if isinstance(tree, exp.Delete):
        key = _key(tree.this)
        if key is None:
            return Statement(sql=sql, kind="local")
        where = tree.args.get("where")
        return Statement(
            sql=sql, kind="delete", target=validate_table_key(key), where_sql=where.this.sql("duckdb") if where else None
        )
    if isinstance(tree, exp.Update):
        key = _key(tree.this)
        if key is None:
            return Statement(sql=sql, kind="local")
        if tree.args.get("from"):
            raise UnsupportedStatementError("UPDATE … FROM is not supported on Iceberg tables", statement=sql)
        where = tree.args.get("where")
        assignments = [(eq.this.name, eq.expression.sql("duckdb")) for eq in tree.expressions]
        return Statement(
            sql=sql,
            kind="update",
            target=validate_table_key(key),
            where_sql=where.this.sql("duckdb") if where else None,
            assignments=assignments,
        )
    if isinstance(tree, exp.Drop) and (tree.args.get("kind") or "").upper() == "TABLE":
        tables = tree.args.get("tables") or ([tree.this] if tree.this is not None else [])
        found = [_key(t) for t in tables]
        keys = [k for k in found if k is not None]
        if not keys or len(keys) != len(found):
            return Statement(sql=sql, kind="local")
        if len(keys) > 1:
            raise UnsupportedStatementError("drop one table per statement", statement=sql)
        return Statement(sql=sql, kind="drop", target=validate_table_key(keys[0]), if_exists=bool(tree.args.get("exists")))
    targets = [k for t in tree.find_all(exp.Table) if (k := _key(t))]
    if head in {"ALTER", "TRUNCATE", "MERGE"} and targets:
        raise UnsupportedStatementError(
            f"{head} is not supported on Iceberg tables ({', '.join(targets)})",
            statement=sql,
            hint="supported writes: CREATE [OR REPLACE] TABLE … AS, INSERT INTO, DELETE FROM, UPDATE, DROP TABLE",
        )
    return Statement(sql=sql, kind="local" if head != "COPY" else "query")

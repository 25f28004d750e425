"""Which statements user SQL may run, and what each does to Iceberg tables — decided before DuckDB runs anything.

The allow-list (`check_statement`) works on DuckDB's own tokenizer and parser, so a statement is
judged exactly as DuckDB would run it: reads (SELECT, WITH, VALUES, FROM-first, DESCRIBE, SHOW,
SUMMARIZE, EXPLAIN of a read, PIVOT/UNPIVOT), the documented writes of `layer.table` (CREATE
[OR REPLACE] TABLE, INSERT, DELETE, UPDATE, DROP TABLE), session-local scratch objects (tables,
TEMP views and macros), and `COPY … TO` a file (the session checks the folder). Everything else —
ATTACH, DETACH, INSTALL, LOAD, SET, RESET, PRAGMA, USE, EXPORT/IMPORT DATABASE, CREATE SECRET,
CALL, transactions… — is refused naming the statement. `classify` (sqlglot) then extracts the
pieces the writer needs.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ratatouille_nb.engine.errors import ForbiddenStatementError
from ratatouille_nb.errors import InvalidNameError, SqlError, UnsupportedStatementError

if TYPE_CHECKING:
    import duckdb

Kind = Literal["query", "create", "insert", "delete", "update", "drop", "local", "copy"]
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
    copy_target: str | None = None


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


# -- the allow-list ---------------------------------------------------------------------------

READ_HEADS = {"SELECT", "WITH", "VALUES", "FROM", "DESCRIBE", "DESC", "SHOW", "SUMMARIZE", "PIVOT", "PIVOT_WIDER", "UNPIVOT", "PIVOT_LONGER"}
# What a view or a model body may be: it is embedded in `CREATE VIEW … AS`, `COPY (…) TO`, `DESCRIBE …`.
BODY_HEADS = {"SELECT", "WITH", "VALUES", "FROM", "PIVOT", "PIVOT_WIDER", "UNPIVOT", "PIVOT_LONGER"}
_PIVOTS = {"PIVOT", "PIVOT_WIDER", "UNPIVOT", "PIVOT_LONGER"}
_CREATE_MODIFIERS = {"OR", "REPLACE", "TEMP", "TEMPORARY", "PERSISTENT", "UNIQUE", "IF", "NOT", "EXISTS"}
_SCRATCH_OBJECTS = {"VIEW", "MACRO", "FUNCTION"}
_DOT_SEGMENT_RE = re.compile(r"(^|[/\\])\.\.([/\\]|$)")
SUPPORTED = (
    "reads (SELECT, WITH, VALUES, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, PIVOT/UNPIVOT); "
    "CREATE [OR REPLACE] TABLE layer.t AS …, INSERT INTO, DELETE FROM, UPDATE, DROP TABLE; "
    "COPY (…) TO 'exports/…'"
)
_HINTS = {
    "SET": "the session's settings come from the workspace's resource profile (workspace.yaml `resources:`) and are locked",
    "RESET": "the session's settings come from the workspace's resource profile (workspace.yaml `resources:`) and are locked",
    "PRAGMA": "the session's settings come from the workspace's resource profile (workspace.yaml `resources:`) and are locked",
    "ATTACH": "tables are read as layer.table on a branch; files with read_parquet/read_csv inside the workspace",
    "DETACH": "tables are read as layer.table on a branch; files with read_parquet/read_csv inside the workspace",
    "USE": "tables are read as layer.table on a branch (`--branch REF` picks the ref)",
    "INSTALL": "Ratatouille loads the extensions it needs (avro, iceberg, httpfs) itself",
    "LOAD": "Ratatouille loads the extensions it needs (avro, iceberg, httpfs) itself",
    "EXPORT DATABASE": "export a query result with COPY (SELECT …) TO 'exports/<file>'",
    "IMPORT DATABASE": "load files with CREATE TABLE layer.t AS SELECT * FROM read_csv('…')",
    "CREATE SECRET": "S3 credentials come from the S3_* settings of the warehouse",
    "CREATE VIEW": "use CREATE TEMP VIEW for a view of this session, or a pipeline model with materialized: view",
    "CREATE MACRO": "use CREATE TEMP MACRO for a macro of this session",
    "CREATE FUNCTION": "use CREATE TEMP MACRO for a macro of this session",
    "BEGIN": "each write statement is its own atomic commit; a pipeline run is one commit",
    "COMMIT": "each write statement is its own atomic commit; a pipeline run is one commit",
    "ROLLBACK": "each write statement is its own atomic commit; a pipeline run is one commit",
    "CALL": "call table functions with SELECT * FROM fn(…)",
}


def _token_words(sql: str) -> list[tuple[str, str, int]]:
    """(type, text, offset) of every token DuckDB's tokenizer sees (comments are skipped)."""
    import duckdb

    tokens = duckdb.tokenize(sql)
    out = []
    for i, (offset, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        text = sql[offset:end].rstrip()
        if kind == duckdb.token_type.operator:
            text = sql[offset]
        out.append((kind.name, text, offset))
    return out


def split_statements(sql: str) -> list[str]:
    """Split a script into statements at DuckDB's own `;` tokens (strings, comments, $$ quotes handled).

    Each piece is the user's text as written (DuckDB's parser rewrites some, e.g. PRAGMA and PIVOT).
    """
    import duckdb

    try:
        words = _token_words(sql)
    except duckdb.Error as exc:
        raise SqlError(str(exc).split("\n")[0], statement=sql) from None
    pieces, start, has_token = [], 0, False
    for kind, text, offset in words:
        if kind == "operator" and text == ";":
            if has_token:
                pieces.append(sql[start:offset].strip())
            start, has_token = offset + 1, False
        else:
            has_token = True
    if has_token:
        pieces.append(sql[start:].strip())
    return pieces


_PARSER_LOCK = threading.Lock()
_PARSER: list[duckdb.DuckDBPyConnection] = []


def _statement_types(sql: str) -> list[str]:
    """DuckDB's statement types for `sql`, parsed on a connection that can open no file.

    (Parsing `IMPORT DATABASE 'dir'` reads files: on this connection that is refused.)
    """
    import duckdb

    with _PARSER_LOCK:
        if not _PARSER:
            con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            _PARSER.append(con)
        try:
            return [getattr(s.type, "name", "UNKNOWN") for s in _PARSER[0].extract_statements(sql)]
        except duckdb.PermissionException:
            raise ForbiddenStatementError("IMPORT DATABASE is not allowed", statement=sql, hint=_HINTS["IMPORT DATABASE"]) from None
        except duckdb.Error as exc:
            raise SqlError(str(exc).split("\n")[0], statement=sql) from None


def _refuse(name: str, sql: str, hint: str | None = None) -> ForbiddenStatementError:
    return ForbiddenStatementError(
        f"{name} is not allowed in Ratatouille SQL", statement=sql, hint=hint or _HINTS.get(name) or f"supported: {SUPPORTED}"
    )


def _object_kind(keywords: list[str]) -> tuple[str, bool]:
    """For CREATE/DROP: the kind of object (TABLE, VIEW, SECRET…) and whether it is TEMP."""
    temp = False
    for word in keywords[1:]:
        if word in ("TEMP", "TEMPORARY"):
            temp = True
        elif word not in _CREATE_MODIFIERS:
            return word, temp
    return "", temp


def _is_qualified(words: list[tuple[str, str, int]], kind: str) -> bool:
    """Whether the object name after `DROP VIEW [IF EXISTS]` has a schema (`x.v`)."""
    texts = [t for _k, t, _o in words]
    upper = [t.upper() for t in texts]
    i = upper.index(kind) + 1
    while i < len(upper) and upper[i] in ("IF", "EXISTS"):
        i += 1
    return i + 1 < len(texts) and texts[i + 1] == "."


def check_statement(sql: str) -> Statement:
    """Refuse anything outside the allow-list (ForbiddenStatementError naming it); classify the rest."""
    words = _token_words(sql)
    for kind, text, _offset in words:
        if kind == "string_const" and _DOT_SEGMENT_RE.search(text.strip("'\"$")):
            raise ForbiddenStatementError(
                f"the path {text} has a '..' segment: paths in Ratatouille SQL may not climb out of a folder",
                statement=sql,
                hint="write the path without '..'",
            )
    keywords = [t.upper() for k, t, _o in words if k == "keyword"]
    head_words = [t.upper() for k, t, _o in words if not (k == "operator" and t == "(")]
    if not head_words:
        raise SqlError("no SQL statement given", statement=sql)
    head = head_words[0]
    if head in ("IMPORT", "EXPORT"):
        raise _refuse(f"{head} DATABASE", sql)
    types = _statement_types(sql)
    if "COPY_DATABASE" in types:
        raise _refuse("COPY FROM DATABASE", sql, hint=_HINTS["EXPORT DATABASE"])
    if len(types) != 1 and not (head in _PIVOTS and types == ["CREATE", "SELECT"]):
        raise SqlError("one statement at a time here (split the script at ';')", statement=sql)
    kind = types[-1]
    if kind == "SELECT" and head in READ_HEADS:
        return Statement(sql=sql, kind="query")
    if kind == "EXPLAIN" and head == "EXPLAIN":
        inner = [o for k, t, o in words if k == "keyword" and t.upper() not in ("EXPLAIN", "ANALYZE")]
        if inner:
            check_body(sql[inner[0] :], what="EXPLAIN", heads=READ_HEADS)
        return Statement(sql=sql, kind="query")
    if kind == "COPY" and head == "COPY":
        return _check_copy(sql)
    if kind in ("CREATE", "DROP") and head in ("CREATE", "DROP"):
        obj, temp = _object_kind(keywords)
        if obj == "TABLE":
            return _writable(classify(sql))
        if obj in _SCRATCH_OBJECTS and (temp if head == "CREATE" else not _is_qualified(words, obj)):
            return Statement(sql=sql, kind="local")
        raise _refuse(f"{head} {obj}".strip(), sql)
    if kind in ("INSERT", "UPDATE", "DELETE") and head == "WITH":
        raise ForbiddenStatementError(
            f"WITH … {kind} is not supported: put the WITH inside the statement's SELECT",
            statement=sql,
            hint="INSERT INTO layer.t WITH x AS (…) SELECT * FROM x",
        )
    if kind in ("INSERT", "UPDATE", "DELETE") and head == kind:
        return _writable(classify(sql))
    if head in ("ALTER", "TRUNCATE", "MERGE"):
        classify(sql)  # an Iceberg table gets the "not supported on Iceberg tables" message
    name = " ".join(head_words[:2]) if head in ("FORCE", "UPDATE", "START") else head
    raise _refuse(name, sql, hint=_HINTS["BEGIN"] if kind == "TRANSACTION" else None)


def _writable(stmt: Statement) -> Statement:
    if stmt.target is not None and stmt.target.startswith("products."):
        raise ForbiddenStatementError(
            f"{stmt.target} is a data product: products are read-only",
            statement=stmt.sql,
            hint="write a table in one of your layers (CREATE TABLE silver.t AS SELECT * FROM products.…)",
        )
    return stmt


def _check_copy(sql: str) -> Statement:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except ParseError:
        tree = None
    files = tree.args.get("files") or [] if isinstance(tree, exp.Copy) else []
    if not isinstance(tree, exp.Copy) or len(files) != 1 or not isinstance(files[0], exp.Literal) or not files[0].is_string:
        raise ForbiddenStatementError(
            "COPY must be `COPY (SELECT …) TO '<file>'` with the file as a string literal",
            statement=sql,
            hint="export into the workspace's exports/ folder: COPY (SELECT …) TO 'exports/result.csv'",
        )
    if tree.args.get("kind"):
        raise _refuse("COPY … FROM", sql, hint="read files with CREATE TABLE layer.t AS SELECT * FROM read_csv('…')")
    return Statement(sql=sql, kind="copy", copy_target=files[0].this)


def check_body(sql: str, *, what: str, heads: set[str] = BODY_HEADS) -> str:
    """A view or model body: exactly one SELECT (checked when written and again when bound)."""
    pieces = split_statements(sql)
    if len(pieces) != 1:
        raise ForbiddenStatementError(
            f"{what} must be exactly one SELECT statement; it holds {len(pieces)}",
            statement=sql,
            hint="remove the extra statements (';') from it",
        )
    stmt = check_statement(pieces[0])
    head = next((t.upper() for k, t, _o in _token_words(pieces[0]) if not (k == "operator" and t == "(")), "")
    if stmt.kind != "query" or head not in heads:
        raise ForbiddenStatementError(f"{what} must be a SELECT, not {head or 'empty'}", statement=sql)
    return pieces[0]

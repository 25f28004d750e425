"""Data tests (dbt's `dbt test`): column tests, custom SQL tests, declared column types and freshness.

Every test is a query over the model's table as of one ref (a branch head, tag, hash or
`name@time`, or the staged contents of a transaction): it counts the offending rows and fetches a
sample of them. A failing test of severity 'warn' has status 'warn', of severity 'error' status
'fail'; a test whose SQL cannot run has status 'error' and DuckDB's message.

    not_null, unique, positive, accepted_values, relationships, expression   (column tests)
    sql          a Jinja template ({{ this }}, {{ ref() }}, macros) returning one count, compared to `expect`
    type(<col>)  the column exists with the declared type (from `columns[].type`)
    freshness    now - max(column) (or the current snapshot's time) against warn/error hours
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ratatouille_nb.engine.rows import one_row, scalar
from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.model import Model, TestSpec
from ratatouille_nb.pipeline.templating import RenderContext

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.loader import Project

Status = Literal["pass", "fail", "warn", "error"]
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class TestResult:
    """The outcome of one data test on one model.

    `failing` counts offending rows (for `unique`: values that occur more than once; for a custom
    count test: the count it returned); `expected` is what passing means (0, or a custom test's
    `expect`); `sample` holds up to 5 offending rows; `sql` is the query whose rows are the
    offenders (for custom tests, the rendered SQL).
    """

    __test__ = False  # not a pytest class

    model: str
    test: str
    kind: str
    column: str | None
    severity: Literal["warn", "error"]
    status: Status
    failing: int = 0
    expected: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    sql: str = ""
    message: str = ""
    target: str = ""
    age_hours: float | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def blocking(self) -> bool:
        """Whether this result blocks (see `is_blocking`)."""
        return is_blocking(self.severity, self.status)


def is_blocking(severity: str, status: str) -> bool:
    """THE rule, shared by `rat test`, `rat build`, the magics, widgets and Dagster checks:
    an error-severity test that fails or errors blocks; a warn-severity one never does (it is reported)."""
    return severity == "error" and status in ("fail", "error")


def blocking(results: list[TestResult]) -> list[TestResult]:
    """The results that block: `rat test` exits non-zero, `rat build` does not publish."""
    return [r for r in results if r.blocking]


def run_selected_tests(
    session: Session,
    selectors: list[str] | tuple[str, ...] = (),
    *,
    ref: str | None = None,
    project: Project | None = None,
) -> list[TestResult]:
    """Load the workspace's pipelines, select models like `rat run`, and test them."""
    from ratatouille_nb.pipeline.dag import build_dag
    from ratatouille_nb.pipeline.loader import load_project

    project = project or load_project(session.workspace.root)
    names = build_dag(project).select(list(selectors))
    return run_tests(session, project, names, ref=ref)


def run_tests(
    session: Session,
    project: Project,
    model_names: list[str],
    *,
    ref: str | None = None,
    contents: dict[str, TableEntry] | None = None,
    now: datetime | None = None,
) -> list[TestResult]:
    """Run every test of the named models on `ref` (default: the session's branch).

    `contents` overrides the tables seen (e.g. a transaction's staged state); `now` fixes the clock
    used by freshness checks (default: the current UTC time).
    """
    label = ref or session.branch
    if contents is None:
        contents = session.contents(ref)
    clock = now or datetime.now(UTC)
    if clock.tzinfo is None:
        clock = clock.replace(tzinfo=UTC)
    results: list[TestResult] = []
    for name in model_names:
        model = project.models.get(name) or project.get(name)
        if model is None:
            raise PipelineError(f"no model named '{name}'", hint="use a pipeline name or the table it builds (layer.table)")
        results += _ModelTests(session, project, model, contents, label, clock).run()
    return results


# -- one model ----------------------------------------------------------------------------------


class _ModelTests:
    def __init__(
        self, session: Session, project: Project, model: Model, contents: dict[str, TableEntry], ref: str, now: datetime
    ) -> None:
        self.session = session
        self.project = project
        self.model = model
        self.contents = contents
        self.ref = ref
        self.now = now
        self.target = model.target

    def _result(self, spec: TestSpec, status: Status, **kw: Any) -> TestResult:
        return TestResult(
            model=self.model.name,
            test=spec.name,
            kind=spec.kind,
            column=spec.column,
            severity=spec.severity,
            status=status,
            target=self.target,
            **kw,
        )

    def _specs(self) -> list[TestSpec]:
        specs = list(self.model.all_tests())
        for col in self.model.columns:
            if col.type:
                specs.append(TestSpec(name=f"type({col.name})", column=col.name, kind="type", args={"type": col.type}))
        fresh = self.model.freshness
        if fresh is not None and (fresh.warn_after_hours is not None or fresh.error_after_hours is not None):
            severity = "error" if fresh.error_after_hours is not None else "warn"
            specs.append(TestSpec(name="freshness", column=fresh.column, kind="freshness", severity=severity))
        return specs

    def run(self) -> list[TestResult]:
        specs = self._specs()
        if self.target not in self.contents:
            message = f"table {self.target} does not exist on '{self.ref}': run the model first (rat run {self.model.name})"
            return [self._result(s, "error", message=message) for s in specs]
        out = []
        for spec in specs:
            try:
                out.append(self._run_one(spec))
            except RatError as exc:
                out.append(self._result(spec, "error", message=str(exc)))
        return out

    def _run_one(self, spec: TestSpec) -> TestResult:
        if spec.kind == "type":
            return self._type_test(spec)
        if spec.kind == "freshness":
            return self._freshness(spec)
        if spec.kind == "sql":
            return self._custom(spec)
        return self._offenders(spec, self._column_sql(spec))

    # -- column tests ---------------------------------------------------------------------------

    def _column_sql(self, spec: TestSpec) -> str:
        t = self.target
        if spec.column is None:
            raise PipelineError(f"test '{spec.kind}' needs a column", path=self.model.yaml_path, line=spec.line)
        col = quote_ident(spec.column)
        if spec.kind == "not_null":
            return f"SELECT * FROM {t} WHERE {col} IS NULL"
        if spec.kind == "unique":
            return (
                f"SELECT {col}, count(*) AS n_records FROM {t} WHERE {col} IS NOT NULL "
                f"GROUP BY {col} HAVING count(*) > 1 ORDER BY n_records DESC, {col}"
            )
        if spec.kind == "positive":
            return f"SELECT * FROM {t} WHERE {col} <= 0"
        if spec.kind == "accepted_values":
            values = [v for v in spec.args.get("values") or [] if v is not None]
            if not values:
                return f"SELECT * FROM {t} WHERE {col} IS NOT NULL"
            allowed = ", ".join(_literal(v) for v in values)
            return f"SELECT * FROM {t} WHERE {col} IS NOT NULL AND {col} NOT IN ({allowed})"
        if spec.kind == "relationships":
            parent = self._table_of(str(spec.args["to"]), spec)
            fld = quote_ident(str(spec.args["field"]))
            return (
                f"SELECT _rat_child.* FROM {t} AS _rat_child WHERE _rat_child.{col} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {parent} AS _rat_parent WHERE _rat_parent.{fld} = _rat_child.{col})"
            )
        if spec.kind == "expression":
            expr = str(spec.args["expression"]).strip()
            if _STARTS_WITH_OPERATOR.match(expr):
                expr = f"{col} {expr}"
            return f"SELECT * FROM {t} WHERE NOT ({expr})"
        raise PipelineError(f"unknown test kind '{spec.kind}'", path=self.model.yaml_path, line=spec.line)

    def _table_of(self, name: str, spec: TestSpec) -> str:
        model = self.project.get(name)
        table = model.target if model is not None else name
        if table not in self.contents:
            raise PipelineError(
                f"'{name}' is no table on '{self.ref}'"
                + (f" (model {model.name} has not been run)" if model is not None else ""),
                path=self.model.yaml_path,
                line=spec.line,
            )
        return table

    def _offenders(self, spec: TestSpec, sql: str, expected: int = 0) -> TestResult:
        import duckdb

        try:
            self.session.bind(sql, self.contents)
            count = int(scalar(self.session.con, f"SELECT count(*) FROM (\n{sql}\n) AS _rat_offenders"))
            sample = self._sample(sql) if count else []
        except duckdb.Error as exc:
            return self._result(spec, "error", sql=sql, expected=expected, message=_duck_message(exc, sql))
        status = self._status(spec, count != expected)
        noun = "value(s) occur more than once" if spec.kind == "unique" else "row(s) fail"
        message = "ok" if count == expected else f"{count} {noun}" + (f" (expected {expected})" if expected else "")
        return self._result(spec, status, failing=count, expected=expected, sample=sample, sql=sql, message=message)

    def _sample(self, sql: str) -> list[dict[str, Any]]:
        rel = self.session.con.execute(f"SELECT * FROM (\n{sql}\n) AS _rat_sample LIMIT {SAMPLE_ROWS}")
        return _rows(rel)

    @staticmethod
    def _status(spec: TestSpec, failed: bool) -> Status:
        if not failed:
            return "pass"
        return "warn" if spec.severity == "warn" else "fail"

    # -- custom SQL -----------------------------------------------------------------------------

    def _render(self, spec: TestSpec) -> str:
        """Render a custom test with the project's macros; errors name the YAML file and the test's line."""
        from ratatouille_nb.pipeline.templating import Templates

        templates = self.project.templates or Templates(self.project.root / "macros")
        source = spec.sql or ""
        where = self.model.yaml_path or self.model.path
        # A distinct template name per test (Jinja caches templates by name).
        digest = hashlib.sha1(source.encode()).hexdigest()[:10]
        pseudo = Path(f"{where}#{spec.name}@{digest}")

        def resolve_ref(key: str) -> str:
            model = self.project.get(key)
            table = model.target if model is not None else key
            if table in self.contents:
                return table
            extra = f" (model {model.name} has not been run)" if model is not None else ""
            raise PipelineError(f"ref('{key}') matches no table on '{self.ref}'{extra}")

        def resolve_source(key: str) -> str:
            raise PipelineError(f"source('{key}') is not available in tests: test the table the model built")

        ctx = RenderContext(
            model_name=self.model.name,
            this=self.target,
            resolve_ref=resolve_ref,
            resolve_source=resolve_source,
        )
        try:
            sql = templates.render(pseudo, source, ctx)
        except PipelineError as exc:
            text = str(exc)
            prefix = f"{pseudo}:{exc.line}: " if exc.line else f"{pseudo}: "
            if text.startswith(prefix):
                text = text[len(prefix):]
            text = text.split("\n  hint: ")[0]
            raise PipelineError(f"test '{spec.name}': {text}", path=where, line=spec.line, hint=exc.hint) from None
        sql = sql.strip().rstrip(";").strip()
        if not sql:
            raise PipelineError(f"test '{spec.name}' renders to an empty statement", path=where, line=spec.line)
        return sql

    def _custom(self, spec: TestSpec) -> TestResult:
        import duckdb

        expected = 0 if spec.expect is None else int(spec.expect)
        sql = self._render(spec)
        try:
            self.session.bind(sql, self.contents)
            first = _rows(self.session.con.execute(f"SELECT * FROM (\n{sql}\n) AS _rat_test LIMIT 2"))
        except duckdb.Error as exc:
            return self._result(spec, "error", sql=sql, expected=expected, message=_duck_message(exc, sql))
        value = next(iter(first[0].values())) if len(first) == 1 and len(first[0]) == 1 else None
        if not isinstance(value, int) or isinstance(value, bool):
            # Not one count: the rows it returns are the offenders (dbt's convention).
            return self._offenders(spec, sql, expected)
        count = value
        status = self._status(spec, count != expected)
        message = "ok" if count == expected else f"returned {count}, expected {expected}"
        return self._result(spec, status, failing=count, expected=expected, sql=sql, message=message)

    # -- declared types -------------------------------------------------------------------------

    def _actual_types(self) -> dict[str, list[str]]:
        """Column name (lowercase) -> the names its type goes by (Iceberg and DuckDB spellings)."""
        entry = self.contents[self.target]
        if entry.view_sql is not None:
            self.session.bind(self.target, self.contents)
            cols = self.session.con.execute(f"DESCRIBE {self.target}").fetchall()
            return {str(c[0]).lower(): [str(c[1])] for c in cols}
        from ratatouille_nb.catalog.tables import read_metadata
        from ratatouille_nb.engine.sqltypes import duck_type_of

        schema = read_metadata(self.session.warehouse.file_io(), entry.metadata_location).schema()
        return {f.name.lower(): [str(f.field_type), duck_type_of(f.field_type)] for f in schema.fields}

    def _type_test(self, spec: TestSpec) -> TestResult:
        declared = str(spec.args["type"])
        assert spec.column is not None
        actual = self._actual_types().get(spec.column.lower())
        if actual is None:
            return self._result(spec, "fail", failing=1, message=f"column {spec.column} is missing (declared {declared})")
        if any(types_compatible(declared, a) for a in actual):
            return self._result(spec, "pass", message=f"{actual[0]}")
        return self._result(spec, "fail", failing=1, message=f"declared {declared}, found {actual[0]}")

    # -- freshness ------------------------------------------------------------------------------

    def _freshness(self, spec: TestSpec) -> TestResult:
        import duckdb

        fresh = self.model.freshness
        assert fresh is not None
        entry = self.contents[self.target]
        sql = ""
        if fresh.column:
            col = quote_ident(fresh.column)
            sql = f"SELECT epoch(max({col})), CAST(max({col}) AS VARCHAR) FROM {self.target}"
            try:
                self.session.bind(sql, self.contents)
                epoch, shown = one_row(self.session.con, sql)
            except duckdb.Error as exc:
                return self._result(spec, "error", sql=sql, message=_duck_message(exc, sql))
            what = f"max({fresh.column}) = {shown}"
        else:
            if entry.view_sql is not None:
                return self._result(
                    spec, "error", message=f"{self.target} is a view (no snapshot time): set freshness.column"
                )
            from ratatouille_nb.catalog.tables import read_metadata

            meta = read_metadata(self.session.warehouse.file_io(), entry.metadata_location)
            snap = meta.current_snapshot()
            millis = snap.timestamp_ms if snap is not None else meta.last_updated_ms
            epoch = millis / 1000
            shown = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            what = f"snapshot at {shown}"
        limits = ", ".join(
            f"{k} after {_hours(v)}"
            for k, v in (("warn", fresh.warn_after_hours), ("error", fresh.error_after_hours))
            if v is not None
        )
        if epoch is None:
            return self._result(spec, self._status(spec, True), failing=1, sql=sql, message=f"no rows: {fresh.column} has no value ({limits})")
        age = (self.now.timestamp() - float(epoch)) / 3600
        if fresh.error_after_hours is not None and age > fresh.error_after_hours:
            status: Status = "fail"
        elif fresh.warn_after_hours is not None and age > fresh.warn_after_hours:
            status = "warn"
        else:
            status = "pass"
        return TestResult(
            model=self.model.name,
            test=spec.name,
            kind=spec.kind,
            column=spec.column,
            severity=spec.severity,
            status=status,
            failing=0 if status == "pass" else 1,
            sql=sql,
            message=f"age {_hours(age)} ({what}; {limits})",
            target=self.target,
            age_hours=age,
        )


# -- helpers ------------------------------------------------------------------------------------

_STARTS_WITH_OPERATOR = re.compile(r"^(<=|>=|<>|!=|=|<|>|is\b|in\b|between\b|like\b|ilike\b|not\s+(in|like|ilike|between)\b)", re.I)


def _hours(value: float) -> str:
    return f"{value:.1f}h" if abs(value) < 48 else f"{value / 24:.1f}d"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _rows(rel: Any) -> list[dict[str, Any]]:
    """Rows as dicts, through Arrow (TIMESTAMPTZ converts without pytz)."""
    to_arrow = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return list(to_arrow().to_pylist())


def _duck_message(exc: Exception, sql: str) -> str:
    from ratatouille_nb.engine.duckerrors import duck_error

    err = duck_error(exc, sql)  # type: ignore[arg-type]
    err.statement = None  # the result carries the SQL
    return str(err)


_SIMPLE_TYPES = {
    "string": "string", "varchar": "string", "text": "string", "str": "string", "char": "string", "bpchar": "string",
    "int": "int", "integer": "int", "int4": "int", "int32": "int",
    "long": "long", "bigint": "long", "int8": "long", "int64": "long",
    "float": "float", "real": "float", "float4": "float", "float32": "float",
    "double": "double", "float8": "double", "float64": "double", "double precision": "double",
    "date": "date",
    "timestamp": "timestamp", "datetime": "timestamp", "timestamp without time zone": "timestamp", "timestamp_ntz": "timestamp",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz", "timestamp_tz": "timestamptz",
    "boolean": "boolean", "bool": "boolean",
    "time": "time", "binary": "binary", "blob": "binary", "bytes": "binary", "bytea": "binary", "varbinary": "binary",
    "uuid": "uuid",
}
_DECIMAL_RE = re.compile(r"^(?:decimal|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_SIZED_STRING_RE = re.compile(r"^(varchar|char|string|text)\s*\(\s*\d+\s*\)$")


def normalize_type(name: str) -> str:
    """A canonical Iceberg-ish spelling: `VARCHAR`→string, `BIGINT`→long, `NUMERIC(12, 2)`→decimal(12,2), …

    A bare `decimal` stays `decimal` (it matches any precision and scale).
    """
    text = " ".join(name.strip().lower().split())
    if _SIZED_STRING_RE.match(text):
        return "string"
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    match = _DECIMAL_RE.match(text)
    if match:
        if match.group(1) is None:
            return "decimal"
        return f"decimal({int(match.group(1))},{int(match.group(2) or 0)})"
    return text.replace(" ", "")


def types_compatible(declared: str, actual: str) -> bool:
    """Whether a column of type `actual` (Iceberg or DuckDB name) satisfies the `declared` type."""
    want, have = normalize_type(declared), normalize_type(actual)
    if want == "decimal":
        return have.startswith("decimal")
    return want == have


__all__ = ["TestResult", "blocking", "normalize_type", "run_selected_tests", "run_tests", "types_compatible"]

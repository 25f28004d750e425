"""What every data-test kind shares: the per-model test context, the verdict, the registry.

A test kind is one class in this folder, registered by its `kind` with `@register`; quality.py
looks each test's kind up here. Row tests (`RowTest`) only say which rows offend; counting them
(dbt's `fail_calc`, `limit`), the verdict (`severity`, `error_if`, `warn_if`), the `where` filter,
a sample of offenders and `store_failures` are done once, here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.registry import Registry

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import TableEntry
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.loader import Project
    from ratatouille_nb.pipeline.model import Model, TestSpec
    from ratatouille_nb.pipeline.testresult import Status, TestResult

SAMPLE_ROWS = 5
AUDIT_LAYER = "dbt_test__audit"
_CONDITION_RE = re.compile(r"^\s*(=|==|!=|<>|>=|<=|>|<)\s*(-?\d+)\s*$")
_REF_TEXT_RE = re.compile(r"""^\s*ref\(\s*['"]([\w.]+)['"]\s*(?:,\s*['"]([\w.]+)['"]\s*)?\)\s*$""")
_SOURCE_TEXT_RE = re.compile(r"""^\s*source\(\s*['"](\w+)['"]\s*,\s*['"](\w+)['"]\s*\)\s*$""")


def condition_holds(condition: str, value: int) -> bool:
    """dbt's `error_if` / `warn_if`: `'>10'`, `'!=0'`, `'>= 1'` … against the failure count."""
    match = _CONDITION_RE.match(condition)
    if match is None:
        raise PipelineError(f"'{condition}' is not a condition like '!=0' or '>10'")
    op, number = match.group(1), int(match.group(2))
    return {
        "=": value == number, "==": value == number, "!=": value != number, "<>": value != number,
        ">=": value >= number, "<=": value <= number, ">": value > number, "<": value < number,
    }[op]


@dataclass
class TestContext:
    """One model's tests on one ref: the tables seen, the clock, how results are made."""

    __test__ = False  # not a pytest class

    session: Session
    project: Project
    model: Model
    contents: dict[str, TableEntry]
    ref: str
    now: datetime

    @property
    def target(self) -> str:
        return self.model.target

    def relation(self, spec: TestSpec) -> str:
        """The rows a test looks at: the model's table, filtered by the test's `where`."""
        if spec.where:
            return f"(SELECT * FROM {self.target} WHERE {spec.where})"
        return self.target

    def where_file(self, spec: TestSpec) -> Any:
        return spec.path or self.model.yaml_path or self.model.path

    def result(self, spec: TestSpec, status: Status, **kw: Any) -> TestResult:
        from ratatouille_nb.pipeline.testresult import TestResult

        return TestResult(
            model=self.model.name, test=spec.name, kind=spec.kind, column=spec.column, severity=spec.severity,
            status=status, target=self.target, **kw,
        )

    def table_of(self, name: str, spec: TestSpec) -> str:
        """A table named in a test argument: `layer.table`, a model name, `ref('x')` or `source('s', 't')`."""
        text = str(name)
        ref_match = _REF_TEXT_RE.match(text)
        source_match = _SOURCE_TEXT_RE.match(text)
        if ref_match:
            text = ref_match.group(2) or ref_match.group(1)
        elif source_match:
            text = self.project.source_table(source_match.group(1), source_match.group(2))
        model = self.project.get(text)
        table = model.target if model is not None else text
        if table not in self.contents:
            raise PipelineError(
                f"'{name}' is no table on '{self.ref}'" + (f" (model {model.name} has not been run)" if model is not None else ""),
                path=self.where_file(spec),
                line=spec.line,
            )
        return table

    def bind(self, sql: str) -> None:
        self.session.bind(sql, self.contents)

    def verdict(self, spec: TestSpec, failures: int) -> Status:
        if spec.severity == "error" and condition_holds(spec.error_if, failures):
            return "fail"
        if condition_holds(spec.warn_if, failures):
            return "warn"
        return "pass"

    def offenders(self, spec: TestSpec, sql: str, expected: int = 0) -> TestResult:
        """Count the rows `sql` returns (the offenders) and judge them."""
        import duckdb

        from ratatouille_nb.pipeline.testresult import duck_message, rows_of

        limited = f"SELECT * FROM (\n{sql}\n) AS _rat_limited LIMIT {int(spec.limit)}" if spec.limit is not None else sql
        try:
            self.bind(limited)
            count = int(scalar(self.session.con, f"SELECT {spec.fail_calc} FROM (\n{limited}\n) AS _rat_offenders") or 0)
            sample = rows_of(self.session.con.execute(f"SELECT * FROM (\n{limited}\n) AS _rat_sample LIMIT {SAMPLE_ROWS}")) if count else []
        except duckdb.Error as exc:
            return self.result(spec, "error", sql=sql, expected=expected, message=duck_message(exc, sql))
        if expected:
            status: Status = "pass" if count == expected else ("warn" if spec.severity == "warn" else "fail")
        else:
            status = self.verdict(spec, count)
        noun = "value(s) occur more than once" if spec.kind == "unique" else "row(s) fail"
        message = "ok" if status == "pass" and count == expected else f"{count} {noun}" + (f" (expected {expected})" if expected else "")
        if spec.store_failures:
            message += self.store_failures(spec, limited)
        return self.result(spec, status, failing=count, expected=expected, sample=sample, sql=sql, message=message)

    def store_failures(self, spec: TestSpec, sql: str) -> str:
        """dbt's `store_failures`: the offending rows as a table on the tested branch."""
        from ratatouille_nb.errors import SqlError

        table = f"{AUDIT_LAYER}.{audit_name(self.model.name, spec)}"
        try:
            self.session.sql(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM (\n{sql}\n) AS _rat_failures", ref=self.ref)
        except SqlError as exc:
            return f"; failures not stored: {str(exc).splitlines()[0]}"
        return f"; failures stored in {table}"


def names_relation(value: object) -> bool:
    """Whether a test argument is dbt's `ref('x')` / `source('s', 't')` text (rendered to its table)."""
    return isinstance(value, str) and bool(_REF_TEXT_RE.match(value) or _SOURCE_TEXT_RE.match(value))


def audit_name(model: str, spec: TestSpec) -> str:
    """dbt's name for a test's failure table: `not_null_<model>_<column>` …"""
    kind = spec.kind if spec.kind not in ("macro", "singular", "sql") else ""
    raw = "_".join(p for p in (kind, model, spec.column or "", "" if kind else spec.name) if p)
    return re.sub(r"[^a-z0-9_]+", "_", raw.lower()).strip("_")[:120]


class DataTest:
    """One kind of data test."""

    kind: ClassVar[str]
    needs_column: ClassVar[bool] = False

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        raise NotImplementedError


class RowTest(DataTest):
    """A test that is a query for the offending rows."""

    def sql(self, ctx: TestContext, spec: TestSpec) -> str:
        raise NotImplementedError

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        if self.needs_column and spec.column is None:
            raise PipelineError(f"test '{spec.kind}' needs a column", path=ctx.where_file(spec), line=spec.line)
        return ctx.offenders(spec, self.sql(ctx, spec))


def _load_builtins() -> None:
    from ratatouille_nb.pipeline import tests  # noqa: F401 - registers the built-in kinds


_REGISTRY: Registry[DataTest] = Registry("test kind", lambda cls: cls.kind, _load_builtins)
REGISTRY = _REGISTRY.items
register = _REGISTRY.register
data_test = _REGISTRY.get

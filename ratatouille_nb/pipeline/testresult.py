"""A data test's result, and the one rule that decides whether results block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "warn", "error"]


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


def rows_of(rel: Any) -> list[dict[str, Any]]:
    """Rows as dicts, through Arrow (TIMESTAMPTZ converts without pytz)."""
    to_arrow = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
    return list(to_arrow().to_pylist())


def duck_message(exc: Exception, sql: str) -> str:
    from ratatouille_nb.engine.duckerrors import duck_error

    err = duck_error(exc, sql)  # type: ignore[arg-type]
    err.statement = None  # the result carries the SQL
    return str(err)

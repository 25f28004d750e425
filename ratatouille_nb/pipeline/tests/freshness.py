"""`freshness`: now - max(column) (or the current snapshot's time) against warn/error hours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ratatouille_nb.engine.rows import one_row
from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.model import TestSpec
from ratatouille_nb.pipeline.tests.base import DataTest, TestContext, register

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.testresult import Status, TestResult


def hours_text(value: float) -> str:
    return f"{value:.1f}h" if abs(value) < 48 else f"{value / 24:.1f}d"


@register
class Freshness(DataTest):
    kind = "freshness"

    def run(self, ctx: TestContext, spec: TestSpec) -> TestResult:
        import duckdb

        from ratatouille_nb.pipeline.testresult import duck_message

        fresh = ctx.model.freshness
        assert fresh is not None
        entry = ctx.contents[ctx.target]
        sql = ""
        if fresh.column:
            col = quote_ident(fresh.column)
            sql = f"SELECT epoch(max({col})), CAST(max({col}) AS VARCHAR) FROM {ctx.target}"
            try:
                ctx.bind(sql)
                epoch, shown = one_row(ctx.session.con, sql)
            except duckdb.Error as exc:
                return ctx.result(spec, "error", sql=sql, message=duck_message(exc, sql))
            what = f"max({fresh.column}) = {shown}"
        else:
            if entry.view_sql is not None:
                return ctx.result(spec, "error", message=f"{ctx.target} is a view (no snapshot time): set freshness.column")
            from ratatouille_nb.catalog.tables import read_metadata

            meta = read_metadata(ctx.session.warehouse.file_io(), entry.metadata_location)
            snap = meta.current_snapshot()
            millis = snap.timestamp_ms if snap is not None else meta.last_updated_ms
            epoch = millis / 1000
            shown = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            what = f"snapshot at {shown}"
        limits = ", ".join(
            f"{k} after {hours_text(v)}" for k, v in (("warn", fresh.warn_after_hours), ("error", fresh.error_after_hours)) if v is not None
        )
        if epoch is None:
            status: Status = "warn" if spec.severity == "warn" else "fail"
            return ctx.result(spec, status, failing=1, sql=sql, message=f"no rows: {fresh.column} has no value ({limits})")
        age = (ctx.now.timestamp() - float(epoch)) / 3600
        if fresh.error_after_hours is not None and age > fresh.error_after_hours:
            status = "fail"
        elif fresh.warn_after_hours is not None and age > fresh.warn_after_hours:
            status = "warn"
        else:
            status = "pass"
        return ctx.result(
            spec, status, failing=0 if status == "pass" else 1, sql=sql, message=f"age {hours_text(age)} ({what}; {limits})", age_hours=age
        )

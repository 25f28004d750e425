"""Python models (`@pipeline` functions): the function writes through `rat`; rows are counted after."""

from __future__ import annotations

from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register


@register
class Python(Materialization):
    name = "python"

    def run(self, ctx: ModelContext) -> Outcome:
        from ratatouille_nb.pipeline.pyerrors import user_code_error
        from ratatouille_nb.pipeline.state import CURRENT_RUN

        model = ctx.model
        assert model.function is not None
        token = CURRENT_RUN.set((ctx.state, model))
        try:
            before = _rows_of(ctx)
            try:
                model.function()
            except Exception as exc:  # noqa: BLE001 - user code: reported at the user's file:line
                raise user_code_error(exc, model.path, ctx.state.project.root)  # noqa: B904 - it chains `exc` itself
            after = _rows_of(ctx)
        finally:
            CURRENT_RUN.reset(token)
        return Outcome("python", max(0, after - before))


def _rows_of(ctx: ModelContext) -> int:
    total = 0
    txn = ctx.state.txn
    for target in ctx.model.produces:
        entry = txn.contents().get(target)
        if entry is not None and entry.view_sql is None:
            snap = txn.load(target).current_snapshot()
            if snap is not None and snap.summary is not None:
                total += int(snap.summary.additional_properties.get("total-records", 0))
    return total

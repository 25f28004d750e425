"""dbt snapshots (`{% snapshot %}` blocks): type-2 history of a query, kept on an Iceberg table.

Each row gets dbt's columns: `dbt_scd_id` (md5 of key and version time), `dbt_updated_at`,
`dbt_valid_from`, `dbt_valid_to` (NULL for the current version). Strategies:

    timestamp   a row changed when its `updated_at` is newer than the current version's
    check       a row changed when any of `check_cols` (a list, or 'all') differs

A run closes the current version of changed keys (an update of just the files holding them),
then appends the new versions; with `hard_deletes: invalidate` (or `invalidate_hard_deletes:
true`) keys gone from the source are closed too. The new rows are computed once, before any
write (batch.py), so the update cannot change what is appended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.materializations.base import Materialization, ModelContext, Outcome, register
from ratatouille_nb.pipeline.materializations.batch import spilled
from ratatouille_nb.pipeline.materializations.table import rebuild

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.model import Model

DBT_COLUMNS = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")


def _key_expr(model: Model, alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    parts = [f"CAST({prefix}{quote_ident(k)} AS VARCHAR)" for k in model.unique_key]
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


def _match_expr(model: Model, alias: str = "") -> str:
    """What rows are matched on: the key column itself (one key: a typed join), else the text key."""
    if len(model.unique_key) == 1:
        return f"{alias + '.' if alias else ''}{quote_ident(model.unique_key[0])}"
    return _key_expr(model, alias)


def _hard_deletes(config: dict[str, Any]) -> str:
    if config.get("invalidate_hard_deletes"):
        return "invalidate"
    return str(config.get("hard_deletes") or "ignore")


@register
class Snapshot(Materialization):
    name = "snapshot"

    def validate(self, model: Model) -> str | None:
        cfg = model.config
        strategy = cfg.get("strategy")
        if not model.unique_key:
            return "a snapshot needs config unique_key"
        if strategy == "timestamp":
            if not cfg.get("updated_at"):
                return "snapshot strategy 'timestamp' needs config updated_at"
        elif strategy == "check":
            if not cfg.get("check_cols"):
                return "snapshot strategy 'check' needs config check_cols (a list of columns, or 'all')"
        else:
            return f"snapshot strategy must be 'timestamp' or 'check', not {strategy!r}"
        if _hard_deletes(cfg) not in ("ignore", "invalidate"):
            return f"snapshot hard_deletes '{_hard_deletes(cfg)}' is not supported (use 'ignore' or 'invalidate')"
        return None

    def run(self, ctx: ModelContext) -> Outcome:
        model = ctx.model
        source = ctx.render(incremental=False)
        cfg = model.config
        if cfg["strategy"] == "timestamp":
            version_at = f"CAST(_src.{quote_ident(str(cfg['updated_at']))} AS TIMESTAMP)"
        else:
            version_at = "CAST(now() AS TIMESTAMP)"
        versioned = (
            f"SELECT _src.*, md5({_key_expr(model, '_src')} || '|' || CAST({version_at} AS VARCHAR)) AS dbt_scd_id, "
            f"{version_at} AS dbt_updated_at, {version_at} AS dbt_valid_from, CAST(NULL AS TIMESTAMP) AS dbt_valid_to "
            f"FROM ({source}) AS _src"
        )
        entry = ctx.entry()
        if entry is None or entry.view_sql is not None or ctx.full_refresh:
            out = rebuild(ctx, versioned)
            return Outcome("snapshot", out.rows)
        return self._update(ctx, source, versioned)

    def _changed(self, ctx: ModelContext, source: str) -> str:
        """The condition under which a source row `_src` is a new version of the current row `_cur`."""
        cfg = ctx.model.config
        if cfg["strategy"] == "timestamp":
            col = quote_ident(str(cfg["updated_at"]))
            return f"CAST(_src.{col} AS TIMESTAMP) > _cur.dbt_updated_at"
        cols = cfg["check_cols"]
        if cols == "all":
            described = ctx.cursor.execute(f"DESCRIBE {source}").fetchall()
            cols = [str(r[0]) for r in described if str(r[0]) not in ctx.model.unique_key]
        return "(" + " OR ".join(f"_src.{quote_ident(c)} IS DISTINCT FROM _cur.{quote_ident(c)}" for c in cols) + ")"

    def _update(self, ctx: ModelContext, source: str, versioned: str) -> Outcome:
        model, this = ctx.model, ctx.target
        ctx.bind(this)
        current = f"(SELECT * FROM {this} WHERE dbt_valid_to IS NULL)"
        sk, ck = _match_expr(model, "_src"), _match_expr(model, "_cur")
        changed = self._changed(ctx, source)
        parts = [
            # new versions: keys with no current row, or whose current row changed
            f"SELECT _src.*, false AS _rat_close, {sk} AS _rat_key FROM ({versioned}) AS _src "
            f"LEFT JOIN {current} AS _cur ON {sk} = {ck} WHERE {ck} IS NULL OR {changed}",
            # the current rows they replace, closed at the new version's time
            f"SELECT _cur.* REPLACE (_src.dbt_valid_from AS dbt_valid_to), true AS _rat_close, {ck} AS _rat_key "
            f"FROM {current} AS _cur JOIN ({versioned}) AS _src ON {sk} = {ck} WHERE {changed}",
        ]
        if _hard_deletes(model.config) == "invalidate":
            parts.append(
                f"SELECT _cur.* REPLACE (CAST(now() AS TIMESTAMP) AS dbt_valid_to), true AS _rat_close, {ck} AS _rat_key "
                f"FROM {current} AS _cur WHERE {ck} NOT IN (SELECT {sk} FROM ({versioned}) AS _src WHERE {sk} IS NOT NULL)"
            )
        changes = " UNION ALL BY NAME ".join(f"({p})" for p in parts)
        with spilled(ctx, changes) as batch:
            if batch.rows == 0:
                return Outcome("snapshot")
            closing = f"SELECT _rat_key FROM {batch.relation} WHERE _rat_close"
            ctx.writer.delete(this, f"dbt_valid_to IS NULL AND {_match_expr(model)} IN ({closing})", statement=source)
            rows = f"SELECT * EXCLUDE (_rat_close, _rat_key) FROM {batch.relation}"
            added = ctx.writer.append(this, rows, statement=source)
            closed = int(scalar(ctx.cursor, f"SELECT count(*) FROM {batch.relation} WHERE _rat_close"))
        return Outcome("snapshot", added.rows - closed, closed)

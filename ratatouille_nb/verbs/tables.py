"""The tables browser: a workspace's layers and tables on a ref, for `%rat tables` and the Lab sidebar.

Each table with its live rows, columns (DuckDB type names, catalog/typenames.py), the commit that
last changed it (12-character hash and time), the model that builds it, and its freshness: the
age of its data against the model's `freshness:` (warn/error hours), else against the
`sla.freshness_hours` of a product this workspace publishes from it, else just the age.
Everything comes from catalog and Iceberg metadata: no data file is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from ratatouille_nb.errors import RatError

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import Commit, TableEntry
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.model import Model
    from ratatouille_nb.pipeline.project import Project

Kind = Literal["table", "view", "broken"]
FreshnessStatus = Literal["fresh", "warn", "stale", "unknown"]
FreshnessBasis = Literal["model", "product", "age"]
HISTORY_LIMIT = 500  # commits walked back to find the one that last changed each table
SHORT_HASH = 12


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class Freshness:
    """How old a table's data is, judged against the limit that applies to it (if any)."""

    status: FreshnessStatus
    basis: FreshnessBasis
    age_hours: float | None
    warn_after_hours: float | None = None
    error_after_hours: float | None = None
    column: str | None = None  # the model's freshness column, when the age is now - max(column)

    @property
    def text(self) -> str:
        """One phrase: `2.1h old · fresh (model freshness: warn 6.0h, error 12.0h)`, `3.0d old`."""
        if self.age_hours is None:
            return "age unknown"
        age = f"{hours_text(self.age_hours)} old"
        if self.basis == "age":
            return age
        if self.basis == "product":
            return f"{age} · {self.status} (product SLA {hours_text(self.error_after_hours or 0)})"
        limits = ", ".join(
            f"{k} {hours_text(v)}" for k, v in (("warn", self.warn_after_hours), ("error", self.error_after_hours)) if v is not None
        )
        on = f" on max({self.column})" if self.column else ""
        return f"{age} · {self.status} (model freshness{on}: {limits})"


@dataclass(frozen=True)
class TableInfo:
    table: str
    layer: str
    name: str
    kind: Kind
    rows: int | None
    columns: list[ColumnInfo]
    snapshot_at: float | None  # epoch seconds of the commit that last changed the table (else its snapshot)
    commit: str | None  # that commit, 12 characters
    model: str | None  # the pipeline model building it
    model_path: str | None  # its file, relative to the workspace
    freshness: Freshness
    error: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class LayerInfo:
    name: str
    tables: list[TableInfo] = field(default_factory=list)


@dataclass(frozen=True)
class TablesListing:
    workspace: str
    ref: str
    commit: str
    layers: list[LayerInfo]

    @property
    def tables(self) -> list[TableInfo]:
        return [t for layer in self.layers for t in layer.tables]


def hours_text(value: float) -> str:
    """`<1m`, `45m`, `5.2h`, `3.0d`."""
    if abs(value) < 1 / 60:
        return "<1m"
    if abs(value) < 1:
        return f"{round(value * 60)}m"
    return f"{value:.1f}h" if abs(value) < 48 else f"{value / 24:.1f}d"


def judge(age_hours: float | None, *, warn: float | None, error: float | None, basis: FreshnessBasis) -> Freshness:
    """`fresh` / `warn` / `stale` for an age against warn and error hours (`unknown` without an age)."""
    if age_hours is None:
        return Freshness("unknown", basis, None, warn, error)
    if basis == "age":
        return Freshness("unknown", basis, age_hours)
    status: FreshnessStatus = "fresh"
    if error is not None and age_hours > error:
        status = "stale"
    elif warn is not None and age_hours > warn:
        status = "warn"
    return Freshness(status, basis, age_hours, warn, error)


def _project(s: Session) -> Project | None:
    from ratatouille_nb.pipeline.loader import load_project

    try:
        return load_project(s.workspace.root)
    except RatError:
        return None  # a broken pipeline file must not hide the tables


def _last_changes(s: Session, ref: str, contents: dict[str, TableEntry]) -> dict[str, Commit]:
    """For each table, the oldest commit of the unbroken run (from the head back) holding its current entry."""
    try:
        history = s.store.log(ref, limit=HISTORY_LIMIT)
    except RatError:
        return {}
    found: dict[str, Commit] = {}
    open_keys = set(contents)
    previous: Commit | None = None
    for commit in history:
        for key in list(open_keys):
            if commit.contents.get(key) != contents[key]:
                if previous is not None:
                    found[key] = previous
                open_keys.discard(key)
        if not open_keys:
            break
        previous = commit
    if previous is not None:
        for key in open_keys:  # unchanged over the whole walked history
            found[key] = previous
    return found


def _sla_by_source(s: Session) -> dict[str, float]:
    out: dict[str, float] = {}
    for product in s.workspace.config.products:
        if product.sla is not None and product.sla.freshness_hours is not None:
            out[product.source.lower()] = product.sla.freshness_hours
    return out


def _freshness(age_hours: float | None, model: Model | None, sla_hours: float | None, column_age: float | None = None) -> Freshness:
    """The judgement: the model's `freshness:` (on max(column) when it names one and that age is
    known), else the product's SLA, else the bare age of the last change."""
    fresh = model.freshness if model is not None else None
    if fresh is not None and (fresh.warn_after_hours is not None or fresh.error_after_hours is not None):
        if fresh.column and column_age is not None:
            judged = judge(column_age, warn=fresh.warn_after_hours, error=fresh.error_after_hours, basis="model")
            return replace(judged, column=fresh.column)
        return judge(age_hours, warn=fresh.warn_after_hours, error=fresh.error_after_hours, basis="model")
    if sla_hours is not None:
        return judge(age_hours, warn=None, error=sla_hours, basis="product")
    return judge(age_hours, warn=None, error=None, basis="age")


def _relative(path: object, s: Session) -> str | None:
    from pathlib import Path

    if path is None:
        return None
    try:
        return str(Path(str(path)).resolve().relative_to(s.workspace.root.resolve()))
    except ValueError:
        return str(path)


def describe_table(
    s: Session,
    key: str,
    entry: TableEntry,
    *,
    changed: Commit | None,
    model: Model | None,
    sla_hours: float | None,
    now: float,
    ref: str | None = None,
) -> TableInfo:
    """One table's row of the browser on `ref` (a table whose metadata cannot be read is `broken`, with the way out)."""
    import duckdb

    from ratatouille_nb.catalog.tables import read_metadata
    from ratatouille_nb.catalog.typenames import duck_type_of
    from ratatouille_nb.errors import TableMetadataError

    layer, _, name = key.partition(".")
    snapshot_at = changed.created_at if changed is not None else None
    base = TableInfo(
        table=key,
        layer=layer,
        name=name,
        kind="broken",
        rows=None,
        columns=[],
        snapshot_at=snapshot_at,
        commit=changed.hash[:SHORT_HASH] if changed is not None else None,
        model=model.name if model is not None else None,
        model_path=_relative(model.path, s) if model is not None else None,
        freshness=_freshness(None, model, sla_hours),
    )
    if entry.view_sql is not None:
        try:
            s.bind(key, s.contents(ref))
            described = s.con.execute(f"DESCRIBE {key}").fetchall()
        except RatError as exc:
            return replace(base, error=str(exc.args[0] if exc.args else exc), hint=exc.hint)
        except duckdb.Error as exc:
            return replace(base, error=str(exc).splitlines()[0])
        columns = [ColumnInfo(str(c[0]), str(c[1]), str(c[2]).upper() != "NO") for c in described]
        age = max(0.0, (now - snapshot_at) / 3600) if snapshot_at is not None else None
        return replace(base, kind="view", columns=columns, freshness=_freshness(age, model, sla_hours, _column_age(s, key, model, now, ref)))
    try:
        meta = read_metadata(s.warehouse.file_io(), entry.metadata_location, key)
    except TableMetadataError as exc:
        return replace(base, error=str(exc.args[0]), hint=exc.hint)
    snap = meta.current_snapshot()
    summary = snap.summary.additional_properties if snap is not None and snap.summary is not None else {}
    rows = int(summary.get("total-records", 0)) - int(summary.get("total-position-deletes", 0))
    if snapshot_at is None:
        millis = snap.timestamp_ms if snap is not None else meta.last_updated_ms
        snapshot_at = millis / 1000
    columns = [ColumnInfo(f.name, duck_type_of(f.field_type), not f.required) for f in meta.schema().fields]
    age = max(0.0, (now - snapshot_at) / 3600)
    fresh = _freshness(age, model, sla_hours, _column_age(s, key, model, now, ref))
    return replace(base, kind="table", rows=rows, columns=columns, snapshot_at=snapshot_at, freshness=fresh)


def _column_age(s: Session, key: str, model: Model | None, now: float, ref: str | None) -> float | None:
    """Hours since max(column) of the model's freshness column, as the freshness test measures it
    (None without such a column, or when the query fails: the last change's age stands in)."""
    import duckdb

    from ratatouille_nb.engine.sqltypes import quote_ident

    fresh = model.freshness if model is not None else None
    if fresh is None or not fresh.column:
        return None
    try:
        row = s.sql(f"SELECT epoch(max({quote_ident(fresh.column)})) FROM {key}", ref=ref).relation.fetchone()
    except (RatError, duckdb.Error):
        return None
    if row is None or row[0] is None:
        return None
    return max(0.0, (now - float(row[0])) / 3600)


def list_tables(s: Session, ref: str | None = None, *, now: float | None = None) -> TablesListing:
    """The layers of the workspace (in workspace.yaml order, then any other) and their tables on `ref`."""
    where = ref or s.branch
    head = s.store.resolve(where)
    # `_rat.*` is Ratatouille's own bookkeeping (the ingestion ledger), not the user's data.
    contents = {k: v for k, v in s.contents(where).items() if not k.startswith("_")}
    project = _project(s)
    by_target = project.by_target() if project is not None else {}
    changes = _last_changes(s, where, contents)
    slas = _sla_by_source(s)
    moment = time.time() if now is None else now
    layers = list(s.workspace.config.layers)
    layers += sorted({k.split(".", 1)[0] for k in contents} - set(layers))
    grouped: dict[str, list[TableInfo]] = {name: [] for name in layers}
    for key in sorted(contents):
        info = describe_table(
            s, key, contents[key], changed=changes.get(key), model=by_target.get(key), sla_hours=slas.get(key), now=moment, ref=where
        )
        grouped[info.layer].append(info)
    return TablesListing(
        workspace=s.workspace.name,
        ref=where,
        commit=head.hash[:SHORT_HASH],
        layers=[LayerInfo(name, grouped[name]) for name in layers],
    )

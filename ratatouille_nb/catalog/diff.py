"""Per-table differences between two refs: rows added, deleted and updated, schema changes.

Counts come from Iceberg metadata when that is exact: when one version descends from the other
and every snapshot in between only appended, deleted or compacted (the `append`, `delete` and
`replace` snapshot operations), the snapshot summaries give the rows added and deleted exactly —
a DELETE of 4,672 rows shows −4,672 whether it wrote position deletes or rewrote files.

Otherwise (merges, UPDATEs, diverged or replaced tables) `rows=True` computes them with DuckDB
over only the files that differ between the two versions (the data files present on one side,
and the rows of shared files that one side deleted), matched by the table's unique key (the
`ratatouille.unique-key` table property a merge model sets, or `keys=`): a key on both sides
with different values is an update. Without a key, rows are compared whole. DuckDB runs under
the connection's memory limit and spills, so the work follows the change, not the table.
Without `rows=True` such tables get the file-level estimate (`rows_exact` False).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ratatouille_nb.catalog.deletes import LiveFile, live_files
from ratatouille_nb.catalog.liverows import FILE_COL, POS_COL, aligned_select, deleted_positions_sql, ident, live_rows_sql, read_files_sql
from ratatouille_nb.catalog.merge import changed_keys
from ratatouille_nb.catalog.models import ColumnChange, TableDiff, TableEntry
from ratatouille_nb.catalog.tables import read_metadata

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.io import FileIO
    from pyiceberg.table.metadata import TableMetadata

    from ratatouille_nb.catalog.base import VersionStore
    from ratatouille_nb.storage.warehouse import Warehouse

UNIQUE_KEY_PROPERTY = "ratatouille.unique-key"
_EXACT_OPS = {"append", "delete", "replace"}


def _columns(meta: TableMetadata | None) -> dict[str, str]:
    return {f.name: str(f.field_type) for f in meta.schema().fields} if meta is not None else {}


def _schema_changes(old: TableMetadata | None, new: TableMetadata | None) -> list[ColumnChange]:
    if old is None or new is None:
        return []
    before, after = _columns(old), _columns(new)
    changes = [ColumnChange(name=c, change="added", new_type=after[c]) for c in after if c not in before]
    changes += [ColumnChange(name=c, change="removed", old_type=before[c]) for c in before if c not in after]
    changes += [ColumnChange(name=c, change="retyped", old_type=before[c], new_type=after[c]) for c in before if c in after and before[c] != after[c]]
    return changes


def _live_total(meta: TableMetadata | None) -> int:
    snap = meta.current_snapshot() if meta is not None else None
    if snap is None or snap.summary is None:
        return 0
    props = snap.summary.additional_properties
    return int(props.get("total-records", 0)) - int(props.get("total-position-deletes", 0))


def _summary_counts(old: TableMetadata, new: TableMetadata) -> tuple[int, int] | None:
    """(added, deleted) rows from the snapshots between two versions, when they are exact."""
    if old.table_uuid != new.table_uuid or old.current_snapshot_id is None or new.current_snapshot_id is None:
        return None
    added = deleted = 0
    snap = new.current_snapshot()
    while snap is not None and snap.snapshot_id != old.current_snapshot_id:
        summary = snap.summary
        if summary is None or summary.operation.value not in _EXACT_OPS:
            return None
        p = summary.additional_properties

        def n(name: str, props: Mapping[str, str] = p) -> int:
            return int(props.get(name, 0))

        if summary.operation.value == "append":
            added += n("added-records")
        elif summary.operation.value == "delete":
            # Rewritten (copy-on-write) files count their kept rows as added again; dropped files
            # take their earlier position deletes with them.
            deleted += n("deleted-records") - n("added-records") + n("added-position-deletes") - n("removed-position-deletes")
        snap = new.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id is not None else None
    return (added, deleted) if snap is not None else None


def _file_estimate(old: dict[str, LiveFile], new: dict[str, LiveFile]) -> tuple[int, int]:
    """Live rows in data files on one side only, plus rows of shared files deleted on one side only."""
    added = sum(f.live_rows for p, f in new.items() if p not in old)
    removed = sum(f.live_rows for p, f in old.items() if p not in new)
    for p, f in new.items():
        if p in old:
            change = f.deleted_rows - old[p].deleted_rows
            removed += max(change, 0)
            added += max(-change, 0)
    return added, removed


def unique_key(meta: TableMetadata | None) -> list[str]:
    value = meta.properties.get(UNIQUE_KEY_PROPERTY, "") if meta is not None else ""
    return [k.strip() for k in value.split(",") if k.strip()]


def _duck_types(con: duckdb.DuckDBPyConnection, meta: TableMetadata | None) -> list[tuple[str, str | None]]:
    """The table's columns with DuckDB types (through the Arrow schema pyiceberg derives)."""
    if meta is None:
        return []
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    rel = con.from_arrow(schema_to_pyarrow(meta.schema(), include_field_ids=False).empty_table())
    return [(name, str(t)) for name, t in zip(rel.columns, rel.types, strict=True)]


class _Side:
    """The rows of one version that are not rows of the other: SQL over only the differing files."""

    def __init__(self, con: duckdb.DuckDBPyConnection, mine: dict[str, LiveFile], other: dict[str, LiveFile], columns: list[tuple[str, str | None]]) -> None:
        self.con = con
        self.mine = mine
        self.other = other
        self.columns = columns

    def _present(self, paths: list[str]) -> set[str]:
        return {r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {read_files_sql(paths)}").fetchall()}

    def sql(self) -> str | None:
        parts = []
        only = [f for p, f in self.mine.items() if p not in self.other]
        if only:
            parts.append(live_rows_sql(only, aligned_select(self.columns, self._present([f.path for f in only]))))
        # Rows of shared files the other side deleted (and this side still has).
        shared = [f for p, f in self.mine.items() if p in self.other and _delete_paths(self.other[p]) - _delete_paths(f)]
        if shared:
            paths = [f.path for f in shared]
            mine = sorted(set().union(*(_delete_paths(f) for f in shared)))
            theirs = sorted(set().union(*(_delete_paths(self.other[f.path]) for f in shared)) - set(mine))
            on = f"d.{FILE_COL} = {{a}}.{FILE_COL} AND d.{POS_COL} = {{a}}.{POS_COL}"
            sql = (
                f"SELECT {aligned_select(self.columns, self._present(paths))} FROM {read_files_sql(paths, positions=True)} AS d "
                f"SEMI JOIN ({deleted_positions_sql(theirs)}) AS g ON {on.format(a='g')}"
            )
            if mine:
                sql += f" ANTI JOIN ({deleted_positions_sql(mine)}) AS x ON {on.format(a='x')}"
            parts.append(sql)
        if not parts:
            return None
        return " UNION ALL BY NAME ".join(f"({p})" for p in parts)


def _delete_paths(live: LiveFile) -> set[str]:
    return {d.file_path for d in live.deletes}


def _row_dicts(cur: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _computed(
    con: duckdb.DuckDBPyConnection,
    old_meta: TableMetadata | None,
    new_meta: TableMetadata | None,
    old: dict[str, LiveFile],
    new: dict[str, LiveFile],
    key: list[str],
    sample: int,
) -> dict[str, Any]:
    """Exact added/deleted/updated rows (and samples) by key, or by whole rows without one."""
    import uuid

    old_typed, new_typed = _duck_types(con, old_meta), _duck_types(con, new_meta)
    old_cols, new_cols = [c for c, _ in old_typed], [c for c, _ in new_typed]
    common = [c for c in new_cols if c in old_cols]
    key = [k for k in key if k in common]
    tag = uuid.uuid4().hex[:10]
    names = {"o": f"_rat_diff_o_{tag}", "n": f"_rat_diff_n_{tag}"}
    out: dict[str, Any] = {"rows_added": 0, "rows_removed": 0, "rows_updated": 0, "sample": []}
    try:
        for side, (mine, other, typed) in {"o": (old, new, old_typed), "n": (new, old, new_typed)}.items():
            sql = _Side(con, mine, other, typed).sql() if typed else None
            empty = ", ".join(f"CAST(NULL AS {t}) AS {ident(c)}" for c, t in typed) or "NULL AS _none"
            con.execute(f"CREATE TEMP TABLE {names[side]} AS " + (sql or f"SELECT {empty} WHERE false"))
        o, n = names["o"], names["n"]
        cols_sql = ", ".join(ident(c) for c in common) or "1"

        def one(sql: str) -> int:
            row = con.execute(sql).fetchone()
            return int(row[0]) if row else 0

        def rows(sql: str) -> list[dict[str, Any]]:
            return _row_dicts(con.execute(f"{sql} LIMIT {int(sample)}")) if sample else []

        if key:
            on = " AND ".join(f"a.{ident(k)} IS NOT DISTINCT FROM b.{ident(k)}" for k in key)
            differs = " OR ".join(f"a.{ident(c)} IS DISTINCT FROM b.{ident(c)}" for c in common if c not in key) or "false"
            out["rows_added"] = one(f"SELECT count(*) FROM {n} AS a ANTI JOIN {o} AS b ON {on}")
            out["rows_removed"] = one(f"SELECT count(*) FROM {o} AS a ANTI JOIN {n} AS b ON {on}")
            out["rows_updated"] = one(f"SELECT count(*) FROM {n} AS a JOIN {o} AS b ON {on} WHERE {differs}")
            sample_rows = [{"change": "added", "row": r} for r in rows(f"SELECT a.* FROM {n} AS a ANTI JOIN {o} AS b ON {on}")]
            sample_rows += [{"change": "deleted", "row": r} for r in rows(f"SELECT a.* FROM {o} AS a ANTI JOIN {n} AS b ON {on}")]
            if sample:
                pairs = con.execute(
                    f"SELECT a.*, b.* FROM {n} AS a JOIN {o} AS b ON {on} WHERE {differs} LIMIT {int(sample)}"
                ).fetchall()
                width = len(new_cols)
                for r in pairs:
                    after, before = dict(zip(new_cols, r[:width], strict=True)), dict(zip(old_cols, r[width:], strict=True))
                    changed = sorted(c for c in common if after.get(c) != before.get(c))
                    sample_rows.append({"change": "updated", "row": after, "before": before, "columns": changed})
            out["sample"] = sample_rows
        else:
            out["rows_added"] = one(f"SELECT count(*) FROM (SELECT {cols_sql} FROM {n} EXCEPT ALL SELECT {cols_sql} FROM {o})")
            out["rows_removed"] = one(f"SELECT count(*) FROM (SELECT {cols_sql} FROM {o} EXCEPT ALL SELECT {cols_sql} FROM {n})")
            out["sample"] = [{"change": "added", "row": r} for r in rows(f"SELECT {cols_sql} FROM {n} EXCEPT ALL SELECT {cols_sql} FROM {o}")]
            out["sample"] += [{"change": "deleted", "row": r} for r in rows(f"SELECT {cols_sql} FROM {o} EXCEPT ALL SELECT {cols_sql} FROM {n}")]
    finally:
        for name in names.values():
            con.execute(f"DROP TABLE IF EXISTS {name}")
    return out


def table_diff(
    io: FileIO,
    key: str,
    old: TableEntry | None,
    new: TableEntry | None,
    *,
    rows: bool = False,
    sample: int = 0,
    con: duckdb.DuckDBPyConnection | None = None,
    unique: Sequence[str] | None = None,
) -> TableDiff:
    """Compare two versions of one table (see the module docstring for how rows are counted)."""
    status = "added" if old is None else "removed" if new is None else "changed"
    if (old is not None and old.is_view) or (new is not None and new.is_view):
        return TableDiff(table=key, status=status)
    old_meta = read_metadata(io, old.metadata_location) if old else None
    new_meta = read_metadata(io, new.metadata_location) if new else None
    net = _live_total(new_meta) - _live_total(old_meta)
    changes = _schema_changes(old_meta, new_meta)
    base: dict[str, Any] = {"table": key, "status": status, "net_rows": net, "schema_changes": changes}
    exact = None
    if old_meta is not None and new_meta is not None:
        exact = _summary_counts(old_meta, new_meta)
        if exact is None and (back := _summary_counts(new_meta, old_meta)) is not None:
            exact = (back[1], back[0])
    elif old_meta is None:
        exact = (net, 0)
    else:
        exact = (0, -net)
    chosen_key = list(unique) if unique else unique_key(new_meta) or unique_key(old_meta)
    wants_rows = rows and (exact is None or sample > 0 or chosen_key)
    old_files = live_files(old_meta, io) if old_meta is not None else {}
    new_files = live_files(new_meta, io) if new_meta is not None else {}
    if wants_rows and con is not None:
        computed = _computed(con, old_meta, new_meta, old_files, new_files, chosen_key, sample)
        return TableDiff(**base, **computed, rows_exact=True, method="key" if chosen_key else "rows", key=chosen_key)
    if exact is not None:
        return TableDiff(**base, rows_added=exact[0], rows_removed=exact[1], rows_exact=True, method="summary", key=chosen_key)
    added, removed = _file_estimate(old_files, new_files)
    return TableDiff(**base, rows_added=added, rows_removed=removed, rows_exact=False, method="files", key=chosen_key)


def diff_refs(
    store: VersionStore,
    warehouse: Warehouse,
    from_ref: str,
    to_ref: str,
    *,
    rows: bool = False,
    sample: int = 0,
    con: duckdb.DuckDBPyConnection | None = None,
    keys: Mapping[str, Sequence[str]] | None = None,
) -> list[TableDiff]:
    """Every table that differs between two refs, sorted by name.

    `rows=True` (with a DuckDB `con`) counts rows exactly where metadata cannot, matching by the
    table's unique key (`keys` overrides it per table); `sample` adds up to that many changed
    rows of each kind.
    """
    before = store.resolve(from_ref).contents
    after = store.resolve(to_ref).contents
    io = warehouse.file_io()
    return [
        table_diff(io, key, before.get(key), after.get(key), rows=rows, sample=sample, con=con, unique=(keys or {}).get(key))
        for key in sorted(changed_keys(before, after))
    ]

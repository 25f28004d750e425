"""What Python ingestion pipelines call through `rat`: landing files, the ingestion ledger, appends.

The ledger (`_rat.ingested_files`) is an Iceberg table written in the run's transaction, so a run
that fails re-ingests its files next time, and a branch carries its own ledger.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ratatouille_nb.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from ratatouille_nb.pipeline.state import RunState

LEDGER = "_rat.ingested_files"


def list_files(state: RunState, pattern: str) -> list[str]:
    """Files matching a glob under the storage root, as paths relative to it (sorted)."""
    root = state.session.warehouse.location(state.session.workspace.prefix)
    full = state.storage_path(pattern)
    cursor = state.session.con.cursor()
    try:
        rows = cursor.execute("SELECT file FROM glob(?) ORDER BY file", [full]).fetchall()
    finally:
        cursor.close()
    return [str(r[0])[len(root) + 1 :] for r in rows]


def read_file(state: RunState, relative: str) -> bytes:
    path = state.storage_path(relative)
    io = state.session.warehouse.file_io()
    try:
        with io.new_input(path).open() as stream:
            return stream.read()
    except FileNotFoundError:
        raise PipelineError(f"no file '{relative}' under the storage root") from None


def _ledger_paths(state: RunState) -> set[str]:
    cache = getattr(state, "_ledger_cache", None)
    if cache is not None:
        return cache
    paths: set[str] = set()
    contents = state.txn.contents()
    if LEDGER in contents:
        cursor = state.session.con.cursor()
        try:
            with state.bind_lock:
                state.session.bind(LEDGER, contents)
            paths = {r[0] for r in cursor.execute(f"SELECT path FROM {LEDGER}").fetchall()}
        finally:
            cursor.close()
    state._ledger_cache = paths  # type: ignore[attr-defined]
    return paths


def is_ingested(state: RunState, relative: str) -> bool:
    return relative in _ledger_paths(state) or relative in _pending(state)


def _pending(state: RunState) -> dict[str, str]:
    if not hasattr(state, "_ledger_pending"):
        state._ledger_pending = {}  # type: ignore[attr-defined]
    return state._ledger_pending  # type: ignore[attr-defined]


def mark_ingested(state: RunState, pipeline: str, relative: str) -> None:
    """Record a file as ingested; written to the ledger with the run's commit."""
    _pending(state)[relative] = pipeline
    _write_ledger(state)


def _write_ledger(state: RunState) -> None:
    import pyarrow as pa

    pending = _pending(state)
    if not pending:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    table = pa.table(
        {
            "path": list(pending),
            "pipeline": list(pending.values()),
            "ingested_at": pa.array([now] * len(pending), pa.timestamp("us")),
        }
    )
    append(state, LEDGER, table)
    _ledger_paths(state).update(pending)
    pending.clear()


def append(state: RunState, key: str, data: Any) -> int:
    """Append a DataFrame / Arrow table / Arrow stream / DuckDB relation to a table (creating it)."""
    from ratatouille_nb.engine.incremental import IncrementalWriter
    from ratatouille_nb.engine.statements import validate_table_key

    validate_table_key(key)
    cursor = state.session.con.cursor()
    name = f"_rat_append_{uuid.uuid4().hex[:10]}"
    try:
        cursor.register(name, data)
        writer = IncrementalWriter(cursor, state.txn, state.session.resources, spill_dir=state.session.spill_dir)
        if state.txn.exists(key):
            out = writer.append(key, f"SELECT * FROM {name}", statement=f"rat.append('{key}', …)")
        else:
            layer = key.split(".")[0]
            partitions = state.session.workspace.config.partition_by(layer)
            out = writer.create(key, f"SELECT * FROM {name}", partition_by=partitions, statement=f"rat.append('{key}', …)")
        return out.rows
    finally:
        cursor.unregister(name)
        cursor.close()

"""A model's new rows evaluated once into Parquet in the spill folder.

Strategies that read the batch more than once while they change the table it was computed from
(delete+insert, snapshots) must not re-run the model's SELECT after the first write: they read
this frozen copy instead. DuckDB streams it to disk; it never passes through Python.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from ratatouille_nb.engine.duckerrors import duck_error
from ratatouille_nb.engine.rows import one_row
from ratatouille_nb.engine.sqltypes import storable_projection
from ratatouille_nb.pipeline.materializations.base import ModelContext


@dataclass(frozen=True)
class Batch:
    relation: str  # a `read_parquet([...])` over the spilled files, or an empty SELECT
    rows: int


def _quoted(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


@contextmanager
def spilled(ctx: ModelContext, select_sql: str) -> Iterator[Batch]:
    """Evaluate `select_sql` once; yields its rows as a relation, removed again afterwards.

    Columns are cast to what Iceberg can store first (HUGEINT -> DECIMAL(38,0), …), as the
    writer does, so the frozen rows keep the types the table gets.
    """
    try:
        described = [(str(r[0]), str(r[1])) for r in ctx.cursor.execute(f"DESCRIBE {select_sql}").fetchall()]
    except duckdb.Error as exc:
        raise duck_error(exc, select_sql) from None
    select_sql = f"SELECT {storable_projection(described)} FROM ({select_sql}) AS _src"
    folder = ctx.state.session.spill_dir / f"model-batch-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        try:
            rows, files = one_row(
                ctx.cursor,
                f"COPY ({select_sql}) TO '{folder}' (FORMAT parquet, FILENAME_PATTERN 'b-{{uuid}}', "
                f"FILE_SIZE_BYTES '{ctx.state.session.resources.target_file_size_mb}MB', RETURN_FILES true)",
            )
        except duckdb.Error as exc:
            raise duck_error(exc, select_sql) from None
        files = list(files)
        relation = f"read_parquet({_quoted(files)})" if files else f"(SELECT * FROM ({select_sql}) AS _empty LIMIT 0)"
        yield Batch(relation, int(rows))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Printing results as an aligned table, CSV or JSON; big results stream batch by batch."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import click


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: IO[str] | None = None) -> None:
    """Plain aligned columns (no box drawing: it copies cleanly into tickets and notes)."""
    out = out or sys.stdout
    text_rows = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in text_rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def write_result(result: Any, fmt: str, limit: int | None) -> None:
    """Print a StatementResult in the chosen format."""
    out = sys.stdout
    if not result.is_query:
        for w in result.writes:
            verb = {"noop": "unchanged"}.get(w.operation, w.operation)
            click.echo(f"{w.table}: {verb} ({w.rows:,} rows)")
        if result.commit is not None:
            click.echo(f"committed {result.commit.short} on {result.ref}  ({result.elapsed:.2f}s, peak {result.peak_rss_mb:.0f} MB)")
        return
    if fmt == "table":
        _write_table(result, limit)
        return
    reader = result.record_batches()
    names = reader.schema.names
    if fmt == "csv":
        import pyarrow.csv as pacsv

        first = True
        for batch in reader:
            pacsv.write_csv(batch, sys.stdout.buffer, write_options=pacsv.WriteOptions(include_header=first))
            first = False
        if first:
            sys.stdout.write(",".join(f'"{n}"' for n in names) + "\n")
        return
    if fmt == "json":
        out.write("[")
        sep = "\n"
        for batch in reader:
            for row in batch.to_pylist():
                out.write(sep + json.dumps(row, default=_json_default))
                sep = ",\n"
        out.write("\n]\n")
        return


def _write_table(result: Any, limit: int | None) -> None:
    """Fetch only the rows shown (plus one, to know whether more exist); no Arrow import needed."""
    relation = result.relation
    names = list(relation.columns)
    if limit is None:
        rows = relation.fetchall()
        more = False
    else:
        rows = relation.fetchmany(limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
    render_table(names, rows)
    tail = f"{len(rows):,} row(s)" + (f" shown (limit {limit}; more exist)" if more else "")
    click.echo(f"{tail}  [{result.ref}, {result.elapsed:.2f}s, peak {result.peak_rss_mb:.0f} MB]", err=True)

"""Printing results as an aligned table, CSV or JSON; big results stream batch by batch."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click

from ratatouille_nb.textable import render_table

__all__ = ["render_table", "write_result"]


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

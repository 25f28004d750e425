"""Deterministic "seed" sales example data, generated entirely inside DuckDB.

Rows are never materialised in Python: :func:`sales_select_sql` returns a DuckDB
``SELECT`` over ``range(n_rows)`` and :func:`write_sales` streams it to Parquet/CSV
with ``COPY``. Pseudo-randomness is hash-based on ``(row number, seed)``, so the
output is identical across runs, thread counts and machines (for one DuckDB version).

Each column uses ``hash(xor(hash(i, seed), salt))``: a per-column re-mix of one base
hash. (Salting as ``hash(i, seed, salt)`` is NOT used: DuckDB combines multi-argument
hashes with a final XOR, so the low bits of differently-salted columns are perfectly
correlated.)
"""

from __future__ import annotations

import os
from typing import Any

import duckdb

__all__ = ["sales_select_sql", "write_sales"]

# Distinct odd 64-bit salts, one per random column.
_SALTS = {
    "upd": 0x9E3779B97F4A7C15, "pick": 0xC2B2AE3D27D4EB4F, "store": 0x165667B19E3779F9,
    "product": 0xD6E8FEB86659FD93, "qty_bad": 0xFF51AFD7ED558CCD, "qty": 0xC4CEB9FE1A85EC53,
    "price_bad": 0x94D049BB133111EB, "price": 0xBF58476D1CE4E5B9, "pay": 0x2545F4914F6CDD1D,
    "time": 0x85EBCA6B0B1D6C45,
}
# Prime multiplier: i -> (i * P + c) % pool is injective on i < pool (P coprime to pool).
_PICK_PRIME = 2654435761
_START = "2024-01-01"
_SECONDS = 365 * 86400


def _r(col: str) -> str:
    """SQL for column ``col``'s uniform UBIGINT draw from the base hash ``h``."""
    return f"hash(xor(h, {_SALTS[col]}::UBIGINT))"


def sales_select_sql(
    n_rows: int,
    *,
    seed: int = 42,
    id_offset: int = 0,
    update_fraction: float = 0.0,
    update_pool: int = 0,
) -> str:
    """DuckDB SELECT producing ``n_rows`` bronze ``raw_sales`` rows.

    Row ``i`` gets ``txn_id = 'TXN' + 12-digit (i + id_offset)``. With ``update_fraction``
    > 0, that fraction of rows (hash-chosen) instead reuses an existing id from
    ``[0, update_pool)``; these ids are distinct within one call while
    ``n_rows <= update_pool`` (a seeded prime-multiplier permutation of ``i``), so a
    batch never upserts the same key twice. Keep ``id_offset >= update_pool`` so
    reused ids never clash with fresh ones.
    About 2% of quantities are <= 0 and 1% of unit prices are <= 0 (invalid rows).
    """
    n_rows, seed, id_offset, update_pool = int(n_rows), int(seed), int(id_offset), int(update_pool)
    update_fraction = float(update_fraction)
    if n_rows < 0 or id_offset < 0 or update_pool < 0:
        raise ValueError("n_rows, id_offset and update_pool must be >= 0")
    if not 0.0 <= update_fraction <= 1.0:
        raise ValueError("update_fraction must be in [0, 1]")
    if update_fraction > 0 and update_pool == 0:
        raise ValueError("update_fraction > 0 needs update_pool > 0")

    new_id = f"(i + {id_offset})"
    if update_fraction > 0:
        threshold = round(update_fraction * 1_000_000)
        prime = _PICK_PRIME if update_pool % _PICK_PRIME else 4294967291
        shift = f"hash(xor(hash(CAST({seed} AS BIGINT)), {_SALTS['pick']}::UBIGINT)) % {update_pool}"
        pick = f"CAST((i::HUGEINT * {prime} + {shift}) % {update_pool} AS BIGINT)"
        txn = f"CASE WHEN {_r('upd')} % 1000000 < {threshold} THEN {pick} ELSE {new_id} END"
    else:
        txn = new_id
    return f"""SELECT
    'TXN' || lpad(CAST({txn} AS VARCHAR), 12, '0') AS txn_id,
    'STORE' || lpad(CAST(1 + {_r('store')} % 200 AS VARCHAR), 3, '0') AS store_id,
    'P' || lpad(CAST(1 + {_r('product')} % 5000 AS VARCHAR), 5, '0') AS product_id,
    CAST(CASE WHEN {_r('qty_bad')} % 10000 < 200 THEN -CAST({_r('qty')} % 5 AS INTEGER)
              ELSE 1 + {_r('qty')} % 20 END AS INTEGER) AS quantity,
    CAST(CASE WHEN {_r('price_bad')} % 10000 < 100 THEN -CAST({_r('price')} % 1000 AS INTEGER)
              ELSE 50 + {_r('price')} % 49951 END / 100 AS DECIMAL(10, 2)) AS unit_price,
    (['cash', 'card', 'mobile', 'voucher'])[CAST(1 + {_r('pay')} % 4 AS BIGINT)] AS payment_method,
    TIMESTAMP '{_START}' + to_seconds(CAST({_r('time')} % {_SECONDS} AS BIGINT)) AS transaction_time
FROM (SELECT i, hash(i, CAST({seed} AS BIGINT)) AS h FROM range({n_rows}) AS t(i))"""


def write_sales(
    con: duckdb.DuckDBPyConnection, path: str, n_rows: int, *, fmt: str = "parquet", **kwargs: Any
) -> int:
    """Stream ``n_rows`` sales rows to ``path`` (``fmt`` 'parquet' or 'csv'); return rows written.

    ``kwargs`` are passed to :func:`sales_select_sql` (seed, id_offset, ...).
    """
    options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER true"}.get(fmt)
    if options is None:
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    quoted = "'" + str(path).replace("'", "''") + "'"
    row = con.execute(f"COPY ({sales_select_sql(n_rows, **kwargs)}) TO {quoted} ({options})").fetchone()
    return int(row[0]) if row else n_rows

"""What a statement returns: rows as pandas/polars/Arrow, or what a write committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ratatouille_nb.catalog.models import Commit
    from ratatouille_nb.engine.writer import WriteOutcome


@dataclass
class StatementResult:
    """The outcome of one statement. Query rows stay in DuckDB until asked for."""

    statement: str
    ref: str
    query: duckdb.DuckDBPyRelation | None = None
    writes: list[WriteOutcome] = field(default_factory=list)
    commit: Commit | None = None
    elapsed: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def is_query(self) -> bool:
        return self.query is not None

    @property
    def relation(self) -> duckdb.DuckDBPyRelation:
        """The rows of a query (a write has none: see `writes` and `commit`)."""
        if self.query is None:
            from ratatouille_nb.errors import SqlError

            raise SqlError("the statement wrote tables and returned no rows", statement=self.statement)
        return self.query

    @property
    def columns(self) -> list[tuple[str, str]]:
        if self.query is None:
            return [("table", "VARCHAR"), ("operation", "VARCHAR"), ("rows", "BIGINT")]
        return [(n, str(t)) for n, t in zip(self.query.columns, self.query.types, strict=True)]

    def _summary_table(self) -> pa.Table:
        import pyarrow as pa

        return pa.table(
            {
                "table": [w.table for w in self.writes],
                "operation": [w.operation for w in self.writes],
                "rows": pa.array([w.rows for w in self.writes], pa.int64()),
            }
        )

    def arrow(self) -> pa.Table:
        if self.query is None:
            return self._summary_table()
        return self.query.to_arrow_table()

    def record_batches(self, batch_size: int = 100_000) -> pa.RecordBatchReader:
        """Stream rows without materialising them (for CSV/JSON export of big results)."""
        if self.query is None:
            return self._summary_table().to_reader()
        return self.query.to_arrow_reader(batch_size)

    def df(self) -> Any:
        return self.arrow().to_pandas() if self.query is None else self.query.df()

    def pl(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.arrow()) if self.query is None else self.query.pl()

    def to(self, kind: str) -> Any:
        """'pandas' | 'polars' | 'arrow'."""
        return {"pandas": self.df, "polars": self.pl, "arrow": self.arrow}[kind]()

"""`run_query`'s result: the part of agate's Table that dbt macros use (`.columns[0][0]`, `.rows`)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("ratatouille_nb.dbt")
RUN_QUERY_MAX_ROWS = 100_000


class AgateColumn(list[Any]):
    """One column of a `run_query` result: indexable, with `.name` and `.values()`."""

    def __init__(self, name: str, values: list[Any]) -> None:
        super().__init__(values)
        self.name = name

    def values(self) -> list[Any]:
        return list(self)


class AgateTable:
    """The part of agate's Table that dbt macros use."""

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.column_names = tuple(names)
        self.rows = [tuple(r) for r in rows]
        self.columns = [AgateColumn(n, [r[i] for r in self.rows]) for i, n in enumerate(names)]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Any:
        return iter(self.rows)

    def print_table(self, *_args: Any, **_kwargs: Any) -> str:
        log.info("%s\n%s", " | ".join(self.column_names), "\n".join(" | ".join(map(str, r)) for r in self.rows))
        return ""

"""dbt's Jinja context for models, macros and tests of a dbt project.

`config`, `target` (name, schema, type 'duckdb', threads), `execute`, `run_query` (an agate-like
table: `.columns[0][0]`, `.rows`, `.column_names`), `log`, `exceptions.raise_compiler_error`,
`adapter.dispatch` / `adapter.quote` / `adapter.get_columns_in_relation`, `return` (templating.py),
`modules.datetime` / `re` / `itertools`, `doc`, `tojson` / `fromjson` / `toyaml` / `fromyaml`,
`local_md5`, `zip`, `set`. Names dbt has and this list lacks (`graph`, `statement`,
`load_result`, …) fail as unknown variables naming themselves, with the template's file:line.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import logging
import re
from types import SimpleNamespace
from typing import Any

from ratatouille_nb.engine.sqltypes import quote_ident
from ratatouille_nb.pipeline.agate import AgateTable
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.macros import MacroNamespace
from ratatouille_nb.pipeline.templating import current_context

log = logging.getLogger("ratatouille_nb.dbt")


class Column(SimpleNamespace):
    """`adapter.get_columns_in_relation(...)` items: `.name`, `.column`, `.data_type`, `.dtype`, `.quoted`."""


def _run_query(sql: str) -> AgateTable:
    ctx = current_context()
    if ctx.run_query is None or not ctx.execute:
        return AgateTable([], [])  # parse time (dbt's `execute` is False): no engine
    result: AgateTable = ctx.run_query(ctx.sentinels.resolve(str(sql)))
    return result


def _log(message: Any, info: bool = False) -> str:
    (log.info if info else log.debug)("%s", current_context().sentinels.resolve(str(message)))
    return ""


def _raise_compiler_error(message: Any) -> None:
    raise PipelineError(f"compilation error: {current_context().sentinels.resolve(str(message))}")


def _warn(message: Any) -> str:
    log.warning("%s", current_context().sentinels.resolve(str(message)))
    return ""


class _Execute:
    """dbt's `execute`: false while the project is parsed, true when a model really runs."""

    def __bool__(self) -> bool:
        return current_context().execute

    def __str__(self) -> str:
        return str(bool(self))


class _Config:
    """`{{ config(...) }}` records the model's config; `config.get(key)` reads the effective one."""

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if args and isinstance(args[0], dict):
            kwargs = {**args[0], **kwargs}
        current_context().config.update(kwargs)
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        ctx = current_context()
        return ctx.config.get(key, ctx.model_config.get(key, default))

    def require(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise PipelineError(f"config '{key}' is required")
        return value


class _Adapter:
    """The adapter methods dbt macros commonly call, answered for DuckDB."""

    type = "duckdb"

    def __init__(self) -> None:
        self._globals: dict[str, Any] = {}

    def attach(self, env_globals: dict[str, Any]) -> None:
        """The environment whose macros `dispatch` finds (set once the macros are loaded)."""
        self._globals = env_globals

    def _lookup(self, name: str) -> Any:
        package, _, short = name.rpartition(".")
        if package:
            namespace = self._globals.get(package)
            return namespace.macros.get(short) if isinstance(namespace, MacroNamespace) else None
        found = self._globals.get(short)
        return found if callable(found) else None

    def dispatch(self, name: str, macro_namespace: str | None = None) -> Any:
        for candidate in (f"duckdb__{name}", f"default__{name}", name):
            found = self._lookup(f"{macro_namespace}.{candidate}" if macro_namespace else candidate)
            if found is None and macro_namespace:
                found = self._lookup(candidate)
            if found is not None:
                return found
        raise PipelineError(f"adapter.dispatch('{name}'): no macro duckdb__{name} or default__{name}")

    @staticmethod
    def quote(identifier: str) -> str:
        return quote_ident(str(identifier))

    @staticmethod
    def get_columns_in_relation(relation: Any) -> list[Column]:
        ctx = current_context()
        if ctx.describe is None or not ctx.execute:
            return []
        return [
            Column(name=n, column=n, data_type=t, dtype=t, quoted=quote_ident(n)) for n, t in ctx.describe(f"SELECT * FROM {relation}")
        ]

    def get_relation(self, database: Any = None, schema: Any = None, identifier: Any = None) -> Any:
        from ratatouille_nb.pipeline.templating import Relation

        return Relation(f"{schema}.{identifier}")


def dbt_globals(project_name: str, docs: dict[str, str], target_name: str = "dev", threads: int = 1) -> dict[str, Any]:
    """The globals a dbt project's templates see (added to templating.py's)."""
    def doc(name: str, second: str | None = None) -> str:
        key = second or name
        if key not in docs:
            raise PipelineError(f"doc('{key}'): no {{% docs {key} %}} block in the project's .md files")
        return docs[key]

    values = {
        "config": _Config(),
        "execute": _Execute(),
        "target": SimpleNamespace(name=target_name, schema="main", type="duckdb", threads=threads, database="ratatouille",
                                  profile_name=project_name, user="rat"),
        "project_name": project_name,
        "run_query": _run_query,
        "log": _log,
        "exceptions": SimpleNamespace(raise_compiler_error=_raise_compiler_error, warn=_warn,
                                      raise_not_implemented=_raise_compiler_error),
        "adapter": _Adapter(),
        "modules": SimpleNamespace(datetime=datetime, re=re, itertools=itertools),
        "doc": doc,
        "tojson": lambda value, **kw: json.dumps(value, default=str, **kw),
        "fromjson": lambda text, default=None: json.loads(text) if text else default,
        "toyaml": _toyaml,
        "fromyaml": _fromyaml,
        "local_md5": lambda text: hashlib.md5(str(text).encode()).hexdigest(),
        "zip": zip,
        "set": set,
        "print": _print,
    }
    return values


def _print(*values: Any) -> str:
    log.info("%s", " ".join(map(str, values)))
    return ""


def _toyaml(value: Any) -> str:
    import yaml

    return str(yaml.safe_dump(value, sort_keys=False))


def _fromyaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)

"""dbt model configs: what each key does here, and dbt's precedence.

Precedence (lowest first): dbt_project.yml's `models:` / `seeds:` / `snapshots:` tree (the
project node, then each folder down to the file's), the resource's `config:` in a properties
.yml, then `{{ config(...) }}` in the file itself. `tags` accumulate; every other key is replaced.

A key Ratatouille does not know is a warning naming it with file:line; a key that has no effect
here (grants, persist_docs, database…) is a warning saying so; a key whose meaning Ratatouille
cannot honour (hooks, microbatch…) is an error naming it. Nothing is ignored silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ratatouille_nb.pipeline.errors import PipelineError

SUPPORTED = {
    "materialized", "schema", "layer", "alias", "tags", "enabled", "unique_key", "incremental_strategy", "partition_by",
    "description", "owner", "meta", "on_schema_change", "full_refresh", "column_types", "delimiter", "quote_columns",
    "strategy", "updated_at", "check_cols", "target_schema", "invalidate_hard_deletes", "hard_deletes", "severity", "where",
    "error_if", "warn_if", "store_failures", "limit", "fail_calc", "schedule", "docs",
}
NO_EFFECT = {
    "database": "Ratatouille has one catalog per RAT_HOME",
    "target_database": "Ratatouille has one catalog per RAT_HOME",
    "grants": "access is granted with `rat workspace grant` and product grants",
    "persist_docs": "descriptions are kept in lineage and `rat docs`",
    "contract": "declared column types are checked as type(<col>) tests",
    "group": "groups are not modelled",
    "access": "model access is not modelled (products are the published interface)",
    "quoting": "identifiers are always quoted as needed",
    "packages": "Python models are not supported",
    "file_format": "every table is Iceberg on Parquet",
    "store_failures_as": "failures are stored as tables",
}
UNSUPPORTED = {
    "pre_hook": "hooks run SQL outside the model's transaction: put the statement in a model",
    "post_hook": "hooks run SQL outside the model's transaction: put the statement in a model",
    "pre-hook": "hooks run SQL outside the model's transaction: put the statement in a model",
    "post-hook": "hooks run SQL outside the model's transaction: put the statement in a model",
    "sql_header": "a SQL header runs outside the model: use a CTE or a macro",
    "incremental_predicates": "incremental predicates are not supported: filter in the model with is_incremental()",
    "merge_update_columns": "a merge updates whole rows: select only the columns to keep",
    "merge_exclude_columns": "a merge updates whole rows: select only the columns to keep",
    "event_time": "microbatch incremental models are not supported: use is_incremental() with a watermark",
    "batch_size": "microbatch incremental models are not supported: use is_incremental() with a watermark",
    "lookback": "microbatch incremental models are not supported: use is_incremental() with a watermark",
    "on_configuration_change": "materialized views are not supported",
    "snapshot_meta_column_names": "snapshot columns keep dbt's default names (dbt_valid_from, …)",
}
STRATEGIES = {"append", "merge", "delete+insert", "insert_overwrite"}


def normalize_key(key: str) -> str:
    return key[1:] if key.startswith("+") else key


def check_keys(config: dict[str, Any], where: Path, line: int | None, warnings: list[str]) -> None:
    """Warn about unknown and no-effect keys where they are written; refuse what cannot be honoured."""
    for raw in config:
        key = normalize_key(raw)
        if key in SUPPORTED:
            continue
        if key in UNSUPPORTED:
            raise PipelineError(f"config '{key}' is not supported: {UNSUPPORTED[key]}", path=where, line=line)
        location = f"{where}:{line}" if line else str(where)
        if key in NO_EFFECT:
            warnings.append(f"{location}: config '{key}' has no effect in Ratatouille ({NO_EFFECT[key]})")
        else:
            warnings.append(f"{location}: unknown config '{key}' (ignored)")


def check_values(config: dict[str, Any], where: Path, line: int | None, warnings: list[str]) -> None:
    """The effective config of one resource: values Ratatouille refuses or interprets differently."""
    strategy = config.get("incremental_strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise PipelineError(f"incremental_strategy '{strategy}' is not supported", path=where, line=line, hint=f"use one of {', '.join(sorted(STRATEGIES))}")
    on_change = config.get("on_schema_change")
    if on_change not in (None, "append_new_columns"):
        warnings.append(
            f"{where}:{line or 1}: on_schema_change '{on_change}' behaves as 'append_new_columns' here "
            "(new columns are added; dropping or narrowing one needs --full-refresh)"
        )


def check_tree(tree: Any, project: str, where: Path, lines: dict[Any, int], loc: tuple[Any, ...], warnings: list[str]) -> None:
    """Check every config key of a dbt_project.yml tree (`models:` …) once, at its own line."""
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        if isinstance(value, dict) and (key == project or (not key.startswith("+") and key not in DICT_CONFIGS)):
            check_tree(value, project, where, lines, (*loc, key), warnings)  # the project node or a folder
        else:
            check_keys({key: value}, where, lines.get((*loc, key)), warnings)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """dbt's config merge: later wins, tags accumulate, meta merges."""
    out = dict(base)
    for raw, value in over.items():
        key = normalize_key(raw)
        if key == "tags":
            tags = [value] if isinstance(value, str) else list(value or [])
            out["tags"] = list(dict.fromkeys([*out.get("tags", []), *tags]))
        elif key == "meta" and isinstance(value, dict):
            out["meta"] = {**out.get("meta", {}), **value}
        else:
            out[key] = value
    return out


def tree_config(tree: Any, project: str, parts: list[str]) -> dict[str, Any]:
    """The config a dbt_project.yml tree gives a file under `parts` (folders then file stem)."""
    out: dict[str, Any] = {}
    if not isinstance(tree, dict):
        return out
    node: Any = tree.get(project, tree)  # configs under the project name, or directly at the top
    out = merge(out, _own(node, set(parts)))
    for part in parts:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            break
        node = node[part]
        out = merge(out, _own(node, set(parts)))
    return out


def _own(node: Any, children: set[str]) -> dict[str, Any]:
    """The configs at one level of the tree: `+key`s, and plain keys that are no sub-folder."""
    if not isinstance(node, dict):
        return {}
    return {
        k: v for k, v in node.items()
        if k.startswith("+") or (k not in children and not isinstance(v, dict)) or (k in DICT_CONFIGS and k not in children)
    }


DICT_CONFIGS = {"meta", "docs", "persist_docs", "column_types", "grants", "contract", "partition_by", "quoting"}

"""Load a workspace's pipelines: `pipelines/<layer>/*.sql` (+ `.yaml`), `*.py` with `@pipeline`, `macros/`.

`pipelines/silver/sales.sql` builds `silver.sales`; its `-- @name:` names the pipeline. Every
problem is a PipelineError naming the file and line.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.model import ColumnSpec, Freshness, Model, TestSpec
from ratatouille_nb.pipeline.project import PermissiveVars, Project
from ratatouille_nb.pipeline.templating import RenderContext, Templates
from ratatouille_nb.yamlfile import line_for, load_yaml_with_lines

HEADER_RE = re.compile(r"^\s*--\s*@([A-Za-z_]+)\s*:\s*(.*?)\s*$")
IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
HEADER_KEYS = {"name", "materialized", "unique_key", "partition_by", "owner", "strategy", "incremental_strategy", "tags", "description", "schedule",
               "write_mode"}
YAML_KEYS = {"description", "owner", "columns", "freshness", "tests", "tags", "materialized", "unique_key", "partition_by", "strategy", "schedule", "config",
             "write_mode"}
COLUMN_TESTS = {"not_null", "unique", "positive", "accepted_values", "relationships", "expression"}


def parse_header(path: Path, text: str) -> tuple[dict[str, tuple[str, int]], int]:
    """`-- @key: value` lines at the top of a SQL file -> {key: (value, line)}."""
    out: dict[str, tuple[str, int]] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            return out, number
        match = HEADER_RE.match(line)
        if match:
            key = match.group(1).lower()
            if key not in HEADER_KEYS:
                raise PipelineError(
                    f"unknown header '@{key}'", path=path, line=number, hint=f"known: {', '.join(sorted(HEADER_KEYS))}"
                )
            out[key] = (match.group(2), number)
    return out, len(lines) + 1


def _test_spec(item: Any, column: str | None, loc: tuple, lines: dict, path: Path) -> TestSpec:
    line = line_for(loc, lines)
    if isinstance(item, str):
        name, args = item, dict[str, Any]()
    elif isinstance(item, dict) and len(item) == 1:
        name, raw = next(iter(item.items()))
        args = raw if isinstance(raw, dict) else {"values": raw} if name == "accepted_values" else {"expression": raw} if name == "expression" else {}
    else:
        raise PipelineError("a column test is a name or a one-key mapping", path=path, line=line)
    if name not in COLUMN_TESTS:
        raise PipelineError(f"unknown test '{name}'", path=path, line=line, hint=f"known: {', '.join(sorted(COLUMN_TESTS))}")
    args = dict(args)
    severity = args.pop("severity", "error")
    if severity not in ("warn", "error"):
        raise PipelineError(f"severity must be 'warn' or 'error', not '{severity}'", path=path, line=line)
    if name == "accepted_values" and not isinstance(args.get("values"), list):
        raise PipelineError("accepted_values needs a list of values", path=path, line=line)
    if name == "relationships" and not (args.get("to") and args.get("field")):
        raise PipelineError("relationships needs 'to' (a table or ref) and 'field'", path=path, line=line)
    if name == "expression" and not isinstance(args.get("expression"), str):
        raise PipelineError("expression needs a SQL condition", path=path, line=line)
    return TestSpec(name=f"{name}({column})" if column else name, column=column, kind=name, args=args, severity=severity, line=line)


def parse_yaml(path: Path) -> dict[str, Any]:
    """The YAML beside a model, turned into Model fields."""
    data, lines = load_yaml_with_lines(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PipelineError("must be a mapping", path=path, line=1)
    for key in data:
        if key not in YAML_KEYS:
            raise PipelineError(f"unknown key '{key}'", path=path, line=line_for((key,), lines), hint=f"known: {', '.join(sorted(YAML_KEYS))}")
    fields: dict[str, Any] = {}
    config = dict(data.get("config") or {})
    for key in ("materialized", "unique_key", "partition_by", "strategy", "schedule", "tags", "owner", "description", "write_mode"):
        if key in data:
            fields[key] = data[key]
        elif key in config:
            fields[key] = config[key]
    columns = []
    for i, col in enumerate(data.get("columns") or []):
        if not isinstance(col, dict) or "name" not in col:
            raise PipelineError("each column needs a 'name'", path=path, line=line_for(("columns", i), lines))
        tests = [_test_spec(t, col["name"], ("columns", i, "tests", j), lines, path) for j, t in enumerate(col.get("tests") or [])]
        extra = set(col) - {"name", "type", "description", "tests"}
        if extra:
            raise PipelineError(f"unknown column key(s) {', '.join(sorted(extra))}", path=path, line=line_for(("columns", i), lines))
        columns.append(ColumnSpec(name=col["name"], type=col.get("type"), description=col.get("description"), tests=tests))
    fields["columns"] = columns
    tests = []
    for i, item in enumerate(data.get("tests") or []):
        line = line_for(("tests", i), lines)
        if not isinstance(item, dict) or "sql" not in item:
            raise PipelineError("a custom test needs 'sql' (and optionally name, expect, severity)", path=path, line=line)
        severity = item.get("severity", "error")
        if severity not in ("warn", "error"):
            raise PipelineError(f"severity must be 'warn' or 'error', not '{severity}'", path=path, line=line)
        tests.append(
            TestSpec(name=str(item.get("name") or f"test_{i}"), kind="sql", sql=str(item["sql"]), expect=item.get("expect", 0), severity=severity, line=line)
        )
    fields["tests"] = tests
    fresh = data.get("freshness")
    if fresh:
        def hours(key: str) -> float | None:
            value = fresh.get(key)
            if value is None:
                return None
            if isinstance(value, dict):
                return float(value.get("hours", 0)) + float(value.get("minutes", 0)) / 60 + float(value.get("days", 0)) * 24
            return float(value)

        fields["freshness"] = Freshness(warn_after_hours=hours("warn_after"), error_after_hours=hours("error_after"), column=fresh.get("column"))
    return fields


def _sql_model(path: Path, layer: str, templates: Templates) -> Model:
    text = path.read_text()
    header, _body_line = parse_header(path, text)
    stem = path.stem
    if not IDENT_RE.match(stem):
        raise PipelineError(f"file name '{path.name}' must be a lowercase identifier (it names the table {layer}.{stem})", path=path)
    fields: dict[str, Any] = {}
    yaml_path = path.with_suffix(".yaml")
    if not yaml_path.exists():
        yaml_path = path.with_suffix(".yml")
    if yaml_path.exists():
        fields.update(parse_yaml(yaml_path))
    for key, (value, _line) in header.items():
        fields["strategy" if key == "incremental_strategy" else key] = value
    name = fields.pop("name", None) or f"{layer}_{stem}"
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][\w]*$", name):
        raise PipelineError(f"invalid pipeline name '{name}'", path=path, line=header.get("name", ("", None))[1])
    try:
        model = Model(
            name=name,
            target=f"{layer}.{stem}",
            layer=layer,
            kind="sql",
            path=path,
            sql=text,
            yaml_path=yaml_path if yaml_path.exists() else None,
            **fields,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = str(err["loc"][0]) if err["loc"] else ""
        line = header.get(field_name, ("", None))[1]
        raise PipelineError(f"{field_name}: {err['msg']}", path=path if line else (yaml_path if yaml_path.exists() else path), line=line) from None
    if model.materialized == "incremental" and model.strategy == "merge" and not model.unique_key:
        raise PipelineError(
            "incremental merge needs @unique_key (or use @incremental_strategy: append)", path=path, line=header.get("materialized", ("", None))[1]
        )
    refs = _discover_refs(model, templates)
    return model.model_copy(update={"refs": refs})


def _discover_refs(model: Model, templates: Templates) -> list[str]:
    """Render in both incremental modes with recording stubs to learn every ref()."""
    found: list[str] = []
    for incremental in (False, True):
        ctx = RenderContext(
            model_name=model.name,
            this=model.target,
            resolve_ref=lambda key: key,
            resolve_source=lambda key: "(SELECT 1)",
            incremental=incremental,
            watermark=lambda col: "1970-01-01",
            variables=PermissiveVars(),
        )
        templates.render(model.path, model.sql or "", ctx)
        found += ctx.refs
    return list(dict.fromkeys(found))


def _python_models(path: Path, layer: str, namespace: dict[str, Any]) -> list[Model]:
    module_name = f"rat_pipelines.{layer}.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineError("cannot import", path=path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(namespace)
    try:
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise PipelineError(f"syntax error: {exc.msg}", path=path, line=exc.lineno) from None
    except Exception as exc:  # noqa: BLE001 - user module code may raise anything
        from ratatouille_nb.pipeline.pyerrors import user_code_error

        raise user_code_error(exc, path)  # noqa: B904 - it chains `exc`, trimmed to the user's frames
    finally:
        sys.modules.pop(module_name, None)
    models = []
    for attr in vars(module).values():
        spec_ = getattr(attr, "__rat_pipeline__", None)
        if spec_ is None:
            continue
        model_layer = spec_.layer or layer
        name = spec_.name or f"{model_layer}_{attr.__name__}"
        table = name[len(model_layer) + 1 :] if name.startswith(model_layer + "_") else name
        models.append(
            Model(
                name=name,
                target=f"{model_layer}.{table}",
                layer=model_layer,
                kind="python",
                path=path,
                function=attr,
                materialized="incremental",
                strategy="append",
                schedule=spec_.schedule,
                tags=spec_.tags,
                description=spec_.description,
                refs=list(spec_.depends_on),
                outputs=list(spec_.outputs),
            )
        )
    return models


def model_line(model: Model) -> int:
    """Where a model is declared: its `@pipeline` function, else its `-- @name:` header, else line 1."""
    if model.function is not None:
        code = getattr(model.function, "__code__", None)
        return code.co_firstlineno if code is not None else 1
    for number, line in enumerate((model.sql or "").splitlines(), start=1):
        match = HEADER_RE.match(line)
        if match and match.group(1).lower() == "name":
            return number
    return 1


def ref_line(model: Model, key: str) -> int:
    """The line of a model's `ref('key')` (or of its declaration when the ref is not in SQL text)."""
    for number, line in enumerate((model.sql or "").splitlines(), start=1):
        if f"'{key}'" in line or f'"{key}"' in line:
            return number
    return model_line(model)


def load_project(workspace_root: Path, *, namespace: dict[str, Any] | None = None) -> Project:
    """Every model under `pipelines/`, with macros loaded and names checked for clashes.

    `namespace` is what Python pipeline modules get as globals: by default `rat`, the in-run
    helpers of pipeline/runtime.py (the seed's examples use `rat` without importing it).
    A folder with dbt_project.yml is loaded as a dbt project (pipeline/dbt/project.py).
    """
    if (workspace_root / "dbt_project.yml").is_file():
        from ratatouille_nb.pipeline.dbt.project import load_dbt_project

        return load_dbt_project(workspace_root)
    if namespace is None:
        from ratatouille_nb.pipeline.runtime import rat

        namespace = {"rat": rat}
    root = workspace_root / "pipelines"
    templates = Templates(workspace_root / "macros")
    project = Project(root=workspace_root, templates=templates)
    if not root.is_dir():
        return project
    owners: dict[str, Model] = {}
    for layer_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        layer = layer_dir.name
        if not IDENT_RE.match(layer):
            raise PipelineError(f"layer folder '{layer}' must be a lowercase identifier", path=layer_dir)
        for path in sorted(layer_dir.iterdir()):
            if path.suffix == ".sql":
                found = [_sql_model(path, layer, templates)]
            elif path.suffix == ".py" and not path.name.startswith("_"):
                found = _python_models(path, layer, namespace)
            else:
                continue
            for model in found:
                if model.name in project.models:
                    other = project.models[model.name]
                    raise PipelineError(
                        f"pipeline name '{model.name}' is also used by {other.path}:{model_line(other)}", path=path, line=model_line(model)
                    )
                for target in model.produces:
                    if target in owners:
                        other = owners[target]
                        raise PipelineError(
                            f"table {target} is also built by {other.path}:{model_line(other)}", path=path, line=model_line(model)
                        )
                    owners[target] = model
                project.models[model.name] = model
    return project

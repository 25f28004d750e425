"""Load a dbt project folder as Ratatouille models, unchanged.

    dbt_project.yml   name, *-paths, vars, the models:/seeds:/snapshots:/tests: config trees
    models/**.sql     one model each, named by its file stem, any depth
    **/*.yml          properties (version: 2): models, sources, seeds, snapshots — many per file
    seeds/**.csv      seeds (pipeline/materializations/seed.py)
    snapshots/**.sql  {% snapshot name %} … {% endsnapshot %} blocks
    tests/**.sql      singular tests; tests/generic/ and macros/ hold {% test %} generic tests
    **/*.md           {% docs name %} … {% enddocs %} blocks, for doc('name')
    packages.yml      dbt_utils is shipped (ratatouille_nb/dbt_packages/dbt_utils); others load from dbt_packages/

A model lives in table `<layer>.<name>`: the layer is its `layer` config (Ratatouille's), else
dbt's `schema` config, else the first folder under the model path (`models/staging/x.sql` ->
`staging.x`), else `main` (dbt-duckdb's default schema); seeds default to layer `seeds`,
snapshots to `snapshots` (or their `target_schema`). `alias` renames the table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ratatouille_nb.errors import ConfigError
from ratatouille_nb.pipeline.dbt.config import check_keys, check_tree, check_values, merge, tree_config
from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.pipeline.model import ColumnSpec, Freshness, Model, TestSpec
from ratatouille_nb.pipeline.project import PermissiveVars, Project, SourceTable
from ratatouille_nb.pipeline.templating import RenderContext, Templates
from ratatouille_nb.yamlfile import Loc, line_for, load_yaml_with_lines

SHIPPED_PACKAGES = Path(__file__).resolve().parents[2] / "dbt_packages"
LAYER_CLEAN_RE = re.compile(r"[^a-z0-9_]+")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SNAPSHOT_RE = re.compile(r"\{%-?\s*snapshot\s+([A-Za-z_]\w*)\s*-?%\}(.*?)\{%-?\s*endsnapshot\s*-?%\}", re.S)
DOCS_RE = re.compile(r"\{%-?\s*docs\s+([A-Za-z_]\w*)\s*-?%\}(.*?)\{%-?\s*enddocs\s*-?%\}", re.S)
PROJECT_KEYS = {
    "name", "version", "config-version", "profile", "model-paths", "source-paths", "seed-paths", "data-paths", "test-paths",
    "analysis-paths", "macro-paths", "snapshot-paths", "docs-paths", "asset-paths", "target-path", "clean-targets", "log-path",
    "packages-install-path", "require-dbt-version", "models", "seeds", "snapshots", "tests", "data_tests", "sources", "vars",
    "quoting", "query-comment", "dispatch", "flags",
}
PROJECT_UNSUPPORTED = {
    "on-run-start": "run hooks execute SQL outside the run's transaction: put the statement in a model",
    "on-run-end": "run hooks execute SQL outside the run's transaction: put the statement in a model",
}
PROPERTY_KEYS = {"version", "models", "sources", "seeds", "snapshots", "macros", "exposures", "metrics", "semantic_models",
                 "saved_queries", "groups", "unit_tests", "analyses", "data_tests"}
PROPERTY_IGNORED = {
    "macros": "macro properties are documentation only",
    "exposures": "exposures are not modelled (products are Ratatouille's published interface)",
    "metrics": "the semantic layer is not supported",
    "semantic_models": "the semantic layer is not supported",
    "saved_queries": "the semantic layer is not supported",
    "groups": "groups are not modelled",
    "analyses": "analyses are not compiled",
}
TEST_CONFIG_KEYS = {"severity", "where", "error_if", "warn_if", "store_failures", "limit", "fail_calc", "tags", "enabled", "meta",
                    "alias", "schema", "database", "name", "config", "column_name", "description"}
RESOURCE_PROPERTY_KEYS = {"name", "description", "config", "columns", "tests", "data_tests", "docs", "meta", "freshness", "tags"}
RESOURCE_PROPERTY_NO_EFFECT = {
    "access": "model access is not modelled", "group": "groups are not modelled", "constraints": "constraints are not enforced",
    "deprecation_date": "deprecations are not modelled", "latest_version": "ref('x') resolves to x.sql; use ref('x', v=N) for x_vN.sql",
    "versions": "ref('x') resolves to x.sql; use ref('x', v=N) for x_vN.sql", "quote_columns": "seed columns are read as the CSV names them",
    "column_types": "set column_types under config:",
}
NATIVE_TESTS = {"not_null", "unique", "accepted_values", "relationships", "positive", "expression"}


def _paths(cfg: dict[str, Any], key: str, default: str, legacy: str | None = None) -> list[str]:
    value = cfg.get(key, cfg.get(legacy) if legacy else None) or [default]
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _flat_vars(raw: Any, project: str) -> dict[str, Any]:
    """dbt's `vars:` with project-scoped blocks (`vars: {my_project: {x: 1}}`) flattened."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {key: value for key, value in raw.items() if key != project}
    if isinstance(raw.get(project), dict):
        out.update(raw[project])
    return out


def _layer_of(raw: Any) -> str:
    layer = LAYER_CLEAN_RE.sub("_", str(raw).lower()).strip("_")
    return layer if layer and layer[0].isalpha() else f"l_{layer or 'main'}"


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        path = root / "dbt_project.yml"
        data, self.lines = load_yaml_with_lines(path)
        if not isinstance(data, dict) or not data.get("name"):
            raise ConfigError(f"{path}:1: dbt_project.yml must be a mapping with a 'name'")
        self.path = path
        self.cfg: dict[str, Any] = data
        self.name = str(data["name"])
        self.warnings: list[str] = []
        for key in data:
            if key in PROJECT_UNSUPPORTED:
                raise PipelineError(f"'{key}' is not supported: {PROJECT_UNSUPPORTED[key]}", path=path, line=self._line((key,)))
            if key not in PROJECT_KEYS:
                self.warnings.append(f"{path}:{self._line((key,))}: unknown dbt_project.yml key '{key}' (ignored)")
        self.model_paths = _paths(data, "model-paths", "models", "source-paths")
        self.seed_paths = _paths(data, "seed-paths", "seeds", "data-paths")
        self.test_paths = _paths(data, "test-paths", "tests")
        self.macro_paths = _paths(data, "macro-paths", "macros")
        self.snapshot_paths = _paths(data, "snapshot-paths", "snapshots")
        self.docs_paths = data.get("docs-paths") or [*self.model_paths, *self.seed_paths, *self.snapshot_paths, *self.macro_paths]
        self.variables = _flat_vars(data.get("vars"), self.name)
        for kind in ("models", "seeds", "snapshots", "tests", "data_tests"):
            check_tree(data.get(kind), self.name, path, self.lines, (kind,), self.warnings)
        self.properties: dict[str, dict[str, tuple[dict[str, Any], Path, dict[Loc, int], Loc]]] = {
            "models": {}, "seeds": {}, "snapshots": {},
        }
        self.project = Project(root=root, variables=self.variables, is_dbt=True, warnings=self.warnings)
        self.project.packages = {self.name}

    def _line(self, loc: Loc) -> int | None:
        return line_for(loc, self.lines)

    # -- files --------------------------------------------------------------------------------

    def _files(self, folders: list[str], suffixes: tuple[str, ...]) -> list[tuple[Path, Path]]:
        out = []
        for folder in folders:
            base = self.root / folder
            if base.is_dir():
                out += [(base, p) for p in sorted(base.rglob("*")) if p.is_file() and p.suffix.lower() in suffixes]
        return out

    def load(self) -> Project:
        from ratatouille_nb.pipeline.dbt.context import dbt_globals
        from ratatouille_nb.pipeline.dbt.packages import package_macro_paths

        docs = self._docs()
        self.project.docs = docs
        packages = package_macro_paths(self.root, self.cfg, self.warnings)
        self.project.packages |= set(packages)
        extra = dbt_globals(self.name, docs)
        generic = [self.root / t / "generic" for t in self.test_paths]
        templates = Templates(macro_paths=[*(self.root / m for m in self.macro_paths), *generic], packages=packages, extra_globals=extra)
        extra["adapter"].attach(templates.env.globals)
        self.project.templates = templates
        self._properties()
        self._sources()
        for base, path in self._files(self.model_paths, (".sql", ".py")):
            if path.suffix == ".py":
                raise PipelineError("dbt Python models are not supported", path=path,
                                    hint="write it as a Ratatouille @pipeline model in a native workspace, or as SQL")
            self._add(self._model(base, path, "model"))
        for base, path in self._files(self.seed_paths, (".csv", ".tsv")):
            self._add(self._seed(base, path))
        for base, path in self._files(self.snapshot_paths, (".sql",)):
            for model in self._snapshots(base, path):
                self._add(model)
        self._singular_tests()
        self._unused_properties()
        for model in self.project.models.values():
            if model.materialized == "ephemeral" and model.all_tests():
                self.warnings.append(
                    f"{model.yaml_path or model.path}: the {len(model.all_tests())} test(s) of ephemeral model {model.name} are not run "
                    "(it has no table): test a model that refs it, or materialize it as a view"
                )
        return self.project

    def _add(self, model: Model | None) -> None:
        if model is None:
            return
        from ratatouille_nb.pipeline.materializations import materialization

        for other in self.project.models.values():
            if other.name == model.name:
                raise PipelineError(f"dbt resource name '{model.name}' is also used by {other.path}", path=model.path)
            if other.target == model.target:
                raise PipelineError(f"table {model.target} is also built by {other.path}", path=model.path, hint="set an alias or a schema")
        problem = materialization(model.materialized).validate(model)
        if problem:
            raise PipelineError(problem, path=model.path)
        self.project.models[model.name] = model

    # -- docs and properties ------------------------------------------------------------------

    def _docs(self) -> dict[str, str]:
        docs: dict[str, str] = {}
        for _base, path in self._files(list(dict.fromkeys(self.docs_paths)), (".md",)):
            for match in DOCS_RE.finditer(path.read_text()):
                docs[match.group(1)] = match.group(2).strip()
        return docs

    def _properties(self) -> None:
        folders = list(dict.fromkeys([*self.model_paths, *self.seed_paths, *self.snapshot_paths, *self.test_paths]))
        for _base, path in self._files(folders, (".yml", ".yaml")):
            data, lines = load_yaml_with_lines(path)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise PipelineError("a properties file must be a mapping (version: 2, models: …)", path=path, line=1)
            for key in data:
                line = line_for((key,), lines)
                if key not in PROPERTY_KEYS:
                    self.warnings.append(f"{path}:{line}: unknown properties key '{key}' (ignored)")
                elif key in PROPERTY_IGNORED:
                    self.warnings.append(f"{path}:{line}: '{key}' ignored: {PROPERTY_IGNORED[key]}")
                elif key in ("unit_tests", "data_tests"):
                    raise PipelineError(f"top-level '{key}' is not supported: declare data tests under a model's tests:", path=path, line=line)
            for kind in ("models", "seeds", "snapshots"):
                for i, item in enumerate(data.get(kind) or []):
                    if not isinstance(item, dict) or "name" not in item:
                        raise PipelineError(f"each entry of {kind} needs a 'name'", path=path, line=line_for((kind, i), lines))
                    if kind == "snapshots" and "relation" in item:
                        raise PipelineError("snapshots defined in YAML (relation:) are not supported: write a {% snapshot %} block",
                                            path=path, line=line_for((kind, i, "relation"), lines))
                    for key in item:
                        where = f"{path}:{line_for((kind, i, key), lines)}"
                        if key in RESOURCE_PROPERTY_NO_EFFECT:
                            self.warnings.append(f"{where}: '{key}' has no effect in Ratatouille ({RESOURCE_PROPERTY_NO_EFFECT[key]})")
                        elif key not in RESOURCE_PROPERTY_KEYS:
                            self.warnings.append(f"{where}: unknown {kind[:-1]} property '{key}' (ignored)")
                    self.properties[kind][str(item["name"])] = (item, path, lines, (kind, i))
            self._sources_raw = getattr(self, "_sources_raw", [])
            for i, item in enumerate(data.get("sources") or []):
                self._sources_raw.append((item, path, lines, ("sources", i)))

    def _unused_properties(self) -> None:
        for kind, entries in self.properties.items():
            for name, (_item, path, lines, loc) in entries.items():
                if name not in self.project.models:
                    self.warnings.append(f"{path}:{line_for(loc, lines)}: {kind[:-1]} '{name}' has properties but no file (ignored)")

    def _sources(self) -> None:
        for item, path, lines, loc in getattr(self, "_sources_raw", []):
            if not isinstance(item, dict) or "name" not in item:
                raise PipelineError("each source needs a 'name'", path=path, line=line_for(loc, lines))
            source = str(item["name"])
            schema = str(item.get("schema") or source)
            default_location = item.get("external_location") or (item.get("meta") or {}).get("external_location")
            for j, table in enumerate(item.get("tables") or []):
                if not isinstance(table, dict) or "name" not in table:
                    raise PipelineError("each source table needs a 'name'", path=path, line=line_for((*loc, "tables", j), lines))
                name = str(table["name"])
                identifier = str(table.get("identifier") or name)
                location = (
                    table.get("external_location") or (table.get("meta") or {}).get("external_location") or default_location
                    or (table.get("loader") or item.get("loader") if _is_location(table.get("loader") or item.get("loader")) else None)
                )
                columns = {str(c["name"]): c.get("description") for c in table.get("columns") or [] if isinstance(c, dict) and "name" in c}
                description = self._describe(table.get("description"), path, line_for((*loc, "tables", j), lines))
                if location:
                    text = str(location).format(name=name, identifier=identifier, schema=schema, source=source)
                    relation, files = _reader(self.root, text)
                    found = SourceTable(source, name, relation, False, files, description, columns, path, line_for((*loc, "tables", j), lines))
                else:
                    found = SourceTable(source, name, f"{_layer_of(schema)}.{identifier.lower()}", True, None, description, columns, path,
                                        line_for((*loc, "tables", j), lines))
                self.project.sources[f"{source}.{name}"] = found

    def _describe(self, text: Any, path: Path, line: int | None) -> str | None:
        """A description, with `{{ doc('x') }}` rendered from the project's docs blocks."""
        if text is None:
            return None
        raw = str(text)
        if "{{" not in raw:
            return raw.strip()

        def doc(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in self.project.docs:
                raise PipelineError(f"doc('{key}'): no {{% docs {key} %}} block in the project's .md files", path=path, line=line)
            return self.project.docs[key]

        return re.sub(r"""\{\{\s*doc\(\s*['"](\w+)['"]\s*\)\s*\}\}""", doc, raw).strip()

    # -- resources ----------------------------------------------------------------------------

    def _tree(self, kind: str, parts: list[str]) -> dict[str, Any]:
        return tree_config(self.cfg.get(kind), self.name, parts)

    def _parse_render(self, path: Path, sql: str, name: str, model_config: dict[str, Any]) -> RenderContext:
        """Render once with recording stubs: the config() calls, refs and sources the file makes."""
        assert self.project.templates is not None
        ctx = RenderContext(
            model_name=name,
            this=name,
            resolve_ref=lambda key: key,
            resolve_source=lambda key: self.project.source_relation(key) or "(SELECT 1)",
            variables=PermissiveVars(self.variables),
            model_config=model_config,
            packages=frozenset(self.project.packages),
        )
        self.project.templates.render(path, sql, ctx)
        for key in ctx.sources:
            if self.project.source_relation(key) is None:
                src, _, table = key.partition("/")
                raise PipelineError(f"source('{src}', '{table}') is not declared in any sources .yml", path=path, line=_line_in(sql, table))
        return ctx

    def _model(self, base: Path, path: Path, kind: str, sql: str | None = None, name: str | None = None) -> Model | None:
        text = path.read_text() if sql is None else sql
        name = name or path.stem
        if not NAME_RE.match(name):
            raise PipelineError(f"model name '{name}' must be letters, digits and '_'", path=path)
        rel = path.relative_to(base)
        parts = [*rel.parent.parts, name]
        plural = {"model": "models", "snapshot": "snapshots"}[kind]
        config = self._tree(plural, parts)
        props, ppath, plines, ploc = self.properties[plural].get(name, ({}, None, {}, ()))
        prop_config = dict(props.get("config") or {})
        if ppath is not None:
            check_keys(prop_config, ppath, line_for((*ploc, "config"), plines), self.warnings)
        config = merge(config, prop_config)
        ctx = self._parse_render(path, text, name, config)
        check_keys(ctx.config, path, _line_in(text, "config("), self.warnings)
        config = merge(config, ctx.config)
        check_values(config, path, _line_in(text, "config("), self.warnings)
        if config.get("enabled") is False:
            return None
        default_layer = {"model": rel.parts[0] if len(rel.parts) > 1 else "main", "snapshot": "snapshots"}[kind]
        layer = _layer_of(config.get("layer") or config.get("schema") or config.get("target_schema") or default_layer)
        materialized = "snapshot" if kind == "snapshot" else str(config.get("materialized") or "view")
        fields = self._fields(config, props, ppath, plines, ploc, name)
        try:
            return Model(
                name=name,
                target=f"{layer}.{str(config.get('alias') or name).lower()}",
                layer=layer,
                kind="sql",
                path=path,
                sql=text,
                materialized=materialized,
                refs=list(dict.fromkeys(ctx.refs)),
                sources=list(dict.fromkeys(ctx.sources)),
                config=config,
                package=self.name,
                resource_type=kind,
                yaml_path=ppath,
                **fields,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            raise PipelineError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}", path=path, line=_line_in(text, "config(")) from None

    def _fields(self, config: dict[str, Any], props: dict[str, Any], ppath: Path | None, plines: dict[Loc, int], ploc: Loc, name: str) -> dict[str, Any]:
        partition = config.get("partition_by")
        if isinstance(partition, dict):
            partition = partition.get("field")
        fields: dict[str, Any] = {
            "strategy": config.get("incremental_strategy") or ("merge" if config.get("unique_key") else "append"),
            "unique_key": config.get("unique_key") or [],
            "partition_by": partition or [],
            "tags": config.get("tags") or [],
            "owner": config.get("owner") or (config.get("meta") or {}).get("owner"),
            "schedule": config.get("schedule"),
        }
        if ppath is not None:
            fields["description"] = self._describe(props.get("description") or config.get("description"), ppath, line_for(ploc, plines))
            fields["columns"] = self._columns(props, ppath, plines, ploc, config)
            fields["tests"] = self._tests(list(props.get("tests") or []) + list(props.get("data_tests") or []), None, ppath, plines, (*ploc, "tests"))
            fresh = (props.get("config") or {}).get("freshness") or props.get("freshness")
            if isinstance(fresh, dict):
                fields["freshness"] = _freshness(fresh)
        elif config.get("description"):
            fields["description"] = str(config["description"])
        return fields

    def _columns(self, props: dict[str, Any], path: Path, lines: dict[Loc, int], loc: Loc, config: dict[str, Any]) -> list[ColumnSpec]:
        out = []
        for i, col in enumerate(props.get("columns") or []):
            cloc = (*loc, "columns", i)
            if not isinstance(col, dict) or "name" not in col:
                raise PipelineError("each column needs a 'name'", path=path, line=line_for(cloc, lines))
            items = list(col.get("tests") or []) + list(col.get("data_tests") or [])
            tests = self._tests(items, str(col["name"]), path, lines, (*cloc, "tests"))
            declared = col.get("data_type") if (config.get("contract") or {}).get("enforced") else None
            description = self._describe(col.get("description"), path, line_for(cloc, lines))
            out.append(ColumnSpec(name=str(col["name"]), type=declared, description=description, tests=tests))
        return out

    def _tests(self, items: list[Any], column: str | None, path: Path, lines: dict[Loc, int], loc: Loc) -> list[TestSpec]:
        defaults = merge(tree_config(self.cfg.get("tests"), self.name, []), tree_config(self.cfg.get("data_tests"), self.name, []))
        out = []
        for j, item in enumerate(items):
            line = line_for((*loc, j), lines)
            raw: dict[str, Any]
            if isinstance(item, str):
                kind, raw = item, {}
            elif isinstance(item, dict) and len(item) == 1:
                kind, raw = next(iter(item.items()))
                raw = dict(raw) if isinstance(raw, dict) else ({"values": raw} if kind == "accepted_values" else {})
            elif isinstance(item, dict) and "test_name" in item:
                kind, raw = str(item["test_name"]), {k: v for k, v in item.items() if k != "test_name"}
            else:
                raise PipelineError("a test is a name or a one-key mapping (name: {arguments, config})", path=path, line=line)
            config = merge(defaults, {k: v for k, v in raw.items() if k in TEST_CONFIG_KEYS and k not in ("config", "name", "column_name")})
            config = merge(config, dict(raw.get("config") or {}))
            args = {k: v for k, v in raw.items() if k not in TEST_CONFIG_KEYS}
            args.update(raw.get("arguments") or {})
            args.pop("arguments", None)
            col = str(raw.get("column_name") or column) if (raw.get("column_name") or column) else None
            if config.get("enabled") is False:
                continue
            if kind not in NATIVE_TESTS:
                assert self.project.templates is not None
                package, _, short = kind.rpartition(".")
                known = (f"test_{short}" in getattr(self.project.templates.env.globals.get(package), "macros", {})) if package else (
                    short in self.project.templates.tests
                )
                if not known:
                    raise PipelineError(f"unknown generic test '{kind}'", path=path, line=line,
                                        hint="define it with {% test " + short + "(model, column_name) %} in macros/ or tests/generic/")
                args = {"macro": kind, **args}
                spec_kind = "macro"
            else:
                spec_kind = kind
                if kind == "accepted_values" and not isinstance(args.get("values"), list):
                    raise PipelineError("accepted_values needs a list of values", path=path, line=line)
                if kind == "relationships" and not (args.get("to") and args.get("field")):
                    raise PipelineError("relationships needs 'to' (ref('x') or a table) and 'field'", path=path, line=line)
            severity = str(config.get("severity", "error")).lower()
            if severity not in ("warn", "error"):
                raise PipelineError(f"severity must be 'warn' or 'error', not '{severity}'", path=path, line=line)
            label = str(raw.get("name") or (f"{kind}({col})" if col else kind))
            out.append(TestSpec(
                name=label, column=col, kind=spec_kind, args=args, severity=severity,
                line=line, path=path, where=config.get("where"), error_if=str(config.get("error_if", "!=0")),
                warn_if=str(config.get("warn_if", "!=0")), fail_calc=str(config.get("fail_calc", "count(*)")),
                limit=config.get("limit"), store_failures=bool(config.get("store_failures", False)),
            ))
        return out

    def _seed(self, base: Path, path: Path) -> Model | None:
        name = path.stem
        rel = path.relative_to(base)
        config = self._tree("seeds", [*rel.parent.parts, name])
        props, ppath, plines, ploc = self.properties["seeds"].get(name, ({}, None, {}, ()))
        if ppath is not None:
            check_keys(dict(props.get("config") or {}), ppath, line_for((*ploc, "config"), plines), self.warnings)
        config = merge(config, dict(props.get("config") or {}))
        if config.get("enabled") is False:
            return None
        if path.suffix.lower() == ".tsv" and not config.get("delimiter"):
            config["delimiter"] = "\t"
        layer = _layer_of(config.get("layer") or config.get("schema") or "seeds")
        fields = self._fields(config, props, ppath, plines, ploc, name)
        fields.pop("strategy", None)
        return Model(
            name=name, target=f"{layer}.{str(config.get('alias') or name).lower()}", layer=layer, kind="seed", path=path,
            materialized="seed", config=config, package=self.name, resource_type="seed", yaml_path=ppath,
            column_types={str(k): str(v) for k, v in (config.get("column_types") or {}).items()}, **fields,
        )

    def _snapshots(self, base: Path, path: Path) -> list[Model]:
        text = path.read_text()
        found = []
        for match in SNAPSHOT_RE.finditer(text):
            # Keep the block's line numbers: pad the body with the lines before it.
            body = "\n" * text[: match.start(2)].count("\n") + match.group(2)
            model = self._model(base, path, "snapshot", sql=body, name=match.group(1))
            if model is not None:
                found.append(model)
        if not found and "snapshot" in text:
            raise PipelineError("no {% snapshot name %} … {% endsnapshot %} block", path=path)
        return found

    def _singular_tests(self) -> None:
        for base, path in self._files(self.test_paths, (".sql",)):
            if "generic" in path.relative_to(base).parts:
                continue
            text = path.read_text()
            ctx = self._parse_render(path, text, path.stem, {})
            check_keys(ctx.config, path, _line_in(text, "config("), self.warnings)
            owners = [self.project.get(r) for r in ctx.refs]
            owner = next((m for m in owners if m is not None), None)
            if owner is None:
                self.warnings.append(f"{path}:1: singular test '{path.stem}' refs no model of the project: it is not run")
                continue
            severity = str(ctx.config.get("severity", "error")).lower()
            spec = TestSpec(
                name=path.stem, kind="singular", sql=text, severity=severity if severity in ("warn", "error") else "error",
                line=1, path=path, error_if=str(ctx.config.get("error_if", "!=0")), warn_if=str(ctx.config.get("warn_if", "!=0")),
                store_failures=bool(ctx.config.get("store_failures", False)), refs=list(dict.fromkeys(ctx.refs)),
            )
            self.project.models[owner.name] = owner.model_copy(update={"tests": [*owner.tests, spec]})


def _freshness(fresh: dict[str, Any]) -> Freshness:
    def hours(key: str) -> float | None:
        value = fresh.get(key)
        if not isinstance(value, dict):
            return None
        count = float(value.get("count", 0))
        return count * {"minute": 1 / 60, "hour": 1, "day": 24}.get(str(value.get("period", "hour")), 1)

    return Freshness(warn_after_hours=hours("warn_after"), error_after_hours=hours("error_after"), column=fresh.get("loaded_at_field"))


def _is_location(value: Any) -> bool:
    return isinstance(value, str) and ("/" in value or "(" in value or value.endswith((".csv", ".parquet", ".json")))


def _reader(root: Path, location: str) -> tuple[str, str | None]:
    """An `external_location` as SQL: a reader call as it is, or a path read by its suffix."""
    from ratatouille_nb.pipeline.readers import LANDING_READERS

    text = location.strip()
    if "(" in text:
        return f"(SELECT * FROM {text})", None
    path = text if "://" in text or text.startswith("/") else str((root / text).resolve())
    suffix = Path(text.rstrip("*")).suffix.lower() or Path(text).suffix.lower()
    reader = LANDING_READERS.get(suffix)
    if reader is None:
        raise PipelineError(f"external_location '{location}': cannot read '{suffix or 'no extension'}' files",
                            hint=f"name a file with one of {', '.join(LANDING_READERS)} or a DuckDB reader call")
    return "(SELECT * FROM " + reader.format(files="'" + path.replace("'", "''") + "'") + ")", text


def _line_in(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def load_dbt_project(root: Path) -> Project:
    """The dbt project in `root` as a Ratatouille Project (warnings in `project.warnings`)."""
    return _Loader(root).load()

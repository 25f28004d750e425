"""YAML loading that remembers the line of every key, so validation errors can point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ratatouille_nb.errors import ConfigError

Loc = tuple[str | int, ...]


def _build(node: Any, path: Loc, lines: dict[Loc, int]) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else yaml.constructor.SafeConstructor().construct_object(key_node, deep=True)
            child = (*path, key)
            out[key] = _build(value_node, child, lines)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    # Scalars: the composer already resolved the tag (int, bool, null…); the safe constructor applies it.
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def load_yaml_with_lines(path: Path, text: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML into plain Python data plus a map from key path to 1-based line number."""
    import yaml

    if text is None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: malformed YAML: {problem}") from exc
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _build(node, (), lines), lines


def line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of `loc`, or of its nearest ancestor that exists in the file."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def validation_message(path: Path, exc: Any, lines: dict[Loc, int]) -> str:
    """Render a pydantic ValidationError as 'file:line: field: problem' lines."""
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        line = line_for(loc, lines)
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = f"{path}:{line}" if line else str(path)
        out.append(f"{where}: {field}: {err['msg']}")
    return "\n".join(out)

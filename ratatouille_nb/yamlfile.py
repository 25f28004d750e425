"""YAML loading that remembers the line of every key, so validation errors can point at it.

Every YAML file Ratatouille reads (workspace.yaml, profiles, model YAML) goes through here, and bad
input gets one line naming file:line: text that is not UTF-8, a key given twice, a key that is not a
plain value, and aliases (`*name`, `<<: *name`) — refused outright, because expanding them turns a
few hundred bytes into gigabytes (the "billion laughs" file).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ratatouille_nb.errors import ConfigError

Loc = tuple[str | int, ...]
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


@functools.cache
def _no_alias_loader() -> type:
    """The safe loader, refusing aliases before the composer links any node twice (yaml imported on first use)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise _Refused(event.start_mark.line + 1, f"YAML aliases are not allowed (*{event.anchor})", "write the values out")
            return super().compose_node(parent, index)

    return NoAliasLoader


class _Refused(Exception):
    def __init__(self, line: int, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.line, self.problem, self.hint = line, problem, hint


def _scalar(node: Any) -> Any:
    import yaml

    # Scalars: the composer already resolved the tag (int, bool, null…); the safe constructor applies it.
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _build(node: Any, path: Loc, lines: dict[Loc, int]) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
        raise _Refused(node.start_mark.line + 1, f"the YAML tag {node.tag} is not allowed", "use plain mappings and lists")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(line, "a key must be a plain value, not a list or mapping", "quote it or restructure the mapping")
            key = _scalar(key_node)
            if key in out:
                raise _Refused(line, f"duplicate key '{key}' (first at line {lines[(*path, key)]})", "keep one of them")
            child = (*path, key)
            lines[child] = line
            out[key] = _build(value_node, child, lines)
            lines[child] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def read_text(path: Path) -> str:
    """A text file as UTF-8; anything else is refused naming file:line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})", hint="save the file as UTF-8"
        ) from None


def load_yaml_with_lines(path: Path, text: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML into plain Python data plus a map from key path to 1-based line number."""
    import yaml

    if text is None:
        text = read_text(path)
    lines: dict[Loc, int] = {}
    try:
        node = yaml.compose(text, Loader=_no_alias_loader())
        return (None if node is None else _build(node, (), lines)), lines
    except _Refused as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc.problem}", hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None


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

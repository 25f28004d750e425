"""Macros as dbt calls them: by name from anywhere, `{{ return(x) }}` giving the value, packages
as namespaces (`dbt_utils.star(…)`), and `{% test name(…) %}` blocks as the macro `test_name`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ratatouille_nb.pipeline.literals import Raw

MACRO_DEF_RE = re.compile(r"(\{%-?\s*)(macro|test)(\s+)([A-Za-z_]\w*)")
ENDTEST_RE = re.compile(r"(\{%-?\s*)endtest(\s*-?%\})")
MACRO_PREFIX = "rat_macro__"


class MacroReturn(Exception):
    """dbt's `{{ return(x) }}`: control flow out of a macro, caught by its `MacroCall`."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def macro_return(value: Any = None) -> Any:
    """The `return` global of templates."""
    raise MacroReturn(value)


class MacroCall:
    """A macro as dbt calls it: by name from anywhere, `{{ return(x) }}` giving its value."""

    def __init__(self, macro: Any, name: str, path: Path) -> None:
        self.macro = macro
        self.name = name
        self.path = path

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return Raw(self.macro(*args, **kwargs))
        except MacroReturn as ret:
            return ret.value


class MacroNamespace:
    """`dbt_utils.star(…)`: the macros of one package."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.macros: dict[str, MacroCall] = {}

    def __getattr__(self, name: str) -> MacroCall:
        try:
            return self.macros[name]
        except KeyError:
            raise AttributeError(f"package {self.name} has no macro {name}") from None


def macro_source(text: str) -> str:
    """dbt macro files as Jinja: `{% test x %}` is the macro `test_x`; every macro gets a private
    name so calls between macros of one file go through the global (return-aware) wrappers."""
    text = ENDTEST_RE.sub(r"\1endmacro\2", text)
    return MACRO_DEF_RE.sub(lambda m: f"{m.group(1)}macro{m.group(3)}{MACRO_PREFIX}{'test_' if m.group(2) == 'test' else ''}{m.group(4)}", text)

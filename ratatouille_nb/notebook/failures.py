"""Failures in a notebook: one red `RatError: …` line, no traceback, the cell marked as errored.

Every user error out of a `%rat` magic is raised as a `CellError`. IPython (and ipykernel, which
sends it to JupyterLab as the cell's error output) asks an exception for `_render_traceback_()`
before formatting a traceback: this one answers with the message only, labelled as a
Ratatouille error rather than IPython's UsageError. Because it is raised (not printed), the cell
is marked as failed and "Run All" stops there. `install` does the same for a RatError raised by
Python code in a cell (`rat.sql(…)`), through IPython's custom exception handler.
"""

from __future__ import annotations

import os
from typing import Any

from ratatouille_nb.errors import RatError

RED = "\x1b[0;31m"
BOLD_RED = "\x1b[1;31m"
RESET = "\x1b[0m"


class CellError(RatError):
    """A Ratatouille error raised out of a cell. `remedies` are notebook commands that fix it."""

    label = "RatError"

    def __init__(self, message: str, *, hint: str | None = None, remedies: list[str] | None = None, label: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.remedies = list(remedies or [])
        if label is not None:
            self.label = label

    @classmethod
    def from_error(cls, exc: BaseException) -> CellError:
        """The same message (and hint) as `exc`, a RatError or a mapped library error."""
        if isinstance(exc, CellError):
            return exc
        message = exc.args[0] if isinstance(exc, RatError) and exc.args else str(exc)
        return cls(str(message), hint=getattr(exc, "hint", None))

    def __str__(self) -> str:
        text = super().__str__()
        if self.remedies:
            text += "\n" + "\n".join(f"  {r}" for r in self.remedies)
        return text

    def lines(self) -> list[str]:
        """The plain text shown: `RatError: message`, then the hint and remedies indented."""
        first, *rest = (self.args[0] if self.args else "").splitlines() or [""]
        out = [f"{self.label}: {first}", *(f"  {line}" for line in rest)]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        out.extend(f"  {r}" for r in self.remedies)
        return out

    def _render_traceback_(self) -> list[str]:
        """What IPython / ipykernel show instead of a traceback (ANSI red, like IPython's errors)."""
        first, *rest = self.lines()
        label, _, message = first.partition(": ")
        return [f"{BOLD_RED}{label}:{RESET}{RED} {message}{RESET}", *(f"{RED}{line}{RESET}" for line in rest)]


def remedies_for_build_branch(build_branch: str) -> list[str]:
    """Notebook commands for a build branch that was kept because it failed."""
    return [
        f"look at it:  %rat branch checkout {build_branch}   (then %%rat sql cells read it)",
        f"drop it:     %rat branch delete {build_branch}",
    ]


def _show_rat_error(shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
    """IPython's custom exception handler for RatErrors raised by Python cells (`rat.sql(…)`, the widgets' API)."""
    if os.environ.get("RAT_DEBUG"):
        stb: list[str] = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
    else:
        stb = CellError.from_error(value)._render_traceback_()
    shell._showtraceback(etype, value, stb)
    return stb


def install(shell: Any) -> bool:
    """Show every RatError out of a cell as one red line, as the magics do (set RAT_DEBUG=1 for the traceback).

    Uses IPython's `set_custom_exc`; a shell that already has a custom handler keeps it (False)."""
    if getattr(shell, "custom_exceptions", ()) not in ((), (RatError,)):
        return False
    shell.set_custom_exc((RatError,), _show_rat_error)
    return True

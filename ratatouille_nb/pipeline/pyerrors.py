"""A Python pipeline's exception as one line at the user's file:line, with the user's frames kept for --debug.

The runner (executor.py) and the loader (loader.py, errors at import time) call user code; what
that code raises reaches the user through several layers of ours. `user_code_error` finds the
innermost frame in the user's own files, names it in the message, and trims our frames off the
top of the original traceback, which stays chained as `__cause__` (a `--debug` traceback then
shows the user's frames, starting at their function).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.errors import PipelineError


def _is_user_file(filename: str, user_file: Path, root: Path | None) -> bool:
    if filename == str(user_file):
        return True
    if root is None or filename.startswith("<"):
        return False
    try:
        return Path(filename).resolve().is_relative_to(root.resolve())
    except (OSError, ValueError):
        return False


def user_frames(tb: TracebackType | None, user_file: Path, root: Path | None = None) -> list[TracebackType]:
    """The traceback entries (outermost first) that run the user's code: `user_file`, or any file under `root`."""
    out = []
    while tb is not None:
        if _is_user_file(tb.tb_frame.f_code.co_filename, user_file, root):
            out.append(tb)
        tb = tb.tb_next
    return out


def user_code_error(exc: Exception, user_file: Path, root: Path | None = None) -> RatError:
    """The error to report for `exc`, raised by user code in `user_file` (or another file under `root`).

    A `RatError` (a rat call the user made went wrong) keeps its class and hint and gains the
    user's location; anything else becomes a PipelineError `file:line: Type: message`.
    """
    frames = user_frames(exc.__traceback__, user_file, root)
    if not frames:
        if isinstance(exc, RatError):
            return exc
        return _wrapped(exc, user_file, None)
    innermost = frames[-1]
    where_file, where_line = innermost.tb_frame.f_code.co_filename, innermost.tb_lineno
    exc.with_traceback(frames[0])  # drop the runner's frames above the user's first one
    if isinstance(exc, RatError):
        location = f"{where_file}:{where_line}: "
        message = str(exc.args[0]) if exc.args else ""
        if not message.startswith(location):
            exc.args = (location + message, *exc.args[1:])
        return exc
    return _wrapped(exc, Path(where_file), where_line)


def _wrapped(exc: Exception, path: Path, line: int | None) -> PipelineError:
    text = str(exc)
    err = PipelineError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, path=path, line=line)
    err.__cause__ = exc  # shown by --debug tracebacks; `raise err` keeps it
    return err

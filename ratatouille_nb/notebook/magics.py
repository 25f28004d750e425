"""`%rat` / `%%rat`: thin magics over the verb layer and the kernel's one session (verbs/session.py).

User errors are shown as one red `RatError: …` line (notebook/failures.py), never a traceback;
they are raised, so the cell is marked as errored and Run All stops.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import time
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import HTML, display
from traitlets import Int

from ratatouille_nb.catalog.models import short_hash
from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.errormap import map_error
from ratatouille_nb.errors import RatError
from ratatouille_nb.notebook.failures import CellError
from ratatouille_nb.verbs import branches, products, sql
from ratatouille_nb.verbs import session as sessions


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CellError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise CellError(message.strip())
        raise CellError(self.format_usage().strip())


@functools.lru_cache(maxsize=1)
def _parser() -> _Parser:
    root = _Parser(prog="%rat", add_help=False)
    sub = root.add_subparsers(dest="verb")
    sql = sub.add_parser("sql", prog="%%rat sql", add_help=False)
    sql.add_argument("-o", "--output", dest="output")
    sql.add_argument("--branch", "-b")
    sql.add_argument("--save")
    fmt = sql.add_mutually_exclusive_group()
    fmt.add_argument("--polars", action="store_const", const="polars", dest="kind")
    fmt.add_argument("--pandas", action="store_const", const="pandas", dest="kind")
    fmt.add_argument("--arrow", action="store_const", const="arrow", dest="kind")
    sql.add_argument("--limit", type=int)
    sql.add_argument("query", nargs="*")
    br = sub.add_parser("branch", prog="%rat branch", add_help=False)
    br.add_argument("args", nargs="*")
    br.add_argument("--from", dest="from_ref")
    br.add_argument("--into")
    br.add_argument("-n", type=int, default=20)
    pub = sub.add_parser("publish", prog="%rat publish", add_help=False)
    pub.add_argument("source")
    pub.add_argument("name")
    pub.add_argument("version")
    pub.add_argument("--access", action="append", default=[])
    pub.add_argument("--description")
    sub.add_parser("products", prog="%rat products", add_help=False)
    lin = sub.add_parser("lineage", prog="%rat lineage", add_help=False)
    lin.add_argument("model", nargs="?")
    lin.add_argument("--columns", action="store_true")
    for verb in ("run", "test", "build"):
        p = sub.add_parser(verb, prog=f"%rat {verb}", add_help=False)
        p.add_argument("selectors", nargs="*")
        p.add_argument("--full-refresh", action="store_true")
    ws = sub.add_parser("workspace", prog="%rat workspace", add_help=False)
    ws.add_argument("name", nargs="?")
    pr = sub.add_parser("promote", prog="%rat promote", add_help=False)
    pr.add_argument("--into")
    pr.add_argument("--force", action="store_true")
    pr.add_argument("--dry-run", action="store_true")
    pr.add_argument("--skip", type=int, action="append", default=[])
    tb = sub.add_parser("tables", prog="%rat tables", add_help=False)
    tb.add_argument("--branch", "-b")
    return root


HELP = """%rat verbs:
  %%rat sql [-o VAR] [--branch REF] [--save layer.table] [--polars|--pandas|--arrow] [--limit N]
  %rat branch | branch checkout NAME | branch create NAME [--from REF] | branch merge SOURCE [--into T]
  %rat branch diff A B | branch log | branch delete NAME
  %rat publish SOURCE NAME VERSION [--access WS:LEVEL …]
  %rat products | lineage [MODEL] | run|test|build [SELECTOR…] | workspace [NAME] | promote [--into DIR] [--skip CELL]
  %rat tables [--branch REF]"""


@magics_class
class RatMagics(Magics):
    """The `%rat` line magic and `%%rat` cell magic."""

    displaylimit = Int(10, help="Rows shown in a result table.").tag(config=True)
    autolimit = Int(100_000, help="Rows fetched into Python when no --limit is given (0 = all).").tag(config=True)

    @property
    def _user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    @line_cell_magic
    def rat(self, line: str = "", cell: str | None = None) -> Any:
        try:
            args = _parser().parse_args(shlex.split(line))
        except ValueError as exc:
            raise CellError(str(exc)) from None
        if args.verb is None:
            print(HELP)
            return None
        try:
            handler = getattr(self, f"_{args.verb}")
            return handler(args, cell)
        except RatError as exc:
            raise CellError.from_error(exc) from None
        except Exception as exc:  # a library error errormap.py knows is one message too; a bug keeps its traceback
            mapped = map_error(exc)
            if mapped is None:
                raise
            raise CellError.from_error(mapped) from None

    # -- SQL ----------------------------------------------------------------------------------

    def _ref(self, name: str) -> str:
        return sql.resolve_name(sessions.current(), name)

    def _sql(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
        from ratatouille_nb.notebook.binding import render_cell
        from ratatouille_nb.notebook.display import MORE_ROWS, ResultInfo

        source = cell if cell is not None else " ".join(args.query)
        if not source.strip():
            raise CellError("%%rat sql needs a query (in the cell, or after `%rat sql` on the line)")
        session = sessions.current()
        text = render_cell(source, self._user_ns, self._ref)
        started = time.perf_counter()
        reset_peak()
        if args.save:
            text = f"CREATE OR REPLACE TABLE {args.save} AS {text.strip().rstrip(';')}"
        result = sql.sql(session, text, ref=args.branch, jinja=False)
        kind = args.kind or "pandas"
        if not result.is_query:
            info = ResultInfo([], [], None, self.displaylimit, time.perf_counter() - started, result.ref, peak_rss_mb(),
                              writes=result.writes, commit=result.commit.hash if result.commit else None)
            display(_Rich(info))
            return None
        limit = args.limit if args.limit is not None else (self.autolimit or None)
        relation = result.relation.limit(limit + 1) if limit else result.relation
        table = relation.to_arrow_table()
        truncated = None
        if limit and table.num_rows > limit:
            table = table.slice(0, limit)
            truncated = limit
        total = table.num_rows if truncated is None else None
        if truncated is not None:
            total = scalar(result.relation.aggregate("count(*)"))
        value: Any = {"arrow": lambda: table, "polars": lambda: __import__("polars").from_arrow(table), "pandas": table.to_pandas}[kind]()
        preview = table.slice(0, self.displaylimit + MORE_ROWS).to_pylist()
        info = ResultInfo(
            columns=result.columns,
            rows=[tuple(r.values()) for r in preview],
            total_rows=total,
            shown_limit=self.displaylimit,
            elapsed=time.perf_counter() - started,
            branch=result.ref,
            peak_mb=peak_rss_mb(),
            truncated_at=truncated,
        )
        if args.output:
            self._user_ns[args.output] = value
        if kind == "pandas":
            return _frame_with_info(value, info)
        display(_Rich(info))
        return value

    # -- branches -----------------------------------------------------------------------------

    def _branch(self, args: argparse.Namespace, cell: str | None) -> Any:
        session = sessions.current()
        words = list(args.args)
        if not words:
            from ratatouille_nb.notebook.widgets.branches import BranchPicker

            return BranchPicker()
        verb, rest = words[0], words[1:]
        if verb == "create":
            name = _one(rest, "%rat branch create NAME")
            ref = branches.create(session, name, from_ref=args.from_ref, checkout_=True)
            print(f"created branch '{name}' at {short_hash(ref.hash)} and switched to it")
        elif verb == "merge":
            source = _one(rest, "%rat branch merge SOURCE")
            result = branches.merge(session, source, into=args.into)
            print(f"merged '{source}' into '{result.target}' ({result.kind})" + (f": {', '.join(result.tables)}" if result.tables else ""))
        elif verb == "diff":
            if len(rest) != 2:
                raise CellError("usage: %rat branch diff FROM TO")
            from ratatouille_nb.notebook.widgets.branches import diff_html

            display(HTML(diff_html(branches.diff(session, rest[0], rest[1], rows=True, sample=3), samples=True)))
        elif verb == "log":
            for c in branches.log(session, rest[0] if rest else None, limit=args.n):
                print(f"{c.short}  {c.when:%Y-%m-%d %H:%M:%S}  {c.message[:90]}")
        elif verb == "delete":
            name = _one(rest, "%rat branch delete NAME")
            branches.delete(session, name)
            print(f"deleted branch '{name}'")
        elif verb in ("checkout", "switch"):
            name = _one(rest, f"%rat branch {verb} NAME")
            branches.checkout(session, name)
            print(f"on branch '{name}'")
        elif len(words) == 1:
            branches.checkout(session, verb)
            print(f"on branch '{verb}'")
        else:
            raise CellError("usage: %rat branch [NAME | checkout NAME | create NAME | merge SOURCE | diff A B | log | delete NAME]")
        return None

    def _publish(self, args: argparse.Namespace, cell: str | None) -> Any:
        release = products.publish(sessions.current(), args.source, args.name, args.version, access=args.access, description=args.description)
        print(f"published {release.name} {release.version} from {release.source_table}")
        return None

    def _products(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.notebook.widgets.products import ProductBrowser

        return ProductBrowser(shell=self.shell)

    def _lineage(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.notebook.widgets.lineage import LineageGraphWidget

        return LineageGraphWidget.for_session(sessions.current(), model=args.model, columns=args.columns)

    def _pipeline(self, verb: str, args: argparse.Namespace) -> Any:
        # The live display is the output; the record is in `rat.last_run` (and the run history).
        from ratatouille_nb.api import rat
        from ratatouille_nb.notebook.widgets.progress import PipelineFailed, run_with_progress

        try:
            rat.last_run = run_with_progress(sessions.current(), verb, args.selectors, full_refresh=getattr(args, "full_refresh", False))
        except PipelineFailed as exc:  # the cell is marked as errored (Run All stops); the record is kept
            rat.last_run = exc.result
            raise
        return None

    def _run(self, args: argparse.Namespace, cell: str | None) -> Any:
        return self._pipeline("run", args)

    def _test(self, args: argparse.Namespace, cell: str | None) -> Any:
        return self._pipeline("test", args)

    def _build(self, args: argparse.Namespace, cell: str | None) -> Any:
        return self._pipeline("build", args)

    def _workspace(self, args: argparse.Namespace, cell: str | None) -> Any:
        if args.name:
            sessions.switch_workspace(args.name)
        s = sessions.current()
        print(f"workspace '{s.workspace.name}' ({s.workspace.root}) · branch {s.branch} · profile {s.resources.name}")
        return None

    def _promote(self, args: argparse.Namespace, cell: str | None) -> Any:
        from pathlib import Path

        from ratatouille_nb.verbs import promote

        notebook = self._notebook_path()
        session = sessions.current()
        result = promote.promote(
            session, notebook, into=Path(args.into) if args.into else None, force=args.force, dry_run=args.dry_run, skip=args.skip
        )
        for f in result.files:
            print(f"{'would write' if args.dry_run else f.status:>11}  {f.path.relative_to(session.workspace.root)}  (cell {f.cell})")
        for skip in result.skipped:
            print(f"{'FAILS' if skip.failed else 'skipped':>11}  cell {skip.index}: {skip.reason}")
        for warning in result.warnings:
            print(f"warning: {warning}")
        return None

    def _tables(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.notebook.tables_view import TablesView
        from ratatouille_nb.verbs.tables import list_tables

        return TablesView(list_tables(sessions.current(), args.branch))

    def _notebook_path(self) -> Any:
        """The running notebook's file: JupyterLab sets __session__ (ipykernel 6+) or JPY_SESSION_NAME."""
        import os
        from pathlib import Path

        for candidate in (self._user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME"), self._user_ns.get("__vsc_ipynb_file__")):
            if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
                return Path(candidate)
        raise CellError("cannot tell which notebook is running", hint="pass the notebook: `!rat promote NOTEBOOK.ipynb`")


def _one(words: list[str], usage: str) -> str:
    if len(words) != 1:
        raise CellError(f"usage: {usage}")
    return words[0]


class _Rich:
    """Displays a ResultInfo as HTML in Jupyter and as text in a terminal."""

    def __init__(self, info: Any) -> None:
        self.info = info

    def _repr_html_(self) -> str:
        return self.info.to_html()

    def __repr__(self) -> str:
        return self.info.to_text()


def _frame_with_info(frame: Any, info: Any) -> Any:
    """The pandas result, as a DataFrame subclass whose display is the rich result table."""
    from ratatouille_nb.notebook.frame import RatFrame

    out = RatFrame(frame)
    out.attrs["rat_info"] = info
    return out


def verbs() -> list[str]:
    """The `%rat` verbs (what Tab offers after `%rat `)."""
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []


def load(ipython: Any) -> None:
    from ratatouille_nb.notebook import completion, failures

    completion.install(ipython, verbs=verbs)  # Tab in %%rat sql cells and %rat lines
    failures.install(ipython)  # a RatError from Python code in a cell: one red line too
    ipython.register_magics(RatMagics)
    from ratatouille_nb.notebook import link

    link.register(ipython)  # the `ratatouille.link` comm: the status bar follows the branch at once

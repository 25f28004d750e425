"""`%rat` / `%%rat`: thin magics over the shared session (the JupySQL/SQLMesh pattern).

User errors are shown as one message (IPython's UsageError), never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import HTML, display
from traitlets import Int

from ratatouille_nb.engine.rows import scalar
from ratatouille_nb.errors import RatError
from ratatouille_nb.notebook.context import CONTEXT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message)
        raise UsageError(self.format_usage())


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
    return root


HELP = """%rat verbs:
  %%rat sql [-o VAR] [--branch REF] [--save layer.table] [--polars|--pandas|--arrow] [--limit N]
  %rat branch | branch NAME | branch create NAME [--from REF] | branch merge SOURCE [--into T]
  %rat branch diff A B | branch log | branch delete NAME
  %rat publish SOURCE NAME VERSION [--access WS:LEVEL …]
  %rat products | lineage [MODEL] | run|test|build [SELECTOR…] | workspace [NAME] | promote [--into DIR]"""


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
            raise UsageError(str(exc)) from None
        if args.verb is None:
            print(HELP)
            return None
        try:
            handler = getattr(self, f"_{args.verb}")
            return handler(args, cell)
        except RatError as exc:
            raise UsageError(str(exc)) from None

    # -- SQL ----------------------------------------------------------------------------------

    def _ref(self, name: str) -> str:
        from ratatouille_nb.pipeline.loader import load_project

        session = CONTEXT.session
        aliases = session.products.aliases() if "." not in name else {}
        if name in aliases:
            return f"products.{aliases[name]}"
        try:
            model = load_project(session.workspace.root).get(name)
        except RatError:
            model = None
        return model.target if model else name

    def _sql(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.engine.memory import peak_rss_mb, reset_peak
        from ratatouille_nb.notebook.binding import render_cell
        from ratatouille_nb.notebook.display import ResultInfo

        source = cell if cell is not None else " ".join(args.query)
        if not source.strip():
            raise UsageError("%%rat sql needs a query (in the cell, or after `%rat sql` on the line)")
        session = CONTEXT.session
        sql = render_cell(source, self._user_ns, self._ref)
        started = time.perf_counter()
        reset_peak()
        if args.save:
            sql = f"CREATE OR REPLACE TABLE {args.save} AS {sql.strip().rstrip(';')}"
        result = session.sql(sql, ref=args.branch)
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
        preview = table.slice(0, self.displaylimit).to_pylist()
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
        session = CONTEXT.session
        words = list(args.args)
        if not words:
            from ratatouille_nb.notebook.widgets.branches import BranchPicker

            return BranchPicker(CONTEXT)
        verb, rest = words[0], words[1:]
        if verb == "create":
            name = _one(rest, "%rat branch create NAME")
            ref = session.store.create_reference(name, "branch", args.from_ref or session.branch)
            CONTEXT.switch_branch(name)
            print(f"created branch '{name}' at {ref.hash[:12]} and switched to it")
        elif verb == "merge":
            source = _one(rest, "%rat branch merge SOURCE")
            result = session.store.merge(source, args.into or session.workspace.branch)
            print(f"merged '{source}' into '{result.target}' ({result.kind})" + (f": {', '.join(result.tables)}" if result.tables else ""))
            CONTEXT.changed()
        elif verb == "diff":
            if len(rest) != 2:
                raise UsageError("%rat branch diff FROM TO")
            from ratatouille_nb.catalog.diff import diff_refs
            from ratatouille_nb.notebook.widgets.branches import diff_html

            display(HTML(diff_html(diff_refs(session.store, session.warehouse, rest[0], rest[1]))))
        elif verb == "log":
            for c in session.store.log(rest[0] if rest else session.branch, limit=args.n):
                print(f"{c.short}  {c.when:%Y-%m-%d %H:%M:%S}  {c.message[:90]}")
        elif verb == "delete":
            name = _one(rest, "%rat branch delete NAME")
            if name == session.branch:
                raise UsageError(f"cannot delete '{name}': it is the current branch")
            session.store.delete_reference(name)
            print(f"deleted branch '{name}'")
            CONTEXT.changed()
        elif len(words) == 1:
            CONTEXT.switch_branch(verb)
            print(f"on branch '{verb}'")
        else:
            raise UsageError("usage: %rat branch [NAME | create NAME | merge SOURCE | diff A B | log | delete NAME]")
        return None

    def _publish(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.cli.products import _access

        release = CONTEXT.session.products.publish(args.source, args.name, args.version, access=_access(tuple(args.access)), description=args.description)
        print(f"published {release.name} {release.version} from {release.source_table}")
        return None

    def _products(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.notebook.widgets.products import ProductBrowser

        return ProductBrowser(CONTEXT, shell=self.shell)

    def _lineage(self, args: argparse.Namespace, cell: str | None) -> Any:
        from ratatouille_nb.notebook.widgets.lineage import LineageGraphWidget

        return LineageGraphWidget.for_session(CONTEXT.session, model=args.model, columns=args.columns)

    def _pipeline(self, verb: str, args: argparse.Namespace) -> Any:
        # The live display is the output; the record is in `rat.last_run` (and the run history).
        from ratatouille_nb.api import rat
        from ratatouille_nb.notebook.widgets.progress import run_with_progress

        rat.last_run = run_with_progress(CONTEXT.session, verb, args.selectors, full_refresh=getattr(args, "full_refresh", False))
        return None

    def _run(self, args: argparse.Namespace, cell: str | None) -> Any:
        return self._pipeline("run", args)

    def _test(self, args: argparse.Namespace, cell: str | None) -> Any:
        return self._pipeline("test", args)

    def _build(self, args: argparse.Namespace, cell: str | None) -> Any:
        return self._pipeline("build", args)

    def _workspace(self, args: argparse.Namespace, cell: str | None) -> Any:
        if args.name:
            CONTEXT.switch_workspace(args.name)
        s = CONTEXT.session
        print(f"workspace '{s.workspace.name}' ({s.workspace.root}) · branch {s.branch} · profile {s.resources.name}")
        return None

    def _promote(self, args: argparse.Namespace, cell: str | None) -> Any:
        from pathlib import Path

        from ratatouille_nb.export import promote

        notebook = self._notebook_path()
        session = CONTEXT.session
        result = promote(notebook, session.workspace, into=Path(args.into) if args.into else None, force=args.force, dry_run=args.dry_run, session=session)
        for f in result.files:
            print(f"{'would write' if args.dry_run else f.status:>11}  {f.path.relative_to(session.workspace.root)}  (cell {f.cell})")
        for skip in result.skipped:
            print(f"    skipped  cell {skip.index}: {skip.reason}")
        for warning in result.warnings:
            print(f"warning: {warning}")
        return None

    def _notebook_path(self) -> Any:
        """The running notebook's file: JupyterLab sets __session__ (ipykernel 6+) or JPY_SESSION_NAME."""
        import os
        from pathlib import Path

        for candidate in (self._user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME"), self._user_ns.get("__vsc_ipynb_file__")):
            if candidate and str(candidate).endswith(".ipynb") and Path(candidate).is_file():
                return Path(candidate)
        raise UsageError("cannot tell which notebook is running; use `rat promote NOTEBOOK.ipynb` from a terminal")


def _one(words: list[str], usage: str) -> str:
    if len(words) != 1:
        raise UsageError(f"usage: {usage}")
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


def load(ipython: Any) -> None:
    ipython.register_magics(RatMagics)

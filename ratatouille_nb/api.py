"""`rat`: the Python face of Ratatouille (interfaces.md), shared by notebooks, scripts and pipelines.

Outside a pipeline run it works on a lazily opened session (from RAT_* settings, or one set with
`rat.use(session)`); inside a Python pipeline the ingestion helpers act on that run's transaction.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ratatouille_nb.errors import RatError

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import MergeResult, Reference, TableDiff
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.quality import TestResult
    from ratatouille_nb.pipeline.runs import RunRecord


class Rat:
    """One object for SQL, branches, runs and ingestion."""

    def __init__(self) -> None:
        self._session: Session | None = None
        self.last_run: Any = None

    # -- session ------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        if self._session is None:
            from ratatouille_nb.engine.session import open_session

            self._session = open_session()
        return self._session

    def use(self, session: Session) -> None:
        """Make `rat` work on this session (the notebook layer shares its own)."""
        self._session = session

    def _run_state(self) -> Any:
        from ratatouille_nb.pipeline.executor import CURRENT_RUN

        return CURRENT_RUN.get(None)

    # -- SQL ----------------------------------------------------------------------------------

    def sql(self, query: str, *, as_: str = "pandas", branch: str | None = None) -> Any:
        """Run SQL; the last statement's rows as pandas (default), polars or arrow."""
        if as_ not in ("pandas", "polars", "arrow"):
            raise RatError(f"as_ must be 'pandas', 'polars' or 'arrow', not {as_!r}")
        return self.session.sql(query, ref=branch).to(as_)

    def connection(self) -> Any:
        """The session's DuckDB connection with every table of the branch bound as `layer.table`
        (hand it to JupySQL: `%sql conn --alias rat`)."""
        self.session.bind_all()
        return self.session.con

    # -- branches -----------------------------------------------------------------------------

    def branch(self, name: str | None = None, *, create: bool = False, from_ref: str | None = None) -> str:
        """Current branch, or switch to `name` (creating it from the current branch with create=True)."""
        if name is None:
            return self.session.branch
        if create:
            self.session.store.create_reference(name, "branch", from_ref or self.session.branch)
        self.session.use_branch(name)
        return name

    def branches(self) -> list[Reference]:
        return self.session.store.list_references()

    def create_branch(self, name: str, from_ref: str | None = None) -> Reference:
        return self.session.store.create_reference(name, "branch", from_ref or self.session.branch)

    def delete_branch(self, name: str) -> None:
        if name == self.session.branch:
            raise RatError(f"cannot delete '{name}': it is the current branch")
        self.session.store.delete_reference(name)

    def merge(self, source: str, into: str | None = None) -> MergeResult:
        return self.session.store.merge(source, into or self.session.workspace.branch)

    def diff(self, from_ref: str, to_ref: str) -> list[TableDiff]:
        from ratatouille_nb.catalog.diff import diff_refs

        return diff_refs(self.session.store, self.session.warehouse, from_ref, to_ref)

    def log(self, ref: str | None = None, limit: int = 20) -> list[Any]:
        return self.session.store.log(ref or self.session.branch, limit=limit)

    def tag(self, name: str, from_ref: str | None = None) -> Reference:
        return self.session.store.create_reference(name, "tag", from_ref or self.session.branch)

    # -- pipelines ----------------------------------------------------------------------------

    def run(self, *selectors: str, full_refresh: bool = False, vars: dict[str, Any] | None = None) -> RunRecord:
        from ratatouille_nb.pipeline.executor import Runner

        return Runner(self.session).run(list(selectors), full_refresh=full_refresh, variables=vars)

    def test(self, *selectors: str, branch: str | None = None) -> list[TestResult]:
        """Run the data tests of the selected models (default: all) on `branch` (default: the current one)."""
        from ratatouille_nb.pipeline.quality import run_selected_tests

        return run_selected_tests(self.session, list(selectors), ref=branch)

    # -- data products ------------------------------------------------------------------------

    def publish(
        self,
        source: str,
        product: str,
        version: str,
        *,
        access: list[dict[str, str]] | None = None,
        description: str | None = None,
        schema: str | None = None,
    ) -> Any:
        """Publish `source` as it is now as `product` `version` (zero-copy; semver checked on the schema)."""
        grants = [(a["workspace"], a.get("level", "read")) for a in access or []]
        return self.session.products.publish(source, product, version, access=grants, description=description)

    def consume(self, product: str, version: str | None = None, *, as_: str = "pandas", as_of: float | None = None) -> Any:
        """Read a product at the newest version satisfying `version` (default: the subscription's, else latest)."""
        resolved = self.session.products.resolve(product, version, as_of=as_of)
        from ratatouille_nb.engine.sqltypes import quote_ident

        view = f"_product_{product}_{resolved.release.version.replace('.', '_').replace('-', '_')}"
        location = resolved.entry.metadata_location.replace("'", "''")
        self.session.ensure_iceberg()
        self.session.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS SELECT * FROM iceberg_scan('{location}')")
        relation = self.session.con.sql(f"SELECT * FROM {quote_ident(view)}")
        if as_ == "polars":
            return relation.pl()
        return relation.to_arrow_table() if as_ == "arrow" else relation.df()

    def products(self) -> list[str]:
        """Products this workspace may read."""
        return self.session.products.readable()

    def subscribe(self, product: str, version: str = "latest", alias: str | None = None) -> Any:
        return self.session.products.subscribe(product, version, alias)

    # -- ingestion (inside a Python pipeline, see pipeline/ingest.py) -------------------------

    def _ingest(self, verb: str, action: Any) -> Any:
        """Run an ingestion helper in the current pipeline run, or (in a notebook) as its own commit."""
        current = self._run_state()
        if current is not None:
            state, model = current
            return action(state, model.name)
        from ratatouille_nb.pipeline.executor import RunState

        txn = self.session.transaction(f"rat.{verb} from a notebook")
        state = RunState(self.session, txn, project=None)  # type: ignore[arg-type]
        try:
            out = action(state, "notebook")
            txn.commit()
            return out
        except BaseException:
            txn.abort()
            raise

    def ls(self, pattern: str) -> list[str]:
        """Files under the workspace storage root matching a glob (e.g. "landing/sales/*.csv")."""
        from ratatouille_nb.pipeline.ingest import list_files

        return self._ingest("ls", lambda state, _name: list_files(state, pattern))

    def read_file(self, path: str) -> bytes:
        from ratatouille_nb.pipeline.ingest import read_file

        return self._ingest("read_file", lambda state, _name: read_file(state, path))

    def is_ingested(self, path: str) -> bool:
        from ratatouille_nb.pipeline.ingest import is_ingested

        return self._ingest("is_ingested", lambda state, _name: is_ingested(state, path))

    def mark_ingested(self, path: str) -> None:
        from ratatouille_nb.pipeline.ingest import mark_ingested

        self._ingest("mark_ingested", lambda state, name: mark_ingested(state, name, path))

    def append(self, table: str, data: Any) -> int:
        """Append a DataFrame / Arrow table or stream to a table (created if missing)."""
        from ratatouille_nb.pipeline.ingest import append

        return self._ingest("append", lambda state, _name: append(state, table, data))

    @property
    def log_(self) -> logging.Logger:
        return self._logger()

    def _logger(self) -> logging.Logger:
        current = self._run_state()
        name = current[1].name if current else "session"
        return logging.getLogger(f"ratatouille.{name}")

    def now(self) -> datetime:
        return datetime.now(UTC)


class _RatWithLog(Rat):
    """`rat.log` is a logger inside pipelines and the commit log function elsewhere."""

    @property
    def log(self) -> Any:
        if self._run_state() is not None:
            return self._logger()
        return _LogProxy(self)


class _LogProxy:
    """Callable like `rat.log(ref)` (history) and usable like a logger (`rat.log.info`)."""

    def __init__(self, rat: Rat) -> None:
        self._rat = rat

    def __call__(self, ref: str | None = None, limit: int = 20) -> list[Any]:
        return Rat.log(self._rat, ref, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rat._logger(), name)


rat = _RatWithLog()


def ref(name: str) -> str:
    """The table a model name or `layer.table` refers to (for f-strings in rat.sql)."""
    from ratatouille_nb.pipeline.loader import load_project

    project = load_project(rat.session.workspace.root)
    model = project.get(name)
    return model.target if model else name

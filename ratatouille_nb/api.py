"""`rat`: the Python face of Ratatouille (interfaces.md), for notebooks, scripts and pipelines.

A thin caller of the verb layer (ratatouille_nb/verbs/) on the process's session
(`verbs.session.current()`, shared with the `%rat` magics and the widgets). Inside a Python
pipeline the ingestion helpers and `rat.sql` act on that run (pipeline/runtime.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ratatouille_nb.errors import RatError
from ratatouille_nb.pipeline.runtime import RunRat
from ratatouille_nb.verbs import branches, pipelines, products, sql
from ratatouille_nb.verbs import session as sessions

if TYPE_CHECKING:
    from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableDiff
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.build import BuildResult
    from ratatouille_nb.pipeline.quality import TestResult
    from ratatouille_nb.pipeline.runs import RunRecord
    from ratatouille_nb.products.registry import Release
    from ratatouille_nb.verbs.branches import RefInfo

Frame = Literal["pandas", "polars", "arrow"]


class Rat(RunRat):
    """One object for SQL, branches, runs, products and ingestion."""

    def __init__(self) -> None:
        self.last_run: Any = None

    # -- session ------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The run's session inside a pipeline, else the process's (opened from RAT_* settings)."""
        current = self._run_state()
        return current[0].session if current is not None else sessions.current()

    def _outside_run_session(self) -> Session:
        return self.session

    def use(self, session: Session) -> None:
        """Make `session` the process's session (the magics and widgets follow)."""
        sessions.use(session)

    # -- SQL ----------------------------------------------------------------------------------

    def sql(self, query: str, *, as_: Frame = "pandas", branch: str | None = None) -> Any:
        """Run SQL; the last statement's rows as pandas (default), polars or arrow."""
        if as_ not in ("pandas", "polars", "arrow"):
            raise RatError(f"as_ must be 'pandas', 'polars' or 'arrow', not {as_!r}")
        return sql.sql(self.session, query, ref=branch).to(as_)

    def connection(self) -> Any:
        """The session's DuckDB connection with every table of the branch bound as `layer.table`
        (hand it to JupySQL: `%sql conn --alias rat`)."""
        self.session.bind_all()
        return self.session.con

    def tables(self, branch: str | None = None) -> list[dict[str, Any]]:
        return sql.tables(self.session, branch)

    # -- branches -----------------------------------------------------------------------------

    def branch(self, name: str | None = None, *, create: bool = False, from_ref: str | None = None) -> str:
        """Current branch, or switch to `name` (creating it from the current branch with create=True)."""
        if name is None:
            return self.session.branch
        if create:
            branches.create(self.session, name, from_ref=from_ref)
        return branches.checkout(self.session, name)

    def branches(self) -> list[RefInfo]:
        return branches.list_refs(self.session)

    def create_branch(self, name: str, from_ref: str | None = None) -> Reference:
        return branches.create(self.session, name, from_ref=from_ref)

    def delete_branch(self, name: str) -> None:
        branches.delete(self.session, name)

    def merge(self, source: str, into: str | None = None) -> MergeResult:
        """Merge `source` into `into` (default: the current branch)."""
        return branches.merge(self.session, source, into=into)

    def diff(self, from_ref: str, to_ref: str, **options: Any) -> list[TableDiff]:
        return branches.diff(self.session, from_ref, to_ref, **options)

    def history(self, ref: str | None = None, limit: int = 20) -> list[Commit]:
        return branches.log(self.session, ref, limit=limit)

    def tag(self, name: str, from_ref: str | None = None) -> Reference:
        return branches.tag(self.session, name, from_ref=from_ref)

    # -- pipelines ----------------------------------------------------------------------------

    def run(self, *selectors: str, full_refresh: bool = False, vars: dict[str, Any] | None = None) -> RunRecord:
        return pipelines.run(self.session, selectors, full_refresh=full_refresh, variables=vars)

    def test(self, *selectors: str, branch: str | None = None) -> list[TestResult]:
        """Run the data tests of the selected models (default: all) on `branch` (default: the current one)."""
        return pipelines.test(self.session, selectors, ref=branch).results

    def build(self, *selectors: str, full_refresh: bool = False, vars: dict[str, Any] | None = None) -> BuildResult:
        return pipelines.build(self.session, selectors, full_refresh=full_refresh, variables=vars)

    # -- data products ------------------------------------------------------------------------

    def publish(
        self,
        source: str,
        product: str,
        version: str,
        *,
        access: list[dict[str, str]] | None = None,
        description: str | None = None,
    ) -> Release:
        """Publish `source` as it is now as `product` `version` (zero-copy; semver checked on the schema)."""
        return products.publish(self.session, source, product, version, access=access or [], description=description)

    def consume(self, product: str, version: str | None = None, *, as_: Frame = "pandas", as_of: float | None = None) -> Any:
        """Read a product at the newest version satisfying `version` (default: the subscription's, else latest)."""
        return products.consume(self.session, product, version, as_=as_, as_of=as_of)

    def products(self) -> list[str]:
        """Products this workspace may read."""
        return products.readable(self.session)

    def subscribe(self, product: str, version: str = "latest", alias: str | None = None) -> Any:
        return products.subscribe(self.session, product, version, alias)

    # -- history and logging ------------------------------------------------------------------

    @property
    def log(self) -> Any:
        """A logger inside pipelines (`rat.log.info`); elsewhere also callable as the commit log (`rat.log(ref)`)."""
        if self._run_state() is not None:
            return self._logger()
        return _LogProxy(self)


class _LogProxy:
    """Callable like `rat.log(ref)` (history) and usable like a logger (`rat.log.info`)."""

    def __init__(self, rat: Rat) -> None:
        self._rat = rat

    def __call__(self, ref: str | None = None, limit: int = 20) -> list[Any]:
        return self._rat.history(ref, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rat._logger(), name)


rat = Rat()


def ref(name: str) -> str:
    """The table a model name, `layer.table`, product or alias refers to (for f-strings in rat.sql)."""
    return sql.resolve_name(rat.session, name)

"""Data-product verbs: publish, consume, subscribe, refresh, grant, revoke, list, show.

The rules (semver contract, grants, who may publish) are the product service's
(products/service.py); this module gives every front end the same entry points and parsing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from ratatouille_nb.products.errors import ProductError

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.products.registry import Pin, Release
    from ratatouille_nb.products.service import Resolved


def parse_access(items: Iterable[str | dict[str, str] | tuple[str, str]]) -> list[tuple[str, str]]:
    """`analytics:read`, `{"workspace": "analytics", "level": "read"}` or a pair -> (workspace pattern, level)."""
    out = []
    for item in items:
        if isinstance(item, dict):
            workspace, level = item.get("workspace", ""), item.get("level", "read")
        elif isinstance(item, tuple):
            workspace, level = item
        else:
            workspace, sep, level = item.partition(":")
            if not sep:
                workspace, level = "", ""
        if not workspace or not level:
            raise ProductError(f"an access grant is WORKSPACE:LEVEL (e.g. analytics:read), not {item!r}")
        out.append((workspace, level))
    return out


def publish(
    s: Session, source: str, name: str, version: str, *, access: Iterable[Any] = (), description: str | None = None
) -> Release:
    """Publish `source` as it is now as `name` `version` (zero-copy pin; semver checked on the schema).

    Without a description, the product takes the one of the model that builds `source` (its YAML,
    schema.yml or dbt docs block), so the product browser shows what the pipeline documents.
    """
    return s.products.publish(source, name, version, access=parse_access(access), description=description or _model_description(s, source))


def _model_description(s: Session, table: str) -> str | None:
    from ratatouille_nb.errors import RatError
    from ratatouille_nb.pipeline.loader import load_project

    try:
        model = load_project(s.workspace.root).get(table)
    except RatError:
        return None
    return model.description if model is not None else None


def resolve(s: Session, name: str, version: str | None = None, *, as_of: float | None = None) -> Resolved:
    """The release and pin `name` resolves to for this workspace (access checked)."""
    return s.products.resolve(name, version, as_of=as_of)


def consume(
    s: Session, name: str, version: str | None = None, *, as_: Literal["pandas", "polars", "arrow"] = "pandas", as_of: float | None = None
) -> Any:
    """Read a product at the newest version satisfying `version` (default: the subscription's, else latest)."""
    from ratatouille_nb.engine.sqltypes import quote_ident

    resolved = resolve(s, name, version, as_of=as_of)
    view = f"_product_{name}_{resolved.release.version.replace('.', '_').replace('-', '_')}"
    location = resolved.entry.metadata_location.replace("'", "''")
    s.allow_pins({f"products.{name}": resolved.entry})  # an older version or pin: let the sandbox reach its files
    s.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote_ident(view)} AS SELECT * FROM iceberg_scan('{location}')")
    relation = s.con.sql(f"SELECT * FROM {quote_ident(view)}")
    if as_ == "polars":
        return relation.pl()
    return relation.to_arrow_table() if as_ == "arrow" else relation.df()


def subscribe(s: Session, name: str, version: str = "latest", alias: str | None = None) -> Resolved:
    return s.products.subscribe(name, version, alias)


def refresh(s: Session, name: str) -> tuple[Release, Pin]:
    return s.products.refresh(name)


def grant(s: Session, name: str, workspace: str, level: str) -> None:
    s.products.grant(name, workspace, level)


def revoke(s: Session, name: str, workspace: str) -> bool:
    return bool(s.products.revoke(name, workspace))


def readable(s: Session) -> list[str]:
    """Names of the products this workspace may read."""
    return list(s.products.readable())


def show(s: Session, name: str) -> dict[str, Any]:
    """Versions, schema, owner, grants, subscribers and freshness of one product."""
    return dict(s.products.show(name))


def listing(s: Session) -> list[dict[str, Any]]:
    """`show` of every readable product (a product whose pin cannot be read is left out)."""
    from ratatouille_nb.errors import RatError

    out = []
    for name in readable(s):
        try:
            out.append(show(s, name))
        except RatError:
            continue
    return out

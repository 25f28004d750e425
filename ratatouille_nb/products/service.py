"""Publishing and consuming data products, with the registry's rules applied.

A release pins the source table's current Iceberg metadata file and snapshot (zero-copy: later
writes make new metadata files, the pinned one never changes). A refresh re-pins the newest
version when the schema still matches its contract; every pin is kept, so consumers can read
a product as of an earlier refresh.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ratatouille_nb.catalog.models import TableEntry
from ratatouille_nb.catalog.tables import read_metadata
from ratatouille_nb.errors import TableMetadataError
from ratatouille_nb.products.compatibility import is_acceptable, lowest_acceptable, schema_change
from ratatouille_nb.products.errors import AccessDeniedError, IncompatibleVersionError, ProductError, ProductNotFoundError
from ratatouille_nb.products.permissions import LEVELS, allows, effective_level
from ratatouille_nb.products.registry import Pin, Release, SqliteProductRegistry, Subscription
from ratatouille_nb.products.versions import parse_version, resolve, satisfies

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
WORKSPACE_PATTERN_RE = re.compile(r"^[a-z0-9_*?\[\]-]{1,63}$")


def validate_product_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise ProductError(f"invalid product name '{name}': use lowercase letters, digits and '_' (no '/', '.', spaces)")
    return name


@dataclass(frozen=True)
class Resolved:
    """A product as one workspace reads it: the release its constraint picks and the pin to read."""

    release: Release
    pin: Pin

    @property
    def entry(self) -> TableEntry:
        return TableEntry(metadata_location=self.pin.metadata_location, snapshot_id=self.pin.snapshot_id)


class ProductService:
    """Product verbs for the workspace of one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.workspace = session.workspace.name
        self.registry = SqliteProductRegistry(session.settings.home)

    # -- lookups ------------------------------------------------------------------------------

    def _releases(self, name: str) -> list[Release]:
        releases = self.registry.releases(validate_product_name(name))
        if not releases:
            raise ProductNotFoundError(f"no product named '{name}'", hint="see `rat products list`")
        return releases

    def owner(self, name: str) -> str:
        return self._releases(name)[0].owner_workspace

    def level(self, name: str, workspace: str | None = None) -> str:
        return effective_level(workspace or self.workspace, self.owner(name), self.registry.grants(name))

    def _require(self, name: str, needed: str) -> None:
        level = self.level(name)
        if not allows(level, needed):
            raise AccessDeniedError(
                f"workspace '{self.workspace}' may not {'read' if needed == 'read' else 'change'} product '{name}' (access: {level})",
                hint=f"ask the owner workspace '{self.owner(name)}' to run `rat products grant {name} {self.workspace} {needed}`",
            )

    def constraint_for(self, name: str) -> str:
        """The version constraint of this workspace's subscription (registry or workspace.yaml), else latest."""
        for sub in self.session.workspace.config.subscriptions:
            if sub.product.split("/")[-1] == name:
                return sub.version
        for row in self.registry.subscriptions(consumer=self.workspace, product=name):
            return row.version_constraint
        return "latest"

    def aliases(self) -> dict[str, str]:
        """Subscription alias -> product name, from workspace.yaml and the registry."""
        out = {s.alias: s.product_name for s in self.registry.subscriptions(consumer=self.workspace) if s.alias}
        for sub in self.session.workspace.config.subscriptions:
            _owner, _, name = sub.product.rpartition("/")
            if sub.alias:
                out[sub.alias] = name
        return out

    def resolve(self, name: str, version: str | None = None, *, as_of: float | None = None) -> Resolved:
        """The release and pin `name` resolves to for this workspace (access checked)."""
        releases = self._releases(name)
        self._require(name, "read")
        constraint = version or self.constraint_for(name)
        if as_of is not None:  # as it was then: the versions published by that time, and their pins of that time
            releases = [r for r in releases if r.created_at <= as_of]
            if not releases or not any(satisfies(r.version, constraint) for r in releases):
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(as_of))
                raise ProductNotFoundError(f"product '{name}' had no version satisfying '{constraint}' at {when}")
        chosen = resolve([r.version for r in releases], constraint, name)
        release = next(r for r in releases if r.version == chosen)
        pins = self.registry.pins(name, chosen)
        if as_of is not None:
            pins = [p for p in pins if p.pinned_at <= as_of]
        return Resolved(release=release, pin=pins[-1])

    # -- publishing ---------------------------------------------------------------------------

    def _source_entry(self, source: str) -> TableEntry:
        from ratatouille_nb.errors import TableNotFoundError

        entry = self.session.contents().get(source)
        if entry is None:
            raise TableNotFoundError(
                f"cannot publish '{source}': no such table on branch '{self.session.branch}'", hint="build it first (`rat build`)"
            )
        if entry.view_sql is not None:
            raise ProductError(f"cannot publish '{source}': it is a view; publish a table (materialized: table)")
        return entry

    def _schema(self, entry: TableEntry, table: str | None = None) -> list[dict]:
        meta = read_metadata(self.session.warehouse.file_io(), entry.metadata_location, table)
        return [{"name": f.name, "type": str(f.field_type), "required": f.required} for f in meta.schema().fields]

    def publish(
        self,
        source: str,
        name: str,
        version: str,
        *,
        access: list[tuple[str, str]] | None = None,
        description: str | None = None,
    ) -> Release:
        """Publish `source` as it is now, as product `name` at `version` (semver enforced on the schema)."""
        validate_product_name(name)
        self.session.access.require_role("owner", f"publish product '{name}'")
        new_version = parse_version(version)
        existing = self.registry.releases(name)
        if existing:
            self._require(name, "write")  # before the source is read: a reader learns nothing about it
        entry = self._source_entry(source)
        schema = self._schema(entry, source)
        if existing:
            if any(parse_version(r.version) == new_version for r in existing):
                from ratatouille_nb.products.errors import VersionExistsError

                raise VersionExistsError(
                    f"product '{name}' version {version} already exists: versions are immutable",
                    hint=f"publish a new version, or `rat products refresh {name}` to re-pin the newest one",
                )
            # The contract is the previous release's: a pre-release promises nothing (semver item 9).
            older = [r for r in existing if parse_version(r.version) < new_version and not parse_version(r.version).prerelease]
            if older:
                previous = max(older, key=lambda r: parse_version(r.version))
                change = schema_change(previous.schema_, schema)
                prev_v = parse_version(previous.version)
                if not is_acceptable(prev_v, new_version, change):
                    raise IncompatibleVersionError(
                        f"product '{name}' {version} vs {previous.version}: {change.describe()}; "
                        f"the lowest acceptable version is {lowest_acceptable(prev_v, change)}",
                        hint="removing or retyping columns needs a new major version, adding columns a new minor",
                    )
        for pattern, level in access or []:
            self._check_grant(pattern, level)
        release = Release(
            id=uuid.uuid4().hex,
            name=name,
            version=str(new_version),
            owner_workspace=existing[0].owner_workspace if existing else self.workspace,
            description=description or (existing[-1].description if existing else None) or self._declared_description(name),
            schema=schema,
            storage_path=entry.metadata_location,
            iceberg_snapshot_id=entry.snapshot_id,
            metadata_location=entry.metadata_location,
            source_table=source,
            created_at=time.time(),
            created_by=self.session.principal,
        )
        self.registry.add_release(release)
        for pattern, level in [*self._declared_access(name), *(access or [])]:
            self.registry.set_grant(name, pattern, level, self.session.principal)
        return release

    def freshness_sla_hours(self, name: str) -> float | None:
        """The SLA workspace.yaml declares for a product this workspace owns (None if none)."""
        declared = self._declared(name)
        return declared.sla.freshness_hours if declared is not None and declared.sla is not None else None

    def _declared(self, name: str) -> Any:
        return next((p for p in self.session.workspace.config.products if p.name == name), None)

    def _declared_access(self, name: str) -> list[tuple[str, str]]:
        declared = self._declared(name)
        return [(a.workspace, a.level) for a in declared.access] if declared else []

    def _declared_description(self, name: str) -> str | None:
        declared = self._declared(name)
        return declared.description if declared else None

    def refresh(self, name: str, *, reason: str = "refresh") -> tuple[Release, Pin]:
        """Re-pin the newest version to its source table's current snapshot (schema must match).

        By hand it is an owner's act; after a successful build (`reason="build"`) of a product
        workspace.yaml declares, an editor's build may re-pin it.
        """
        releases = self._releases(name)
        self.session.access.require_role("editor" if reason == "build" else "owner", f"refresh product '{name}'")
        self._require(name, "write")
        newest = max(releases, key=lambda r: parse_version(r.version))
        if newest.owner_workspace != self.workspace:
            raise AccessDeniedError(f"product '{name}' is refreshed from its owner workspace '{newest.owner_workspace}'")
        entry = self._source_entry(newest.source_table)
        change = schema_change(newest.schema_, self._schema(entry, newest.source_table))
        if change.removed or change.retyped or change.added:
            raise IncompatibleVersionError(
                f"cannot refresh product '{name}' {newest.version}: the source schema changed ({change.describe()}); "
                f"publish version {lowest_acceptable(parse_version(newest.version), change)} instead"
            )
        pin = Pin(metadata_location=entry.metadata_location, snapshot_id=entry.snapshot_id, pinned_at=time.time(), reason=reason)
        self.registry.add_refresh(name, newest.version, pin, self.session.principal)
        for pattern, level in self._declared_access(name):
            self.registry.set_grant(name, pattern, level, self.session.principal)
        return newest, pin

    def refresh_declared(self, built_tables: set[str] | None = None) -> tuple[list[str], list[str]]:
        """After a successful build: refresh each product workspace.yaml lists whose source was built.

        Returns (refreshed "name version" strings, error messages); one product failing its
        contract does not stop the others.
        """
        from ratatouille_nb.errors import RatError

        done, errors = [], []
        for declared in self.session.workspace.config.products:
            if built_tables is not None and declared.source not in built_tables:
                continue
            if not self.registry.releases(declared.name):
                continue
            try:
                release, _pin = self.refresh(declared.name, reason="build")
                done.append(f"{release.name} {release.version}")
            except RatError as exc:
                errors.append(str(exc))
        return done, errors

    # -- access and subscriptions -------------------------------------------------------------

    def _check_grant(self, workspace: str, level: str) -> None:
        if level not in LEVELS:
            raise ProductError(f"invalid access level '{level}': use read, write or none")
        if not WORKSPACE_PATTERN_RE.match(workspace):
            raise ProductError(f"invalid workspace pattern '{workspace}'")

    def grant(self, name: str, workspace: str, level: str) -> None:
        self._releases(name)
        self._require(name, "write")
        self.session.access.require_role("owner", f"grant access to product '{name}'")
        self._check_grant(workspace, level)
        self.registry.set_grant(name, workspace, level, self.session.principal)

    def revoke(self, name: str, workspace: str) -> bool:
        self._releases(name)
        self._require(name, "write")
        self.session.access.require_role("owner", f"revoke access to product '{name}'")
        return self.registry.revoke(name, workspace)

    def subscribe(self, name: str, version: str = "latest", alias: str | None = None) -> Resolved:
        if alias is not None and not NAME_RE.match(alias):
            raise ProductError(f"invalid alias '{alias}': use lowercase letters, digits and '_'")
        self.session.access.require_role("editor", f"subscribe workspace '{self.workspace}' to product '{name}'")
        resolved = self.resolve(name, version)
        self.registry.subscribe(
            Subscription(product_name=name, consumer_workspace=self.workspace, alias=alias, version_constraint=version, subscribed_at=time.time())
        )
        return resolved

    def readable(self) -> list[str]:
        """Names of products this workspace may read."""
        names = sorted({r.name for r in self.registry.releases()})
        return [n for n in names if allows(self.level(n), "read")]

    def show(self, name: str) -> dict[str, Any]:
        """Versions, schema, owner, grants, subscribers and freshness of a product."""
        releases = sorted(self._releases(name), key=lambda r: parse_version(r.version))
        self._require(name, "read")
        newest = releases[-1]
        pin = self.registry.pins(name, newest.version)[-1]
        freshness, broken = None, None
        schema = [dict(c) for c in newest.schema_]
        if pin.snapshot_id is not None:
            try:
                meta = read_metadata(
                    self.session.warehouse.file_io(), pin.metadata_location, subject=f"product {name} {newest.version}"
                )
            except TableMetadataError as exc:  # the registry entry is intact; only its data is unreadable
                broken = str(exc)
            else:
                snap = meta.snapshot_by_id(pin.snapshot_id)
                if snap is not None:
                    freshness = time.time() - snap.timestamp_ms / 1000
                schema = _display_schema(meta, schema)
        return {
            "name": name,
            "owner": newest.owner_workspace,
            "description": newest.description,
            "source": newest.source_table,
            "versions": [
                {"version": r.version, "created_at": r.created_at, "created_by": r.created_by, "refreshes": len(self.registry.pins(name, r.version)) - 1}
                for r in releases
            ],
            "schema": schema,
            "grants": self.registry.grants(name),
            "subscribers": [s.model_dump() for s in self.registry.subscriptions(product=name)],
            "freshness_seconds": freshness,
            "broken": broken,
            "access": self.level(name),
        }

    def entries(self, names: set[str]) -> dict[str, TableEntry]:
        """`products.<name>` -> pinned entry, for the product names a statement mentions."""
        return {f"products.{n}": self.resolve(n).entry for n in sorted(names)}


def _display_schema(meta: Any, contract: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The contract's columns with types named as DuckDB (and every result table) names them.

    The contract itself keeps Iceberg's names (what semver compares); `iceberg_type` keeps them here too.
    """
    from ratatouille_nb.catalog.typenames import duck_type_of

    by_name = {f.name: f.field_type for f in meta.schema().fields}
    out = []
    for column in contract:
        shown = dict(column)
        if column.get("name") in by_name:
            shown["iceberg_type"] = column.get("type")
            shown["type"] = duck_type_of(by_name[column["name"]])
        out.append(shown)
    return out

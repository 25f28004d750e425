"""The full-stack version store: Project Nessie over its REST API v2 (`RAT_CATALOG=nessie`).

Nessie keeps exactly what our store keeps — refs -> commits -> a map of content keys to Iceberg
metadata locations — so this class is a translation, not a second implementation:

* a table `layer.table` is the content key `["layer", "table"]` holding an `ICEBERG_TABLE`
  (`metadataLocation`, `snapshotId` (-1 = no snapshot), `schemaId`, `specId`, `sortOrderId`, the
  last three read from the metadata file). Nessie requires a key's namespace to exist, so a commit
  that writes the first table of a layer also PUTs the `NAMESPACE` `["layer"]`.
* a view model (`TableEntry.view_sql`) is an `ICEBERG_VIEW` whose `sqlText` is the SQL and
  `dialect` is `duckdb`; its `metadataLocation` is the placeholder `VIEW_PLACEHOLDER` because
  Ratatouille views have no Iceberg view metadata (engines that load views through Nessie's
  Iceberg REST endpoint cannot read them; DuckDB sessions of Ratatouille can).
* Ratatouille's per-table operations (`append`, `create`, …) travel in the commit's properties
  under `ratatouille.operations`; commits written by other tools show none.
* `TableEntry.table_uuid` is not stored (Nessie's content has no such field): entries read back
  carry `None`; the Iceberg metadata file still holds the UUID.

Commits use Nessie's optimistic concurrency: `POST /trees/{branch@expected}/history/commit`.
Nessie lands a commit on a moved head when no key it touches changed in between (what our
`TableTransaction` rebase would do anyway) and answers 409 otherwise; then this store raises
`StaleHeadError` with the new head, so the transaction's rebase/replay logic runs unchanged.

Merges are decided here and executed by Nessie: the merge base is computed from the commit
graph (Nessie has no merge-base endpoint), an ancestor source is "up-to-date", a descendant
source fast-forwards the target with a compare-and-swap `PUT /trees/{target@hash}`, and anything
else is checked with the same three-way rule as the embedded store (so conflicts name the same
tables and nothing is sent) before `POST /trees/{target@hash}/history/merge` creates the merge
commit; a 409 from Nessie (e.g. the target moved) is retried or reported by table.

Branch protection has no equivalent in Nessie's API: `set_protected` raises and points to
Nessie's server-side authorization rules; a 403 on a commit is reported as `ProtectedBranchError`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ratatouille_nb.catalog.base import StaleHeadError, VersionStore
from ratatouille_nb.catalog.merge import best_common_ancestors, changed_keys, merge_base_contents, three_way
from ratatouille_nb.catalog.models import Commit, MergeResult, Reference, TableEntry
from ratatouille_nb.catalog.nessie_client import (
    FULL_HASH_RE,
    NO_ANCESTOR_HASH,
    REF_NAME_RE,
    NessieHTTP,
    NessieHTTPError,
    elements_to_key,
    key_to_elements,
    ref_path,
)
from ratatouille_nb.catalog.refs import HASH_RE, RefSpec, parse_ref, validate_ref_name
from ratatouille_nb.errors import (
    CatalogError,
    CommitConflictError,
    InvalidNameError,
    MergeConflictError,
    ProtectedBranchError,
    ReferenceExistsError,
    ReferenceNotFoundError,
)

log = logging.getLogger(__name__)

OPERATIONS_PROPERTY = "ratatouille.operations"
VIEW_PLACEHOLDER = "ratatouille:view"
VIEW_DIALECT = "duckdb"
PAGE_SIZE = 100
MAX_MERGE_ATTEMPTS = 8

_KIND_TO_TYPE = {"branch": "BRANCH", "tag": "TAG"}
_TYPE_TO_KIND = {"BRANCH": "branch", "TAG": "tag"}


@dataclass(frozen=True)
class _Stored:
    """One content object at a commit: our entry plus what Nessie needs to update it."""

    entry: TableEntry | None  # None for namespaces and content types Ratatouille does not read
    content_id: str | None
    type: str


@dataclass
class _Tree:
    """Every content object at one commit (immutable once fetched)."""

    objects: dict[tuple[str, ...], _Stored] = field(default_factory=dict)

    def tables(self) -> dict[str, TableEntry]:
        return {elements_to_key(k): s.entry for k, s in self.objects.items() if s.entry is not None}


@dataclass(frozen=True)
class _Meta:
    parents: tuple[str, ...]
    author: str
    message: str
    created_at: float
    operations: dict[str, str]


def _parse_time(text: str | None) -> float:
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _iso_instant(when: datetime) -> str:
    """Nessie's relative-commit timestamp form: `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _meta_from_log_entry(entry: Mapping[str, Any]) -> tuple[str, _Meta]:
    """A `LogEntry` (v2 `authors`/`allProperties`/`parentCommitHashes`, or v1 names) -> our metadata."""
    meta = entry.get("commitMeta") or {}
    parents = list(meta.get("parentCommitHashes") or [])
    if not parents and entry.get("parentCommitHash"):
        parents = [entry["parentCommitHash"]]
    authors = meta.get("authors") or ([meta["author"]] if meta.get("author") else [])
    props: dict[str, str] = dict(meta.get("properties") or {})
    for k, values in (meta.get("allProperties") or {}).items():
        if values:
            props[k] = values[0]
    try:
        operations = json.loads(props.get(OPERATIONS_PROPERTY, "{}"))
        if not isinstance(operations, dict):
            operations = {}
    except ValueError:
        operations = {}
    return str(meta["hash"]), _Meta(
        parents=tuple(parents),
        author=authors[0] if authors else "",
        message=meta.get("message") or "",
        created_at=_parse_time(meta.get("commitTime") or meta.get("authorTime")),
        operations={str(k): str(v) for k, v in operations.items()},
    )


def _stored_from_content(content: Mapping[str, Any]) -> _Stored:
    """A Nessie `Content` -> what we keep of it."""
    ctype = str(content.get("type", ""))
    entry: TableEntry | None = None
    if ctype == "ICEBERG_TABLE":
        snap = content.get("snapshotId")
        entry = TableEntry(
            metadata_location=content["metadataLocation"],
            snapshot_id=None if snap is None or int(snap) < 0 else int(snap),
        )
    elif ctype == "ICEBERG_VIEW" and content.get("sqlText"):
        location = content.get("metadataLocation") or ""
        entry = TableEntry(
            metadata_location="" if location == VIEW_PLACEHOLDER else location,
            view_sql=content["sqlText"],
        )
    return _Stored(entry=entry, content_id=content.get("id"), type=ctype)


def _user() -> str:
    from ratatouille_nb.catalog.local import current_user

    return current_user()


class NessieVersionStore(VersionStore):
    """Refs, commits and table maps kept by a Nessie server, spoken to over REST API v2.

    Args:
        uri: Nessie's API base (`http://host:19120/api/v2`; `…/api` and the bare server work too).
        file_io: returns a pyiceberg FileIO to read Iceberg metadata files with (for the
            `schemaId`/`specId`/`sortOrderId` Nessie records); defaults to one by URL scheme.
        headers: extra HTTP headers, e.g. `{"Authorization": "Bearer …"}`.
    """

    def __init__(
        self,
        uri: str,
        *,
        file_io: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.http = NessieHTTP(uri, headers=headers, timeout=timeout)
        self.uri = self.http.base_url
        self._file_io_factory = file_io
        self._file_io: Any = None
        self._lock = threading.RLock()
        self._metas: dict[str, _Meta] = {}
        self._trees: OrderedDict[str, _Tree] = OrderedDict()
        self._ids: dict[str, tuple[int, int, int]] = {}
        try:
            config = self._call("GET", "/config")
        except NessieHTTPError as err:
            if err.status in (401, 403):
                raise CatalogError(
                    f"the Nessie server at {self.uri} refused the request ({err.status}): it needs credentials",
                    hint="set NESSIE_TOKEN to a bearer token Nessie accepts",
                ) from None
            raise CatalogError(
                f"{self.uri} does not answer like Nessie's REST API v2 ({err})",
                hint="NESSIE_URI should be Nessie's API base, e.g. http://host:19120/api/v2",
            ) from None
        if int(config.get("maxSupportedApiVersion") or 0) < 2:
            raise CatalogError(f"the Nessie server at {self.uri} does not support REST API v2")
        self.default_branch = config.get("defaultBranch") or "main"
        self.no_ancestor_hash = config.get("noAncestorHash") or NO_ANCESTOR_HASH

    # -- plumbing -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        try:
            return self.http.request(method, path, params=params, body=body)
        except NessieHTTPError as err:
            if err.status == 403:
                raise CatalogError(
                    f"Nessie refused {method} {path}: {err.message}",
                    hint="Nessie's authorization rules do not allow this for your user",
                ) from None
            raise

    def _reference(self, payload: Mapping[str, Any]) -> Reference:
        return Reference(name=payload["name"], kind=_TYPE_TO_KIND[payload["type"]], hash=payload["hash"])

    def _paged(self, path: str, items: str, params: Mapping[str, Any] | None = None, limit: int | None = None) -> Iterator[Any]:
        """Follow `hasMore`/`token` paging, yielding the elements of `items`."""
        token: str | None = None
        seen = 0
        while True:
            query = dict(params or {})
            query["max-records"] = PAGE_SIZE if limit is None else max(1, min(PAGE_SIZE, limit - seen))
            if token:
                query["page-token"] = token
            page = self._call("GET", path, params=query)
            for item in page.get(items) or []:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            token = page.get("token")
            if not page.get("hasMore") or not token:
                return

    def _remember(self, hash_: str, meta: _Meta) -> None:
        with self._lock:
            self._metas.setdefault(hash_, meta)

    def _history(self, path: str, limit: int | None) -> Iterator[str]:
        """Hashes of the first-parent history from a ref path, caching every commit's metadata."""
        for entry in self._paged(f"/trees/{path}/history", "logEntries", limit=limit):
            hash_, meta = _meta_from_log_entry(entry)
            self._remember(hash_, meta)
            yield hash_

    def _meta(self, hash_: str) -> _Meta:
        if hash_ == self.no_ancestor_hash:
            return _Meta(parents=(), author="", message="root", created_at=0.0, operations={})
        with self._lock:
            if hash_ in self._metas:
                return self._metas[hash_]
        try:
            # One page of first-parent history: caches this commit and its nearest ancestors.
            first = next(iter(self._history(ref_path(None, hash_), limit=PAGE_SIZE)), None)
        except NessieHTTPError as err:
            if err.status in (400, 404):
                raise ReferenceNotFoundError(f"no commit with hash '{hash_}'") from None
            raise
        if first != hash_:
            raise ReferenceNotFoundError(f"no commit with hash '{hash_}'")
        return self._metas[hash_]

    def _tree(self, hash_: str) -> _Tree:
        """Every content object at a commit (`GET /trees/@hash/entries?content=true`), cached."""
        if hash_ == self.no_ancestor_hash:
            return _Tree()
        with self._lock:
            if hash_ in self._trees:
                self._trees.move_to_end(hash_)
                return self._trees[hash_]
        tree = _Tree()
        try:
            for item in self._paged(f"/trees/{ref_path(None, hash_)}/entries", "entries", {"content": True}):
                content = item.get("content")
                if content is None:  # a server that ignores `content=true`: fetch them below
                    tree.objects[tuple(item["name"]["elements"])] = _Stored(None, item.get("contentId"), item["type"])
                    continue
                tree.objects[tuple(item["name"]["elements"])] = _stored_from_content(content)
        except NessieHTTPError as err:
            if err.status in (400, 404):
                raise ReferenceNotFoundError(f"no commit with hash '{hash_}'") from None
            raise
        missing = [k for k, s in tree.objects.items() if s.entry is None and s.type in ("ICEBERG_TABLE", "ICEBERG_VIEW")]
        if missing:
            got = self._call(
                "POST",
                f"/trees/{ref_path(None, hash_)}/contents",
                body={"requestedKeys": [{"elements": list(k)} for k in missing]},
            )
            for item in got.get("contents") or []:
                tree.objects[tuple(item["key"]["elements"])] = _stored_from_content(item["content"])
        with self._lock:
            self._trees[hash_] = tree
            while len(self._trees) > 256:
                self._trees.popitem(last=False)
        return tree

    def _iceberg_ids(self, location: str) -> tuple[int, int, int]:
        """(current schema id, default spec id, default sort order id) of a metadata file."""
        if location in self._ids:
            return self._ids[location]
        ids = (0, 0, 0)
        try:
            from pyiceberg.io import load_file_io
            from pyiceberg.serializers import FromInputFile

            if self._file_io is None:
                self._file_io = self._file_io_factory() if self._file_io_factory else load_file_io({}, location)
            meta = FromInputFile.table_metadata(self._file_io.new_input(location))
            ids = (meta.current_schema_id, meta.default_spec_id, meta.default_sort_order_id)
        except Exception as exc:  # noqa: BLE001 - the ids are informational for Nessie
            log.warning("cannot read Iceberg metadata %s (%s); recording ids 0/0/0 in Nessie", location, exc)
        self._ids[location] = ids
        return ids

    def _content(self, key: str, entry: TableEntry, content_id: str | None) -> dict[str, Any]:
        if entry.view_sql is not None:
            content: dict[str, Any] = {
                "type": "ICEBERG_VIEW",
                "metadataLocation": entry.metadata_location or VIEW_PLACEHOLDER,
                "versionId": 0,
                "schemaId": 0,
                "sqlText": entry.view_sql,
                "dialect": VIEW_DIALECT,
            }
        else:
            schema_id, spec_id, sort_id = self._iceberg_ids(entry.metadata_location)
            content = {
                "type": "ICEBERG_TABLE",
                "metadataLocation": entry.metadata_location,
                "snapshotId": -1 if entry.snapshot_id is None else entry.snapshot_id,
                "schemaId": schema_id,
                "specId": spec_id,
                "sortOrderId": sort_id,
            }
        if content_id is not None:
            content["id"] = content_id
        return content

    def _commit_meta(self, message: str, author: str, operations: Mapping[str, str]) -> dict[str, Any]:
        return {
            "message": message.strip() or "ratatouille commit",
            "author": author or _user(),
            "properties": {OPERATIONS_PROPERTY: json.dumps(dict(sorted(operations.items())), separators=(",", ":"))},
        }

    # -- references ---------------------------------------------------------------------------

    def list_references(self) -> list[Reference]:
        refs = [self._reference(r) for r in self._paged("/trees", "references") if r.get("type") in _TYPE_TO_KIND]
        return sorted(refs, key=lambda r: r.name)

    def get_reference(self, name: str) -> Reference:
        if not name or not REF_NAME_RE.match(name):
            raise ReferenceNotFoundError(f"no branch or tag named '{name}'", hint="list them with `rat branch list`")
        try:
            payload = self._call("GET", f"/trees/{ref_path(name)}")
        except NessieHTTPError as err:
            if err.status in (400, 404):
                raise ReferenceNotFoundError(
                    f"no branch or tag named '{name}'", hint="list them with `rat branch list`"
                ) from None
            raise
        return self._reference(payload["reference"])

    def create_reference(self, name: str, kind: str, from_ref: str | None = None) -> Reference:
        validate_ref_name(name)
        if not REF_NAME_RE.match(name):
            raise InvalidNameError(f"invalid reference name '{name}': Nessie names must start with a letter")
        if kind not in _KIND_TO_TYPE:
            raise CatalogError(f"unknown reference kind '{kind}'")
        source_ref, start = self._resolve(from_ref or self.default_branch)
        if source_ref is not None and source_ref.hash == start.hash:
            source = {"type": _KIND_TO_TYPE[source_ref.kind], "name": source_ref.name, "hash": start.hash}
        else:
            source = {"type": "DETACHED", "hash": start.hash}
        try:
            payload = self._call("POST", "/trees", params={"name": name, "type": _KIND_TO_TYPE[kind]}, body=source)
        except NessieHTTPError as err:
            if err.status == 409:
                raise ReferenceExistsError(f"a branch or tag named '{name}' already exists") from None
            if err.status == 400:
                raise InvalidNameError(f"Nessie rejected the name '{name}': {err.message}") from None
            if err.status == 404:
                raise ReferenceNotFoundError(f"'{from_ref}' does not exist on Nessie: {err.message}") from None
            raise
        return self._reference(payload["reference"])

    def delete_reference(self, name: str) -> None:
        if name == self.default_branch:
            raise CatalogError(f"cannot delete the default branch '{name}'")
        for _ in range(MAX_MERGE_ATTEMPTS):
            ref = self.get_reference(name)
            try:
                self._call("DELETE", f"/trees/{ref_path(name, ref.hash)}", params={"type": _KIND_TO_TYPE[ref.kind]})
                return
            except NessieHTTPError as err:
                if err.status == 404:
                    raise ReferenceNotFoundError(f"no branch or tag named '{name}'") from None
                if err.status != 409:
                    raise
        raise CatalogError(f"'{name}' kept moving while it was being deleted; try again")

    def set_protected(self, branch: str, protected: bool) -> Reference:
        raise CatalogError(
            f"cannot {'protect' if protected else 'unprotect'} '{branch}': Nessie's API has no protected-branch flag",
            hint="restrict who may commit to the branch with Nessie's server-side authorization rules "
            "(nessie.server.authorization.rules); commits they refuse are reported as protected-branch errors",
        )

    # -- commits ------------------------------------------------------------------------------

    def _full_hash(self, hash_: str) -> str:
        """A full 64-hex hash for a (possibly abbreviated) one, looked up client-side.

        Nessie resolves exact hashes only; a prefix is matched against cached commits, then against
        the histories of all references (first parents), newest first.
        """
        hash_ = hash_.lower()
        if not HASH_RE.match(hash_):
            raise ReferenceNotFoundError(f"'{hash_}' is not a commit hash")
        if FULL_HASH_RE.match(hash_) or hash_ == self.no_ancestor_hash:
            return hash_
        candidates = {h for h in (*self._metas, self.no_ancestor_hash) if h.startswith(hash_)}
        if not candidates:
            for ref in self.list_references():
                for h in self._history(ref_path(ref.name, ref.hash), limit=None):
                    if h.startswith(hash_):
                        candidates.add(h)
        if not candidates:
            raise ReferenceNotFoundError(f"no commit with hash '{hash_}'")
        if len(candidates) > 1:
            raise ReferenceNotFoundError(f"commit hash prefix '{hash_}' is ambiguous; give more characters")
        return candidates.pop()

    def get_commit(self, hash_: str) -> Commit:
        full = self._full_hash(hash_)
        meta = self._meta(full)
        return Commit(
            hash=full,
            parents=meta.parents,
            author=meta.author,
            message=meta.message,
            created_at=meta.created_at,
            contents=self._tree(full).tables(),
            operations=dict(meta.operations),
        )

    def _resolve(self, expr: str) -> tuple[Reference | None, Commit]:
        """The commit an expression names, and the reference it was read through (if any)."""
        spec = parse_ref(expr)
        ref: Reference | None = None
        if spec.name:
            try:
                ref = self.get_reference(spec.name)
            except ReferenceNotFoundError:
                if spec.hash is None and spec.at is None and HASH_RE.match(spec.name.lower()):
                    return None, self._walk(self.get_commit(spec.name), spec, expr)
                raise ReferenceNotFoundError(
                    f"unknown reference '{expr}': no branch, tag or commit named '{spec.name}'",
                    hint="list them with `rat branch list`",
                ) from None
        elif spec.name is None:
            ref = self.get_reference(self.default_branch)
        else:
            raise ReferenceNotFoundError(f"unknown reference '{expr}'")
        assert ref is not None
        if spec.hash is not None:
            # Like the embedded store, `name@hash` reads that commit (the name must exist).
            return ref, self._walk(self.get_commit(spec.hash), spec, expr)
        if spec.at is None and spec.back == 0:
            return ref, self.get_commit(ref.hash)
        relative = (f"*{_iso_instant(spec.at)}" if spec.at is not None else "") + (f"~{spec.back}" if spec.back else "")
        return ref, self._lookup(ref_path(ref.name, ref.hash, relative), spec, expr)

    def _walk(self, commit: Commit, spec: RefSpec, expr: str) -> Commit:
        if not spec.back:
            return commit
        return self._lookup(ref_path(None, commit.hash, f"~{spec.back}"), spec, expr)

    def _lookup(self, path: str, spec: RefSpec, expr: str) -> Commit:
        """Let Nessie evaluate `*<time>` / `~N` and return the commit it lands on."""
        try:
            first = next(iter(self._history(path, limit=1)), None)
        except NessieHTTPError as err:
            if err.status not in (400, 404):
                raise
            if spec.back:
                raise ReferenceNotFoundError(f"'{expr}' goes back past the first commit") from None
            # Before the first commit the branch held nothing: the empty root, as in the embedded store.
            first = None
        return self.get_commit(first or self.no_ancestor_hash)

    def resolve(self, expr: str) -> Commit:
        return self._resolve(expr)[1]

    def log(self, expr: str, limit: int | None = None) -> list[Commit]:
        start = self.resolve(expr)
        if start.hash == self.no_ancestor_hash or limit == 0:
            return []
        hashes = list(self._history(ref_path(None, start.hash), limit=limit))
        return [self.get_commit(h) for h in hashes if h != self.no_ancestor_hash]

    def commit(
        self,
        branch: str,
        expected_hash: str,
        changes: Mapping[str, TableEntry | None],
        operations: Mapping[str, str],
        *,
        message: str,
        author: str = "",
    ) -> Commit:
        ref = self.get_reference(branch)
        if ref.kind != "branch":
            raise ReferenceNotFoundError(f"no branch named '{branch}' (tags cannot be written)")
        base = self._tree(expected_hash)
        ops: list[dict[str, Any]] = []
        namespaces = {k for k, s in base.objects.items() if s.type == "NAMESPACE"}
        for key in sorted(changes):
            elements = tuple(key_to_elements(key))
            entry = changes[key]
            current = base.objects.get(elements)
            if entry is None:
                if current is not None:
                    ops.append({"type": "DELETE", "key": {"elements": list(elements)}})
                continue
            for depth in range(1, len(elements)):
                ns = elements[:depth]
                if ns not in namespaces:
                    namespaces.add(ns)
                    ops.append({"type": "PUT", "key": {"elements": list(ns)}, "content": {"type": "NAMESPACE", "elements": list(ns)}})
            new_type = "ICEBERG_VIEW" if entry.view_sql is not None else "ICEBERG_TABLE"
            same_object = (
                current is not None
                and current.type == new_type
                and operations.get(key) not in ("create", "replace", "drop")
            )
            if current is not None and not same_object:
                # A new table under an old name: Nessie's DROP + CREATE is DELETE + PUT without id.
                ops.append({"type": "DELETE", "key": {"elements": list(elements)}})
            content_id = current.content_id if same_object and current is not None else None
            ops.append({"type": "PUT", "key": {"elements": list(elements)}, "content": self._content(key, entry, content_id)})
        body = {"commitMeta": self._commit_meta(message, author, operations), "operations": ops}
        try:
            payload = self.http.request("POST", f"/trees/{ref_path(branch, expected_hash)}/history/commit", body=body)
        except NessieHTTPError as err:
            if err.status == 403:
                raise ProtectedBranchError(
                    f"Nessie refused a commit to branch '{branch}' (its authorization rules): {err.message}",
                    hint=f"write on another branch and merge it into '{branch}'",
                ) from None
            if err.status == 404:
                raise ReferenceNotFoundError(f"no branch named '{branch}': {err.message}") from None
            if err.status != 409:
                raise
            head = self.get_reference(branch).hash
            if head != expected_hash:
                raise StaleHeadError(branch, expected_hash, head) from None
            raise CommitConflictError(
                f"Nessie rejected the commit on '{branch}': {err.message}",
                tables=err.conflict_keys() or sorted(changes),
            ) from None
        return self.get_commit(payload["targetBranch"]["hash"])

    # -- merge --------------------------------------------------------------------------------

    def _parents(self, hash_: str) -> tuple[str, ...]:
        return self._meta(hash_).parents

    def _best_common_ancestors(self, a: str, b: str) -> list[str]:
        return best_common_ancestors(a, b, self._parents)

    def merge_base(self, a: str, b: str) -> Commit | None:
        best = self._best_common_ancestors(self.resolve(a).hash, self.resolve(b).hash)
        return self.get_commit(best[0]) if best else None

    def merge(self, source: str, target: str, *, message: str | None = None, author: str = "") -> MergeResult:
        for _ in range(MAX_MERGE_ATTEMPTS):
            src_ref, src = self._resolve(source)
            tgt_ref = self.get_reference(target)
            if tgt_ref.kind != "branch":
                raise ReferenceNotFoundError(f"'{target}' is a tag; merge into a branch")
            if source == target or (src.hash == tgt_ref.hash and parse_ref(source).name == target):
                raise InvalidNameError(f"cannot merge '{source}' into itself")
            tgt = self.get_commit(tgt_ref.hash)
            bases = self._best_common_ancestors(src.hash, tgt.hash)
            if src.hash in bases:
                return MergeResult(source=source, target=target, kind="up-to-date", commit=tgt)
            if tgt.hash in bases:
                if self._fast_forward(target, tgt.hash, src_ref, src.hash):
                    tables = sorted(changed_keys(tgt.contents, src.contents))
                    return MergeResult(source=source, target=target, kind="fast-forward", commit=src, tables=tables)
                continue
            base_contents = merge_base_contents([self.get_commit(h).contents for h in bases], src.contents, tgt.contents)
            merged, conflicts = three_way(base_contents, src.contents, tgt.contents)
            if conflicts:
                raise self._conflict(source, target, conflicts)
            ops = {k: "merge" for k in merged if merged.get(k) != tgt.contents.get(k)}
            ops.update({k: "drop" for k in tgt.contents if k not in merged})
            body: dict[str, Any] = {
                "fromRefName": src_ref.name if src_ref is not None else "DETACHED",
                "fromHash": src.hash,
                "commitMeta": self._commit_meta(message or f"merge {source} into {target}", author, ops),
                "defaultKeyMergeMode": "NORMAL",
                "dryRun": False,
                "returnConflictAsResult": False,
            }
            modes = self._namespace_merge_modes(bases, src.hash, tgt.hash)
            if len(bases) > 1:
                modes += self._criss_cross_merge_modes(base_contents, src.contents, tgt.contents, merged)
            if modes:
                body["keyMergeModes"] = modes
            try:
                payload = self._call("POST", f"/trees/{ref_path(target, tgt.hash)}/history/merge", body=body)
            except NessieHTTPError as err:
                if err.status != 409:
                    raise
                if self.get_reference(target).hash != tgt.hash:
                    continue  # the target moved: decide again on its new head
                tables = [k for k in err.conflict_keys() if "." in k] or err.conflict_keys() or sorted(ops)
                raise self._conflict(source, target, tables, detail=err.message) from None
            new = self.get_commit(payload.get("resultantTargetHash") or self.get_reference(target).hash)
            return MergeResult(source=source, target=target, kind="merge", commit=new, tables=sorted(ops))
        raise CommitConflictError(
            f"branch '{target}' kept moving while merging '{source}'; gave up after {MAX_MERGE_ATTEMPTS} attempts",
            hint="try the merge again",
        )

    def _fast_forward(self, target: str, expected: str, src_ref: Reference | None, src_hash: str) -> bool:
        """Move `target` from `expected` to `src_hash` (compare-and-swap); False if it moved meanwhile."""
        if src_ref is not None and src_ref.hash == src_hash:
            to = {"type": _KIND_TO_TYPE[src_ref.kind], "name": src_ref.name, "hash": src_hash}
        else:
            to = {"type": "DETACHED", "hash": src_hash}
        try:
            self._call("PUT", f"/trees/{ref_path(target, expected)}", params={"type": "BRANCH"}, body=to)
        except NessieHTTPError as err:
            if err.status == 409:
                return False
            raise
        return True

    def _namespace_merge_modes(self, bases: list[str], src: str, tgt: str) -> list[dict[str, Any]]:
        """Namespaces both sides created independently differ only by content id: keep the target's."""
        base_tree = self._tree(bases[0]) if bases else _Tree()
        src_tree, tgt_tree = self._tree(src), self._tree(tgt)
        modes = []
        for key, stored in sorted(src_tree.objects.items()):
            if stored.type != "NAMESPACE":
                continue
            theirs, before = tgt_tree.objects.get(key), base_tree.objects.get(key)
            if theirs is not None and theirs.type == "NAMESPACE" and theirs != stored and before != stored:
                modes.append({"key": {"elements": list(key)}, "mergeBehavior": "DROP"})
        return modes

    @staticmethod
    def _criss_cross_merge_modes(
        base: Mapping[str, TableEntry], src: Mapping[str, TableEntry], tgt: Mapping[str, TableEntry], merged: Mapping[str, TableEntry]
    ) -> list[dict[str, Any]]:
        """Pin every table's outcome when there are several merge bases.

        Nessie merges against one of them (the oldest), which can see a conflict where the
        three-way merge over all of them (ours, and the embedded store's) sees none; FORCE (take
        the source's change) or DROP (keep the target's) makes Nessie produce exactly `merged`.
        """
        modes = []
        for key in sorted(set(base) | set(src) | set(tgt)):
            if src.get(key) == tgt.get(key):
                continue
            behavior = "FORCE" if merged.get(key) != tgt.get(key) else "DROP"
            modes.append({"key": {"elements": key_to_elements(key)}, "mergeBehavior": behavior})
        return modes

    @staticmethod
    def _conflict(source: str, target: str, tables: list[str], detail: str | None = None) -> MergeConflictError:
        return MergeConflictError(
            f"cannot merge '{source}' into '{target}': {len(tables)} table(s) changed on both sides: "
            + ", ".join(tables)
            + (f" (Nessie: {detail})" if detail else ""),
            tables=tables,
            hint=f"nothing was changed on '{target}'; reconcile the tables on one branch and merge again",
        )

    def close(self) -> None:
        self.http.close()

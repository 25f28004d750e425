"""The REST contract: one pydantic model per response body of the `/ratatouille/…` endpoints.

server/service.py builds every answer through these models (`Model(...).model_dump()`), so a
field the frontend reads cannot silently disappear; server/tsgen.py turns them into the
TypeScript interfaces in labextension/src/api.ts, and tests/test_rest_contract.py fails when the
checked-in file and the models disagree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Session(_Body):
    """GET /ratatouille/session: the workspace and branch the server (and new kernels) use."""

    workspace: str
    workspace_root: str
    branch: str
    workspace_branch: str
    principal: str
    role: Literal["viewer", "editor", "owner"] | None
    home: str
    catalog: str
    profile: str


class Reference(_Body):
    """One branch or tag of a workspace."""

    name: str
    kind: Literal["branch", "tag"]
    hash: str
    protected: bool
    current: bool
    build: bool


class Branches(_Body):
    """GET /ratatouille/branches: the workspace's branches and tags (and main), the current one marked."""

    current: str
    default: str
    references: list[Reference]


class Version(_Body):
    """One released version of a product."""

    version: str
    created_at: float
    created_by: str
    refreshes: int


class Column(_Body):
    """One column of a product's schema."""

    name: str
    type: str
    required: bool


class Product(_Body):
    """GET /ratatouille/products/<name>: versions, owner, description, schema, freshness, the query to insert."""

    name: str
    owner: str
    description: str | None
    source: str
    latest: str | None
    versions: list[Version]
    schema_: list[Column] = Field(alias="schema")
    freshness_seconds: float | None
    freshness_sla_hours: float | None
    access: str
    subscribers: int
    query: str

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)


class Products(_Body):
    """GET /ratatouille/products?q=: the products this workspace may read."""

    workspace: str
    query: str
    products: list[Product]


class PromotedFile(_Body):
    """One pipeline file a promotion writes (or would write); `content` only in a preview (dry run).

    `lab_path` is where Lab finds the file (relative to the server root), None when it cannot."""

    path: str
    lab_path: str | None
    status: Literal["new", "unchanged", "overwrite", "conflict"]
    cell: int
    content: str | None = None


class PromotedModel(_Body):
    """What one cell becomes: a SQL model and its materialization, or a Python ingestion (`target`: its layer)."""

    cell: int
    name: str
    target: str
    kind: Literal["sql", "python"]
    materialized: str
    files: list[str]


class SkippedCell(_Body):
    """A notebook cell promotion left out, and why; `failed` when it is left out because it is broken."""

    cell: int
    reason: str
    failed: bool


class PromoteResult(_Body):
    """POST /ratatouille/promote: the preview (`dry_run`) or what was written (server/promote.py).

    Cell numbers are 1-based positions among all the notebook's cells."""

    notebook: str
    workspace: str
    workspace_root: str
    written: bool
    dry_run: bool
    files: list[PromotedFile]
    models: list[PromotedModel]
    skipped: list[SkippedCell]
    warnings: list[str]


class PromoteRequest(_Body):
    """The body of POST /ratatouille/promote (validated by server/promote.py's validate_body)."""

    path: str
    force: bool = False
    dry_run: bool = False
    skip: list[int] = Field(default_factory=list)


class TableColumn(_Body):
    """One column of a table, typed by DuckDB's name for it."""

    name: str
    type: str
    nullable: bool


class TableFreshness(_Body):
    """The age of a table's data against the model's `freshness:` or the product's SLA (`basis`)."""

    status: Literal["fresh", "warn", "stale", "unknown"]
    basis: Literal["model", "product", "age"]
    age_hours: float | None
    warn_after_hours: float | None
    error_after_hours: float | None
    column: str | None
    text: str


class TableItem(_Body):
    """One table (or view) of a layer: rows, columns, the commit that last changed it, its model, freshness."""

    table: str
    layer: str
    name: str
    kind: Literal["table", "view", "broken"]
    rows: int | None
    columns: list[TableColumn]
    snapshot_at: float | None
    commit: str | None
    model: str | None
    model_path: str | None
    freshness: TableFreshness
    error: str | None
    hint: str | None
    query: str
    lineage: str


class TableLayer(_Body):
    """A layer of the workspace and its tables."""

    name: str
    tables: list[TableItem]


class TablesResponse(_Body):
    """GET /ratatouille/tables?path=&branch=: the workspace's layers and tables on a ref (server/tables.py)."""

    workspace: str
    workspace_root: str
    ref: str
    commit: str
    layers: list[TableLayer]


class ErrorBody(BaseModel):
    """Any refused request: one-line message, optional hint, and endpoint-specific extra fields."""

    model_config = ConfigDict(extra="allow")

    message: str
    hint: str | None = None


RESPONSE_MODELS: list[type[BaseModel]] = [
    Session, Branches, Products, Product, PromoteResult, PromoteRequest, TablesResponse, ErrorBody,
]


# -- the branch and workspace menu (server/branches.py) -------------------------------------------


class BranchLine(_Body):
    """One branch or tag of the menu."""

    name: str
    kind: Literal["branch", "tag"]
    hash: str
    protected: bool
    current: bool
    default: bool
    build: bool
    head_time: float
    tables: int


class BuildGroup(_Body):
    """The leftover build branches started from one branch (`<parent>/build/…`)."""

    parent: str
    branches: list[BranchLine]


class BranchMenu(_Body):
    """GET branch/list: the workspace's own branches (build branches apart) and tags."""

    workspace: str
    workspace_root: str
    workspace_branch: str
    current: str
    default: str
    branches: list[BranchLine]
    builds: list[BuildGroup]
    tags: list[BranchLine]


class BranchChanged(_Body):
    """POST branch/create, branch/switch, branch/delete: what changed."""

    action: Literal["created", "switch", "deleted"]
    name: str
    hash: str
    workspace: str
    workspace_root: str


class ColumnChangeLine(_Body):
    name: str
    change: Literal["added", "removed", "retyped"]
    old_type: str | None
    new_type: str | None


class TableChange(_Body):
    """One table of a branch diff: net rows added, deleted and updated, schema changes, samples."""

    table: str
    status: Literal["added", "removed", "changed"]
    rows_added: int
    rows_deleted: int
    rows_updated: int
    net_rows: int
    rows_exact: bool
    method: Literal["summary", "key", "rows", "files"]
    schema_changes: list[ColumnChangeLine]
    sample: list[dict[str, Any]]


class BranchDiff(_Body):
    """GET branch/diff: what merging `source` into `into` would bring (its changes since the fork point)."""

    source: str
    into: str
    fork_point: str
    tables: list[TableChange]
    rows_added: int
    rows_deleted: int
    rows_updated: int


class MergeOutcome(_Body):
    """POST branch/merge."""

    source: str
    into: str
    kind: Literal["fast-forward", "merge", "up-to-date"]
    hash: str
    tables: list[str]


class PruneOutcome(_Body):
    """POST branch/prune: the build branches deleted (or that would be, with dry_run)."""

    deleted: list[str]
    dry_run: bool


class WorkspaceItem(_Body):
    name: str
    path: str
    branch: str
    role: Literal["viewer", "editor", "owner"] | None
    current: bool


class WorkspaceList(_Body):
    """GET workspaces: every registered workspace, your role in it, the notebook's marked."""

    current: str | None
    workspaces: list[WorkspaceItem]


RESPONSE_MODELS += [BranchMenu, BranchChanged, BranchDiff, MergeOutcome, PruneOutcome, WorkspaceList]

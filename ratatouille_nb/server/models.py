"""The REST contract: one pydantic model per response body of the `/ratatouille/…` endpoints.

server/service.py builds every answer through these models (`Model(...).model_dump()`), so a
field the frontend reads cannot silently disappear; server/tsgen.py turns them into the
TypeScript interfaces in labextension/src/api.ts, and tests/test_rest_contract.py fails when the
checked-in file and the models disagree.
"""

from __future__ import annotations

from typing import Literal

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
    """One pipeline file a promotion writes (or would write); `content` only in a dry run."""

    path: str
    status: Literal["new", "unchanged", "overwrite", "conflict"]
    cell: int
    content: str | None = None


class SkippedCell(_Body):
    """A notebook cell promotion left out, and why."""

    cell: int
    reason: str


class PromoteResult(_Body):
    """POST /ratatouille/promote: what was written (or, in a dry run, would be)."""

    notebook: str
    workspace: str
    workspace_root: str
    written: bool
    dry_run: bool
    files: list[PromotedFile]
    skipped: list[SkippedCell]
    warnings: list[str]


class PromoteRequest(_Body):
    """The body of POST /ratatouille/promote (validated by service.validate_promote_body)."""

    path: str
    force: bool = False
    dry_run: bool = False


class ErrorBody(BaseModel):
    """Any refused request: one-line message, optional hint, and endpoint-specific extra fields."""

    model_config = ConfigDict(extra="allow")

    message: str
    hint: str | None = None


RESPONSE_MODELS: list[type[BaseModel]] = [Session, Branches, Products, Product, PromoteResult, PromoteRequest, ErrorBody]

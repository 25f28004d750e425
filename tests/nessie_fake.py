"""An in-process Nessie (REST API v2 subset) that validates every request and response against the spec.

`tests/fixtures/nessie/nessie-openapi.yaml` is the static half of Nessie's OpenAPI document: server info and
`components.examples`, but `paths: {}` and no `components.schemas` (Nessie generates both from Java
annotations at build time). So the contract used here is that file plus:

* `SCHEMAS` — OpenAPI 3.0 schemas for the payloads the client uses, transcribed from Nessie's Java
  model (`org.projectnessie.model.*`, `api.v2.params.Merge`, `error.NessieError`, Nessie 0.108:
  field names, required/nullable, enums, the hash and ref-name patterns of `Validation`). Objects
  are closed (`additionalProperties: false`) so a misspelt field fails. The tests check that every
  example of the spec file validates against the schema of its payload, which ties the schemas to
  the spec.
* `PATHS` — the operations of the README's path table, with their parameters.

Every request the client sends is validated (path, query, body) with openapi-core before the fake
acts on it, and every response the fake returns is validated before it is sent. Violations are
collected in `FakeNessie.violations` (a bad request is also answered with HTTP 400, like Nessie).

Semantics follow Nessie's (new storage model): commits on `branch@expected` land on the current
head unless a touched key changed since `expected` (409 REFERENCE_CONFLICT), content ids are
assigned by the server and must be sent back to update content, DELETE+PUT without id replaces
content, namespaces must exist before a key under them is written (NAMESPACE_ABSENT), merges
create a merge commit with the source as second parent, report per-key conflicts (409, or 200 with
`returnConflictAsResult`), and honour `keyMergeModes` NORMAL/FORCE/DROP; `errorDetails` are only
sent to clients announcing `Nessie-Client-Spec: 2`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

NO_ANCESTOR = "2e1cfa82b035c26cbbbdae632cea070514eb8b773f616aaeaf668e2f0be8f10d"

# A copy of Nessie's OpenAPI document lives in the repository (tests/fixtures/nessie/README.md says where from).
SPEC_DIR = Path(__file__).resolve().parent / "fixtures" / "nessie"
SPEC_FILE = SPEC_DIR / "nessie-openapi.yaml"

# -- org.projectnessie.model.Validation ------------------------------------------------------------
HASH_RAW = r"[0-9a-fA-F]{8,64}"
REF_NAME_RAW = r"(?:[A-Za-z](?:(?:(?![.][.])[A-Za-z0-9./_-])*[A-Za-z0-9_-])?)|-"
RELATIVE_RAW = r"([~*^])([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{1,9}Z|([0-9]+))"
HASH_REGEX = f"^{HASH_RAW}$"
REF_NAME_REGEX = f"^(?:{REF_NAME_RAW})$"
REF_NAME_PATH_REGEX = f"^({REF_NAME_RAW})?(?:@({HASH_RAW})?)?({RELATIVE_RAW})*$"
HASH_OR_RELATIVE_REGEX = f"^({HASH_RAW})?((?:{RELATIVE_RAW})*)$"
CONFLICT_TYPES = [
    "UNKNOWN", "KEY_EXISTS", "KEY_DOES_NOT_EXIST", "PAYLOAD_DIFFERS", "CONTENT_ID_DIFFERS", "VALUE_DIFFERS",
    "NAMESPACE_ABSENT", "NOT_A_NAMESPACE", "NAMESPACE_NOT_EMPTY", "UNEXPECTED_HASH", "KEY_CONFLICT",
    "DOCUMENTATION_DIFFERS",
]
ERROR_CODES = [
    "UNKNOWN", "SERVICE_UNAVAILABLE", "REFERENCE_NOT_FOUND", "REFERENCE_ALREADY_EXISTS", "CONTENT_NOT_FOUND",
    "REFERENCE_CONFLICT", "REFLOG_NOT_FOUND", "BAD_REQUEST", "FORBIDDEN", "TOO_MANY_REQUESTS",
    "NAMESPACE_NOT_FOUND", "NAMESPACE_ALREADY_EXISTS", "NAMESPACE_NOT_EMPTY", "UNSUPPORTED_MEDIA_TYPE",
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer", "format": "int32"}
_LONG = {"type": "integer", "format": "int64"}
_TOKEN = {"type": "string", "nullable": True}
_MERGE_BEHAVIOR = {"type": "string", "enum": ["NORMAL", "FORCE", "DROP"]}

SCHEMAS: dict[str, Any] = {
    "Hash": {"type": "string", "pattern": HASH_REGEX},
    "ContentKey": _obj(
        {"elements": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"type": "string", "minLength": 1}}},
        ["elements"],
    ),
    # Content (org.projectnessie.model.Content and subtypes; `id` is server-assigned)
    "IcebergTable": _obj(
        {
            "type": {"type": "string", "enum": ["ICEBERG_TABLE"]},
            "id": _NSTR,
            "metadataLocation": {"type": "string", "minLength": 1},
            "snapshotId": _LONG,
            "schemaId": _INT,
            "specId": _INT,
            "sortOrderId": _INT,
        },
        ["type", "metadataLocation", "snapshotId", "schemaId", "specId", "sortOrderId"],
    ),
    "IcebergView": _obj(
        {
            "type": {"type": "string", "enum": ["ICEBERG_VIEW"]},
            "id": _NSTR,
            "metadataLocation": {"type": "string", "minLength": 1},
            "versionId": _LONG,
            "schemaId": _INT,
            "sqlText": {"type": "string", "minLength": 1, "nullable": True},
            "dialect": _NSTR,
        },
        ["type", "metadataLocation", "versionId", "schemaId"],
    ),
    "Namespace": _obj(
        {
            "type": {"type": "string", "enum": ["NAMESPACE"]},
            "id": _NSTR,
            "elements": {"type": "array", "items": _STR},
            "properties": {"type": "object", "additionalProperties": _STR},
        },
        ["type", "elements"],
    ),
    "Content": {"oneOf": [_ref("IcebergTable"), _ref("IcebergView"), _ref("Namespace")]},
    # References (Branch, Tag, Detached)
    "CommitMeta": _obj(
        {
            "hash": {"type": "string", "pattern": HASH_REGEX, "nullable": True},
            "committer": _NSTR,
            "author": _NSTR,  # v1 name, accepted by CommitMetaDeserializer
            "authors": {"type": "array", "items": _STR},
            "signedOffBy": _NSTR,  # v1
            "allSignedOffBy": {"type": "array", "items": _STR},
            "message": {"type": "string", "minLength": 1},
            "commitTime": {"type": "string", "format": "date-time", "nullable": True},
            "authorTime": {"type": "string", "format": "date-time", "nullable": True},
            "properties": {"type": "object", "additionalProperties": _STR},  # v1
            "allProperties": {"type": "object", "additionalProperties": {"type": "array", "items": _STR}},
            "parentCommitHashes": {"type": "array", "items": _ref("Hash")},
        },
        ["message"],
    ),
    "ReferenceMetadata": _obj(
        {
            "numCommitsAhead": {"type": "integer", "nullable": True},
            "numCommitsBehind": {"type": "integer", "nullable": True},
            "commitMetaOfHEAD": _ref("CommitMeta"),
            "commonAncestorHash": _NSTR,
            "numTotalCommits": {"type": "integer", "nullable": True},
        }
    ),
    "Branch": _obj(
        {
            "type": {"type": "string", "enum": ["BRANCH"]},
            "name": {"type": "string", "pattern": REF_NAME_REGEX},
            "hash": {"type": "string", "pattern": HASH_REGEX, "nullable": True},
            "metadata": _ref("ReferenceMetadata"),
        },
        ["type", "name"],
    ),
    "Tag": _obj(
        {
            "type": {"type": "string", "enum": ["TAG"]},
            "name": {"type": "string", "pattern": REF_NAME_REGEX},
            "hash": {"type": "string", "pattern": HASH_REGEX, "nullable": True},
            "metadata": _ref("ReferenceMetadata"),
        },
        ["type", "name"],
    ),
    "Detached": _obj(
        {
            "type": {"type": "string", "enum": ["DETACHED"]},
            "hash": {"type": "string", "minLength": 1, "pattern": HASH_OR_RELATIVE_REGEX},
            "metadata": _ref("ReferenceMetadata"),
        },
        ["type", "hash"],
    ),
    "Reference": {"oneOf": [_ref("Branch"), _ref("Tag"), _ref("Detached")]},
    "SingleReferenceResponse": _obj({"reference": _ref("Reference")}, ["reference"]),
    "ReferencesResponse": _obj(
        {"references": {"type": "array", "items": _ref("Reference")}, "hasMore": _BOOL, "token": _TOKEN},
        ["references"],
    ),
    # Operations and commits
    "Put": _obj(
        {"type": {"type": "string", "enum": ["PUT"]}, "key": _ref("ContentKey"), "content": _ref("Content")},
        ["type", "key", "content"],
    ),
    "Delete": _obj({"type": {"type": "string", "enum": ["DELETE"]}, "key": _ref("ContentKey")}, ["type", "key"]),
    "Unchanged": _obj({"type": {"type": "string", "enum": ["UNCHANGED"]}, "key": _ref("ContentKey")}, ["type", "key"]),
    "Operation": {"oneOf": [_ref("Put"), _ref("Delete"), _ref("Unchanged")]},
    "Operations": _obj(
        {"commitMeta": _ref("CommitMeta"), "operations": {"type": "array", "items": _ref("Operation")}},
        ["commitMeta", "operations"],
    ),
    "CommitResponse": _obj(
        {
            "targetBranch": _ref("Branch"),
            "addedContents": {
                "type": "array",
                "nullable": True,
                "items": _obj({"key": _ref("ContentKey"), "contentId": _STR}, ["key", "contentId"]),
            },
        },
        ["targetBranch"],
    ),
    "LogEntry": _obj(
        {
            "commitMeta": _ref("CommitMeta"),
            "parentCommitHash": _NSTR,
            "additionalParents": {"type": "array", "items": _STR},
            "operations": {"type": "array", "nullable": True, "items": _ref("Operation")},
        },
        ["commitMeta"],
    ),
    "LogResponse": _obj(
        {"logEntries": {"type": "array", "items": _ref("LogEntry")}, "hasMore": _BOOL, "token": _TOKEN},
        ["logEntries"],
    ),
    # Entries and contents
    "Entry": _obj(
        {
            "name": _ref("ContentKey"),
            "type": {"type": "string", "pattern": "^[A-Z_]+$"},
            "contentId": _NSTR,
            "content": _ref("Content"),
        },
        ["name", "type"],
    ),
    "EntriesResponse": _obj(
        {
            "entries": {"type": "array", "items": _ref("Entry")},
            "hasMore": _BOOL,
            "token": _TOKEN,
            "effectiveReference": _ref("Reference"),
        },
        ["entries"],
    ),
    "GetMultipleContentsRequest": _obj({"requestedKeys": {"type": "array", "items": _ref("ContentKey")}}, ["requestedKeys"]),
    "ContentWithKey": _obj({"key": _ref("ContentKey"), "content": _ref("Content")}, ["key", "content"]),
    "GetMultipleContentsResponse": _obj(
        {"contents": {"type": "array", "items": _ref("ContentWithKey")}, "effectiveReference": _ref("Reference")},
        ["contents"],
    ),
    "ContentResponse": _obj({"content": _ref("Content"), "effectiveReference": _ref("Reference")}, ["content"]),
    "DiffEntry": _obj({"key": _ref("ContentKey"), "from": _ref("Content"), "to": _ref("Content")}, ["key"]),
    "DiffResponse": _obj(
        {
            "diffs": {"type": "array", "items": _ref("DiffEntry")},
            "effectiveFromReference": _ref("Reference"),
            "effectiveToReference": _ref("Reference"),
            "hasMore": _BOOL,
            "token": _TOKEN,
        },
        ["diffs"],
    ),
    # Merge (api.v2.params.Merge, model.MergeKeyBehavior, model.MergeResponse)
    "MergeKeyBehavior": _obj(
        {
            "key": _ref("ContentKey"),
            "mergeBehavior": _MERGE_BEHAVIOR,
            "expectedTargetContent": _ref("Content"),
            "resolvedContent": _ref("Content"),
        },
        ["key", "mergeBehavior"],
    ),
    "Merge": _obj(
        {
            "fromRefName": {"type": "string", "pattern": REF_NAME_REGEX},
            "fromHash": _ref("Hash"),
            "message": {"type": "string", "minLength": 1, "nullable": True},
            "commitMeta": _ref("CommitMeta"),
            "keyMergeModes": {"type": "array", "items": _ref("MergeKeyBehavior")},
            "defaultKeyMergeMode": _MERGE_BEHAVIOR,
            "dryRun": _BOOL,
            "fetchAdditionalInfo": _BOOL,
            "returnConflictAsResult": _BOOL,
        },
        ["fromRefName", "fromHash"],
    ),
    # `conflictType` in the Java model; the spec's mergeResponseFail example says `type`.
    "Conflict": _obj(
        {
            "conflictType": {"type": "string", "enum": CONFLICT_TYPES, "nullable": True},
            "type": {"type": "string", "enum": CONFLICT_TYPES},
            "key": _ref("ContentKey"),
            "message": _STR,
        },
        ["message"],
    ),
    "ContentKeyDetails": _obj(
        {"key": _ref("ContentKey"), "mergeBehavior": _MERGE_BEHAVIOR, "conflict": _ref("Conflict")},
        ["key", "mergeBehavior"],
    ),
    "MergeResponse": _obj(
        {
            "wasApplied": _BOOL,
            "wasSuccessful": _BOOL,
            "resultantTargetHash": _NSTR,
            "commonAncestor": _NSTR,
            "targetBranch": _STR,
            "effectiveTargetHash": _STR,
            "expectedHash": _NSTR,
            "details": {"type": "array", "items": _ref("ContentKeyDetails")},
        },
        ["targetBranch", "effectiveTargetHash"],
    ),
    # Configuration and errors
    "NessieConfiguration": _obj(
        {
            "defaultBranch": {"type": "string", "minLength": 1, "nullable": True},
            "minSupportedApiVersion": _INT,
            "maxSupportedApiVersion": _INT,
            "actualApiVersion": _INT,
            "specVersion": _NSTR,
            "noAncestorHash": _NSTR,
            "repositoryCreationTimestamp": {"type": "string", "format": "date-time"},
            "oldestPossibleCommitTimestamp": {"type": "string", "format": "date-time"},
            "additionalProperties": {"type": "object", "additionalProperties": _STR},
        },
        ["maxSupportedApiVersion"],
    ),
    "ReferenceConflicts": _obj(
        {"type": {"type": "string", "enum": ["REFERENCE_CONFLICTS"]}, "conflicts": {"type": "array", "items": _ref("Conflict")}},
        ["type"],
    ),
    "NessieError": _obj(
        {
            "status": _INT,
            "reason": _STR,
            "message": _STR,
            "errorCode": {"type": "string", "enum": ERROR_CODES},
            "errorDetails": _ref("ReferenceConflicts"),
            "serverStackTrace": _NSTR,
        },
        ["status", "reason"],
    ),
}

# Which schema each example of `components.examples` is a payload of.
EXAMPLE_SCHEMAS: dict[str, str] = {
    "nessieConfigV1": "NessieConfiguration",
    "nessieConfig": "NessieConfiguration",
    "refObj": "Reference",
    "refObjNew": "Reference",
    "tagObj": "Reference",
    "hash": "Hash",
    "ContentKey": "ContentKey",
    "iceberg": "Content",
    "multiGetResponse": "GetMultipleContentsResponse",
    "multiGetRequest": "GetMultipleContentsRequest",
    "entriesResponse": "EntriesResponse",
    "entriesResponseV2": "EntriesResponse",
    "merge": "Merge",
    "mergeResponseSuccess": "MergeResponse",
    "mergeResponseFail": "MergeResponse",
    "operations": "Operations",
    "logResponseAdditionalInfo": "LogResponse",
    "logResponseSimple": "LogResponse",
    "multipleContentsResponse": "GetMultipleContentsResponse",
    "commitResponse": "CommitResponse",
    "contentResponseIceberg": "ContentResponse",
    "singleReferenceResponse": "SingleReferenceResponse",
    "singleReferenceResponseWithMetadata": "SingleReferenceResponse",
    "referencesResponse": "ReferencesResponse",
    "referencesResponseWithMetadata": "ReferencesResponse",
    "diffResponse": "DiffResponse",
    "diffResponseWithRef": "DiffResponse",
}
# Examples of `{ref}` path elements: checked against the ref parameter's pattern and the fake's parser.
REF_EXAMPLES = [
    "ref", "refWithHash", "refWithTimestampMillisSinceEpoch", "refWithTimestampInstant", "refWithNthPredecessor",
    "refWithMergeParent", "refDefault", "refDetached", "refForDiffWithHash",
]
# Examples of endpoints Ratatouille does not call (namespaces, transplant, reflog, CEL filters, …).
UNUSED_EXAMPLES = {
    "namespace", "referenceType", "nullHash", "ContentKeyGet", "namespaceName", "emptyNamespaceName",
    "namespacesResponse", "namespaceUpdate", "types", "transplant", "commitMessage", "referenceHistoryResponse",
} | {
    "expr_by_namespace", "expr_by_contentType", "expr_by_namespace_and_contentType", "expr_by_commit_author",
    "expr_by_commit_committer", "expr_by_commitTime", "expr_by_commit_operations_in_namespace",
    "expr_by_commit_operations_table_name", "expr_by_commit_operations_type", "expr_by_refType",
    "expr_by_ref_name", "expr_by_ref_commit",
}


def _param(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


_REF_PARAM = _param("ref", "path", {"type": "string", "pattern": REF_NAME_PATH_REGEX})
_PAGING = [_param("max-records", "query", {"type": "integer", "minimum": 1}), _param("page-token", "query", _STR)]
_TYPE_PARAM = {"type": "string", "enum": ["BRANCH", "TAG", "branch", "tag"]}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(schema)}}}


def _op(response: str, *, params: list[dict[str, Any]] | None = None, body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "parameters": params or [],
        "responses": {"200": {"description": "OK", **_json(response)}, "default": {"description": "error", **_json("NessieError")}},
    }
    if body:
        op["requestBody"] = {"required": True, **_json(body)}
    return op


PATHS: dict[str, Any] = {
    "/config": {"get": _op("NessieConfiguration")},
    "/trees": {
        "get": _op("ReferencesResponse", params=[_param("fetch", "query", {"type": "string", "enum": ["MINIMAL", "ALL"]}),
                                                 _param("filter", "query", _STR), *_PAGING]),
        "post": _op(
            "SingleReferenceResponse",
            params=[_param("name", "query", {"type": "string", "pattern": REF_NAME_REGEX}, True), _param("type", "query", _TYPE_PARAM, True)],
            body="Reference",
        ),
    },
    "/trees/{ref}": {
        "get": _op("SingleReferenceResponse", params=[_REF_PARAM, _param("fetch", "query", _STR)]),
        "put": _op("SingleReferenceResponse", params=[_REF_PARAM, _param("type", "query", _TYPE_PARAM)], body="Reference"),
        "delete": _op("SingleReferenceResponse", params=[_REF_PARAM, _param("type", "query", _TYPE_PARAM)]),
    },
    "/trees/{ref}/history": {
        "get": _op("LogResponse", params=[_REF_PARAM, _param("filter", "query", _STR), _param("limit-hash", "query", _ref("Hash")),
                                          _param("fetch", "query", {"type": "string", "enum": ["MINIMAL", "ALL"]}), *_PAGING]),
    },
    "/trees/{ref}/entries": {
        "get": _op("EntriesResponse", params=[_REF_PARAM, _param("content", "query", _BOOL), _param("filter", "query", _STR), *_PAGING]),
    },
    "/trees/{ref}/contents": {
        "post": _op("GetMultipleContentsResponse", params=[_REF_PARAM, _param("with-doc", "query", _BOOL)], body="GetMultipleContentsRequest"),
    },
    "/trees/{ref}/history/commit": {"post": _op("CommitResponse", params=[_REF_PARAM], body="Operations")},
    "/trees/{ref}/history/merge": {"post": _op("MergeResponse", params=[_REF_PARAM], body="Merge")},
}


def load_spec() -> dict[str, Any]:
    with SPEC_FILE.open() as fh:
        return yaml.safe_load(fh)


def contract_document(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec file with `SCHEMAS` and `PATHS` filled in (servers: the API v2 base path)."""
    doc = copy.deepcopy(spec if spec is not None else load_spec())
    doc.setdefault("components", {})["schemas"] = copy.deepcopy(SCHEMAS)
    doc["paths"] = copy.deepcopy(PATHS)
    doc["servers"] = [{"url": "/api/v2"}]
    return doc


class SpecValidator:
    """openapi-core over the contract document: validates requests, responses and lone payloads."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        from openapi_core import OpenAPI

        self.document = contract_document(spec)
        self.app = OpenAPI.from_dict(self.document)
        self._lock = threading.Lock()

    def payload_errors(self, schema: str, value: Any) -> list[str]:
        """Validation errors of `value` against `components.schemas[schema]` ($refs resolved)."""
        from openapi_schema_validator import OAS30Validator

        document = {"$ref": f"#/components/schemas/{schema}", "components": self.document["components"]}
        validator = OAS30Validator(document, format_checker=OAS30Validator.FORMAT_CHECKER)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(value)]

    def request(self, host: str, method: str, pattern: str, path_params: dict[str, str], query: list[tuple[str, str]], body: bytes | None, headers: dict[str, str]) -> Any:
        from openapi_core.testing import MockRequest
        from werkzeug.datastructures import ImmutableMultiDict

        req = MockRequest(
            host, method, "/api/v2" + pattern, path_pattern="/api/v2" + pattern, view_args=path_params,
            headers=headers, data=body, content_type="application/json" if body else "",
        )
        req.parameters.query = ImmutableMultiDict(query)
        return req

    def check_request(self, req: Any) -> str | None:
        try:
            with self._lock:
                self.app.validate_request(req)
        except Exception as exc:
            return _describe(exc)
        return None

    def check_response(self, req: Any, status: int, body: bytes) -> str | None:
        from openapi_core.testing import MockResponse

        try:
            with self._lock:
                self.app.validate_response(req, MockResponse(body, status_code=status))
        except Exception as exc:
            return _describe(exc)
        return None


_VALIDATOR_LOCK = threading.Lock()
_VALIDATOR: SpecValidator | None = None


def shared_validator() -> SpecValidator:
    """One validator per process (building it checks the whole document: ~3 s)."""
    global _VALIDATOR
    with _VALIDATOR_LOCK:
        if _VALIDATOR is None:
            _VALIDATOR = SpecValidator()
        return _VALIDATOR


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    for sub in getattr(exc, "schema_errors", None) or []:
        parts.append(f"  {'/'.join(map(str, sub.absolute_path))}: {sub.message}")
    cause = exc.__cause__
    while cause is not None:
        parts.append(f"  caused by {type(cause).__name__}: {cause}")
        for sub in getattr(cause, "schema_errors", None) or []:
            parts.append(f"    {'/'.join(map(str, sub.absolute_path))}: {sub.message}")
        cause = cause.__cause__
    return "\n".join(parts)


# -- the fake server's state ------------------------------------------------------------------------

Key = tuple[str, ...]


@dataclass
class FakeCommit:
    hash: str
    parents: list[str]
    meta: dict[str, Any]
    contents: dict[Key, dict[str, Any]]
    operations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.meta["commitTime"].replace("Z", "+00:00"))


class NessieProblem(Exception):
    """An error answer: HTTP status, Nessie error code, message, optional conflicts."""

    def __init__(self, status: int, code: str, message: str, conflicts: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.conflicts = status, code, message, conflicts


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}
_ROUTE = re.compile(r"^/api/v2/trees/(?P<ref>[^@]+@[^@/]*|[^/]+)(?P<rest>/history/commit|/history/merge|/history|/entries|/contents)?$")
_REF_PARSE = re.compile(REF_NAME_PATH_REGEX)
_RELATIVE = re.compile(RELATIVE_RAW)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _conflict(kind: str, key: Key, message: str) -> dict[str, Any]:
    return {"conflictType": kind, "key": {"elements": list(key)}, "message": message}


class FakeNessie:
    """A Nessie server on 127.0.0.1 (free port) in a background thread; use as a context manager."""

    def __init__(self, *, validate: bool = True, page_size: int = 50, default_branch: str = "main", token: str | None = None) -> None:
        self.lock = threading.RLock()
        self.token = token  # when set, every request must carry `Authorization: Bearer <token>` (else 401)
        self.default_branch = default_branch
        self.page_size = page_size
        self.commits: dict[str, FakeCommit] = {}
        self.refs: dict[str, tuple[str, str]] = {default_branch: ("BRANCH", NO_ANCESTOR)}
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.bodies: list[tuple[str, Any]] = []
        self.forbidden_commits: set[str] = set()
        self._counter = itertools.count()
        self.validator = shared_validator() if validate else None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:  # silence the default stderr log
                pass

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-nessie", daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v2"

    def __enter__(self) -> FakeNessie:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    # -- HTTP plumbing -----------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        method = h.command.lower()
        split = urlsplit(h.path)
        raw_path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        headers = {k: v for k, v in h.headers.items()}
        spec_level = int(h.headers.get("Nessie-Client-Spec") or 0)
        pattern, path_params = self._route(raw_path)
        req = None
        status, payload = 200, None
        try:
            if self.token is not None and headers.get("Authorization") != f"Bearer {self.token}":
                raise NessieProblem(401, "UNAUTHORIZED", "authentication required")
            if pattern is None:
                raise NessieProblem(404, "UNKNOWN", f"no such endpoint: {h.command} {raw_path}")
            if self.validator is not None:
                req = self.validator.request(f"http://{h.headers.get('Host')}", method, pattern, path_params, query, body, headers)
                problem = self.validator.check_request(req)
                if problem:
                    self.violations.append(f"request {h.command} {h.path}: {problem}")
                    raise NessieProblem(400, "BAD_REQUEST", f"request does not match the Nessie API: {problem}")
            data = json.loads(body) if body else None
            self.bodies.append((raw_path, data))
            with self.lock:
                payload = self._dispatch(method, pattern, path_params, dict(query), data)
        except NessieProblem as p:
            status = p.status
            payload = {"status": p.status, "reason": _REASONS.get(p.status, "Error"), "message": p.message, "errorCode": p.code}
            if p.conflicts is not None and spec_level >= 2:
                payload["errorDetails"] = {"type": "REFERENCE_CONFLICTS", "conflicts": p.conflicts}
        out = json.dumps(payload).encode()
        if self.validator is not None and req is not None:
            problem = self.validator.check_response(req, status, out)
            if problem:
                self.violations.append(f"response to {h.command} {h.path} ({status}): {problem}")
        self.requests.append((h.command, h.path, status))
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    @staticmethod
    def _route(raw_path: str) -> tuple[str | None, dict[str, str]]:
        if raw_path == "/api/v2/config":
            return "/config", {}
        if raw_path == "/api/v2/trees":
            return "/trees", {}
        m = _ROUTE.match(raw_path)
        if not m:
            return None, {}
        ref = unquote(m.group("ref")).replace("%40", "@")
        return "/trees/{ref}" + (m.group("rest") or ""), {"ref": ref}

    def _dispatch(self, method: str, pattern: str, params: dict[str, str], query: dict[str, str], body: Any) -> Any:
        ref = params.get("ref")
        if pattern == "/config":
            return {
                "defaultBranch": self.default_branch, "minSupportedApiVersion": 1, "maxSupportedApiVersion": 2,
                "actualApiVersion": 2, "specVersion": "2.2.0", "noAncestorHash": NO_ANCESTOR,
            }
        if pattern == "/trees":
            return self._list_refs(query) if method == "get" else self._create_ref(query, body)
        assert ref is not None
        if pattern == "/trees/{ref}":
            if method == "get":
                name, _h, _rel = self._parse(ref)
                if not name:
                    raise NessieProblem(400, "BAD_REQUEST", "a reference name is required")
                return {"reference": self._ref_json(name)}
            if method == "put":
                return self._assign(ref, query, body)
            return self._delete(ref, query)
        if pattern == "/trees/{ref}/history":
            return self._history(ref, query)
        if pattern == "/trees/{ref}/entries":
            return self._entries(ref, query)
        if pattern == "/trees/{ref}/contents":
            return self._contents(ref, body)
        if pattern == "/trees/{ref}/history/commit":
            return self._commit(ref, body)
        return self._merge(ref, body)

    # -- refs and history ----------------------------------------------------------------------------

    def _parse(self, ref: str) -> tuple[str | None, str | None, str]:
        m = _REF_PARSE.match(ref)
        if not m:
            raise NessieProblem(400, "BAD_REQUEST", f"Reference name must match {REF_NAME_PATH_REGEX} - but was: {ref}")
        name = m.group(1)
        if name == "-":
            name = self.default_branch
        return name, m.group(2), ref[m.start(3):] if m.group(3) else ""

    def _ref_json(self, name: str) -> dict[str, str]:
        if name not in self.refs:
            raise NessieProblem(404, "REFERENCE_NOT_FOUND", f"Named reference '{name}' not found")
        kind, head = self.refs[name]
        return {"type": kind, "name": name, "hash": head}

    def _first_parents(self, start: str) -> Iterator[FakeCommit]:
        h = start
        while h != NO_ANCESTOR:
            c = self.commits[h]
            yield c
            h = c.parents[0]

    def _lookup_hash(self, hash_: str) -> str:
        hash_ = hash_.lower()
        if hash_ == NO_ANCESTOR or hash_ in self.commits:
            return hash_
        raise NessieProblem(404, "REFERENCE_NOT_FOUND", f"Commit '{hash_}' not found")

    def _resolve(self, ref: str) -> tuple[dict[str, str], str]:
        """(effective reference JSON, commit hash) of a `{ref}` path element."""
        name, hash_, relative = self._parse(ref)
        if hash_ is not None:
            start = self._lookup_hash(hash_)
            if name is not None:
                self._ref_json(name)
                if start != NO_ANCESTOR and start not in {c.hash for c in self._first_parents(self.refs[name][1])} \
                        and not self._is_ancestor(start, self.refs[name][1]):
                    raise NessieProblem(404, "REFERENCE_NOT_FOUND", f"Could not find commit '{start}' in reference '{name}'.")
        elif name is not None:
            start = self._ref_json(name)["hash"]
        else:
            raise NessieProblem(400, "BAD_REQUEST", f"'{ref}' names no reference and no commit")
        current = start
        for m in _RELATIVE.finditer(relative):
            op, value = m.group(1), m.group(2)
            if op == "~":
                for _ in range(int(value)):
                    if current == NO_ANCESTOR:
                        raise NessieProblem(404, "REFERENCE_NOT_FOUND", f"'{ref}' goes beyond the beginning of the history")
                    current = self.commits[current].parents[0]
            elif op == "^":
                parents = self.commits[current].parents if current != NO_ANCESTOR else []
                if not 1 <= int(value) <= len(parents):
                    raise NessieProblem(404, "REFERENCE_NOT_FOUND", f"commit has no parent #{value}")
                current = parents[int(value) - 1]
            else:
                at = datetime.fromtimestamp(int(value) / 1000, tz=UTC) if value.isdigit() else \
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                found = next((c.hash for c in self._first_parents(current) if c.time <= at), None)
                if found is None:
                    raise NessieProblem(404, "REFERENCE_NOT_FOUND", f"no commit at or before {value} in '{ref}'")
                current = found
        if name is not None and hash_ is None and not relative:
            effective = self._ref_json(name)
        elif name is not None:
            effective = {"type": self.refs[name][0], "name": name, "hash": current}
        else:
            effective = {"type": "DETACHED", "hash": current}
        return effective, current

    def _is_ancestor(self, candidate: str, of: str) -> bool:
        stack, seen = [of], set()
        while stack:
            h = stack.pop()
            if h == candidate:
                return True
            if h in seen or h == NO_ANCESTOR:
                continue
            seen.add(h)
            stack.extend(self.commits[h].parents)
        return candidate == NO_ANCESTOR

    def _page(self, items: list[Any], query: dict[str, str]) -> tuple[list[Any], bool, str | None]:
        size = min(int(query.get("max-records") or self.page_size), self.page_size)
        start = int(query.get("page-token") or 0)
        chunk = items[start:start + size]
        more = start + size < len(items)
        return chunk, more, str(start + size) if more else None

    def _list_refs(self, query: dict[str, str]) -> Any:
        refs = [self._ref_json(n) for n in sorted(self.refs)]
        chunk, more, token = self._page(refs, query)
        out: dict[str, Any] = {"references": chunk, "hasMore": more}
        if token:
            out["token"] = token
        return out

    def _create_ref(self, query: dict[str, str], body: Any) -> Any:
        name, kind = query["name"], query["type"].upper()
        if name in ("HEAD", "DETACHED") or re.match(HASH_REGEX, name):
            raise NessieProblem(400, "BAD_REQUEST", f"Reference name mut not be HEAD, DETACHED or a potential commit ID representation. - but was {name}")
        if name in self.refs:
            raise NessieProblem(409, "REFERENCE_ALREADY_EXISTS", f"Named reference '{name}' already exists.")
        if body.get("type") == "DETACHED":
            target = self._lookup_hash(body["hash"])
        elif body.get("hash"):
            self._ref_json(body["name"])
            target = self._lookup_hash(body["hash"])
        else:
            target = self._ref_json(body["name"])["hash"]
        self.refs[name] = (kind, target)
        return {"reference": self._ref_json(name)}

    def _checked_ref(self, ref: str, query: dict[str, str]) -> tuple[str, str]:
        name, hash_, relative = self._parse(ref)
        if not name or relative:
            raise NessieProblem(400, "BAD_REQUEST", f"'{ref}' is not a reference name with an expected hash")
        current = self._ref_json(name)
        if query.get("type") and query["type"].upper() != current["type"]:
            raise NessieProblem(400, "BAD_REQUEST", f"Expected reference type {query['type'].upper()} does not match existing reference {current['type']}")
        if hash_ is None:
            raise NessieProblem(400, "BAD_REQUEST", "the expected hash is required")
        if hash_.lower() != current["hash"]:
            raise NessieProblem(409, "REFERENCE_CONFLICT", f"Named-reference '{name}' is not at expected hash '{hash_}', but at '{current['hash']}'.",
                                [{"conflictType": "UNEXPECTED_HASH", "message": "unexpected hash"}])
        return name, current["type"]

    def _assign(self, ref: str, query: dict[str, str], body: Any) -> Any:
        name, kind = self._checked_ref(ref, query)
        if body.get("type") == "DETACHED" or body.get("hash"):
            target = self._lookup_hash(body["hash"])
        else:
            target = self._ref_json(body["name"])["hash"]
        self.refs[name] = (kind, target)
        return {"reference": self._ref_json(name)}

    def _delete(self, ref: str, query: dict[str, str]) -> Any:
        name, _kind = self._checked_ref(ref, query)
        if name == self.default_branch:
            raise NessieProblem(400, "BAD_REQUEST", f"Default branch '{name}' cannot be deleted.")
        out = {"reference": self._ref_json(name)}
        del self.refs[name]
        return out

    def _meta_json(self, c: FakeCommit) -> dict[str, Any]:
        return {**c.meta, "hash": c.hash, "parentCommitHashes": list(c.parents)}

    def _history(self, ref: str, query: dict[str, str]) -> Any:
        _eff, start = self._resolve(ref)
        limit = query.get("limit-hash")
        entries = []
        for c in self._first_parents(start):
            entry: dict[str, Any] = {"commitMeta": self._meta_json(c), "parentCommitHash": c.parents[0]}
            if query.get("fetch") == "ALL":
                entry["operations"] = c.operations
            entries.append(entry)
            if limit and c.hash == limit.lower():
                break
        chunk, more, token = self._page(entries, query)
        out: dict[str, Any] = {"logEntries": chunk, "hasMore": more}
        if token:
            out["token"] = token
        return out

    def _tree(self, hash_: str) -> dict[Key, dict[str, Any]]:
        return {} if hash_ == NO_ANCESTOR else self.commits[hash_].contents

    def _entries(self, ref: str, query: dict[str, str]) -> Any:
        effective, h = self._resolve(ref)
        with_content = query.get("content") == "true"
        items = []
        for key, content in sorted(self._tree(h).items()):
            item: dict[str, Any] = {"name": {"elements": list(key)}, "type": content["type"], "contentId": content["id"]}
            if with_content:
                item["content"] = content
            items.append(item)
        chunk, more, token = self._page(items, query)
        out: dict[str, Any] = {"entries": chunk, "hasMore": more, "effectiveReference": effective}
        if token:
            out["token"] = token
        return out

    def _contents(self, ref: str, body: Any) -> Any:
        effective, h = self._resolve(ref)
        tree = self._tree(h)
        found = [{"key": k, "content": tree[tuple(k["elements"])]} for k in body["requestedKeys"] if tuple(k["elements"]) in tree]
        return {"contents": found, "effectiveReference": effective}

    # -- commits -------------------------------------------------------------------------------------

    def _new_hash(self, *parts: Any) -> str:
        seed = json.dumps([next(self._counter), os.getpid(), *map(str, parts)]).encode()
        return hashlib.sha256(seed).hexdigest()

    def _server_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        if meta.get("committer"):
            raise NessieProblem(400, "BAD_REQUEST", "the committer is set by the server, not by clients")
        if not (meta.get("message") or "").strip():
            raise NessieProblem(400, "BAD_REQUEST", "commitMeta.message must not be blank")
        now = _iso(datetime.now(UTC))
        authors = list(meta.get("authors") or ([meta["author"]] if meta.get("author") else []))
        props = {k: [v] for k, v in (meta.get("properties") or {}).items()}
        props.update(meta.get("allProperties") or {})
        out: dict[str, Any] = {"committer": "", "authors": authors, "allSignedOffBy": [], "message": meta["message"],
                               "commitTime": now, "authorTime": meta.get("authorTime") or now}
        if props:
            out["allProperties"] = props
        return out

    def _branch_at(self, ref: str) -> tuple[str, str]:
        """Target of commit/merge: `branch@expected` (expected hash optional), must be a branch."""
        name, hash_, relative = self._parse(ref)
        if not name or relative:
            raise NessieProblem(400, "BAD_REQUEST", f"'{ref}' is not a branch name with an expected hash")
        current = self._ref_json(name)
        if current["type"] != "BRANCH":
            raise NessieProblem(400, "BAD_REQUEST", f"'{name}' is not a branch")
        expected = self._lookup_hash(hash_) if hash_ else current["hash"]
        if expected != current["hash"] and not self._is_ancestor(expected, current["hash"]):
            raise NessieProblem(409, "REFERENCE_CONFLICT", f"expected hash '{expected}' is not in the history of '{name}'",
                                [{"conflictType": "UNEXPECTED_HASH", "message": "expected hash not on branch"}])
        return name, expected

    def _commit(self, ref: str, body: Any) -> Any:
        name, expected = self._branch_at(ref)
        if name in self.forbidden_commits:
            raise NessieProblem(403, "FORBIDDEN", f"'COMMIT_CHANGE_AGAINST_REFERENCE' is not allowed for reference '{name}'")
        head = self.refs[name][1]
        base, current = self._tree(expected), self._tree(head)
        result = dict(current)
        conflicts: list[dict[str, Any]] = []
        seen: dict[Key, str] = {}
        added: list[dict[str, Any]] = []
        ops = body["operations"]
        for op in ops:
            key = tuple(op["key"]["elements"])
            kind = op["type"]
            previous = seen.get(key)
            if previous is not None and not (previous == "DELETE" and kind == "PUT"):
                raise NessieProblem(400, "BAD_REQUEST", f"duplicate key in operations: {'.'.join(key)}")
            seen[key] = kind
            if kind == "UNCHANGED":
                if base.get(key) != current.get(key):
                    conflicts.append(_conflict("VALUE_DIFFERS", key, f"values of existing and expected content for key '{'.'.join(key)}' are different"))
                continue
            if kind == "DELETE":
                if key not in base:
                    conflicts.append(_conflict("KEY_DOES_NOT_EXIST", key, f"key '{'.'.join(key)}' does not exist"))
                elif current.get(key) != base.get(key):
                    conflicts.append(_conflict("VALUE_DIFFERS", key, f"values of existing and expected content for key '{'.'.join(key)}' are different"))
                result.pop(key, None)
                continue
            content = dict(op["content"])
            deleted_here = previous == "DELETE"
            if content.get("id") is None:
                if (key in base or key in current) and not deleted_here:
                    conflicts.append(_conflict("KEY_EXISTS", key, f"key '{'.'.join(key)}' already exists"))
                    continue
                content["id"] = str(uuid.uuid4())
                added.append({"key": {"elements": list(key)}, "contentId": content["id"]})
            else:
                existing = base.get(key)
                if existing is None:
                    conflicts.append(_conflict("KEY_DOES_NOT_EXIST", key, f"key '{'.'.join(key)}' does not exist"))
                    continue
                if existing["id"] != content["id"]:
                    conflicts.append(_conflict("CONTENT_ID_DIFFERS", key, f"content id of key '{'.'.join(key)}' differs"))
                    continue
                if existing["type"] != content["type"]:
                    conflicts.append(_conflict("PAYLOAD_DIFFERS", key, f"content type of key '{'.'.join(key)}' differs"))
                    continue
                if current.get(key) != existing:
                    conflicts.append(_conflict("VALUE_DIFFERS", key, f"values of existing and expected content for key '{'.'.join(key)}' are different"))
                    continue
            if content["type"] == "NAMESPACE" and content.get("elements") != list(key):
                raise NessieProblem(400, "BAD_REQUEST", "namespace elements must equal the key")
            result[key] = content
        for key in result:
            for depth in range(1, len(key)):
                ns = result.get(key[:depth])
                if ns is None or ns["type"] != "NAMESPACE":
                    conflicts.append(_conflict("NAMESPACE_ABSENT", key[:depth], f"namespace '{'.'.join(key[:depth])}' must exist"))
        if conflicts:
            raise NessieProblem(409, "REFERENCE_CONFLICT", "There are conflicts that prevent committing the provided operations: "
                                + ", ".join(c["message"] for c in conflicts), conflicts)
        meta = self._server_meta(body["commitMeta"])
        new = FakeCommit(self._new_hash(head, body), [head], meta, result, [o for o in ops if o["type"] != "UNCHANGED"])
        self.commits[new.hash] = new
        self.refs[name] = ("BRANCH", new.hash)
        out: dict[str, Any] = {"targetBranch": {"type": "BRANCH", "name": name, "hash": new.hash}}
        if added:
            out["addedContents"] = added
        return out

    # -- merges --------------------------------------------------------------------------------------

    def _distances(self, start: str) -> dict[str, int]:
        dist, frontier = {start: 0}, [start]
        while frontier:
            nxt = []
            for h in frontier:
                for p in (self.commits[h].parents if h != NO_ANCESTOR else []):
                    if p not in dist:
                        dist[p] = dist[h] + 1
                        nxt.append(p)
            frontier = nxt
        return dist

    def _seq(self, h: str) -> int:
        n = 0
        while h != NO_ANCESTOR:
            h, n = self.commits[h].parents[0], n + 1
        return n

    def merge_base(self, a: str, b: str) -> str:
        """Nessie's `MergeBase`: the best common ancestors, of which the one with the lowest commit seq."""
        da, db = self._distances(a), self._distances(b)
        common = da.keys() & db.keys()
        redundant = {x for c in common for x in self._distances(c) if x != c}
        best = common - redundant
        return min(best, key=lambda h: (self._seq(h), h))

    def _merge(self, ref: str, body: Any) -> Any:
        name, expected = self._branch_at(ref)
        head = self.refs[name][1]
        if expected != head:
            raise NessieProblem(409, "REFERENCE_CONFLICT", f"Named-reference '{name}' is not at expected hash '{expected}', but at '{head}'.",
                                [{"conflictType": "UNEXPECTED_HASH", "message": "unexpected hash"}])
        source = self._lookup_hash(body["fromHash"])
        if body["fromRefName"] != "DETACHED":
            self._ref_json(body["fromRefName"])
        base_hash = self.merge_base(source, head)
        base, src, tgt = self._tree(base_hash), self._tree(source), self._tree(head)
        modes = {tuple(m["key"]["elements"]): m["mergeBehavior"] for m in body.get("keyMergeModes") or []}
        default_mode = body.get("defaultKeyMergeMode") or "NORMAL"
        result = dict(tgt)
        details, conflicts = [], []
        for key in sorted(set(base) | set(src)):
            if base.get(key) == src.get(key):
                continue
            mode = modes.get(key, default_mode)
            detail: dict[str, Any] = {"key": {"elements": list(key)}, "mergeBehavior": mode}
            if mode == "DROP":
                details.append(detail)
                continue
            if mode == "NORMAL" and tgt.get(key) != base.get(key) and tgt.get(key) != src.get(key):
                kind = "KEY_EXISTS" if base.get(key) is None else "VALUE_DIFFERS"
                detail["conflict"] = _conflict(kind, key, f"values of existing and expected content for key '{'.'.join(key)}' are different")
                conflicts.append(detail["conflict"])
            elif src.get(key) is None:
                result.pop(key, None)
            else:
                result[key] = src[key]
            details.append(detail)
        response: dict[str, Any] = {
            "targetBranch": name, "effectiveTargetHash": head, "expectedHash": expected, "commonAncestor": base_hash,
            "details": details,
        }
        if conflicts:
            if body.get("returnConflictAsResult"):
                return {**response, "wasApplied": False, "wasSuccessful": False, "resultantTargetHash": head}
            raise NessieProblem(409, "REFERENCE_CONFLICT", "The following keys have been changed in conflict: "
                                + ", ".join(f"'{'.'.join(c['key']['elements'])}'" for c in conflicts), conflicts)
        if body.get("dryRun"):
            return {**response, "wasApplied": False, "wasSuccessful": True, "resultantTargetHash": head}
        meta_in = dict(body.get("commitMeta") or {"message": body.get("message") or f"Merged {body['fromRefName']} at {source} into {name}"})
        if not meta_in.get("message"):
            meta_in["message"] = body.get("message") or f"Merged {body['fromRefName']} at {source} into {name}"
        new = FakeCommit(self._new_hash(head, source, body), [head, source], self._server_meta(meta_in), result)
        self.commits[new.hash] = new
        self.refs[name] = ("BRANCH", new.hash)
        return {**response, "wasApplied": True, "wasSuccessful": True, "resultantTargetHash": new.hash}

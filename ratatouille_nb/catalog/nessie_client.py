"""The HTTP half of the Nessie backend: REST API v2 requests, error payloads, ref paths and content keys.

Kept apart from `nessie.py` (the `VersionStore` semantics) so the wire format lives in one place.
Only `requests` is used (already installed as a pyiceberg dependency). Nessie's error body is
`{status, reason, message, errorCode, errorDetails?}`; `errorDetails` (the list of conflicting
keys) is only sent to clients that announce `Nessie-Client-Spec: 2`, which this client does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ratatouille_nb.errors import CatalogError, ConfigError

# Nessie's "beginning of time": the parent of every first commit; it never exists as a commit.
NO_ANCESTOR_HASH = "2e1cfa82b035c26cbbbdae632cea070514eb8b773f616aaeaf668e2f0be8f10d"

# org.projectnessie.model.Validation (Nessie 0.108): names start with a letter; hashes are 4-32 bytes.
REF_NAME_RE = re.compile(r"^(?:[A-Za-z](?:(?:(?![.][.])[A-Za-z0-9./_-])*[A-Za-z0-9_-])?)$")
FULL_HASH_RE = re.compile(r"^[0-9a-f]{64}$")

_KEY_SPECIAL = "./\\%"
_KEY_ESCAPES = {".": "*.", "*": "**", "/": "*{", "\\": "*}", "%": "*["}


@dataclass(eq=False)
class NessieHTTPError(CatalogError):
    """A non-2xx answer from Nessie, with its parsed `NessieError` payload.

    The store maps the answers it expects (404, 409, …) to specific errors; any other one reaches
    the user as this `CatalogError` with Nessie's own message.
    """

    status: int
    error_code: str
    message: str
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"Nessie answered HTTP {self.status} {self.error_code}: {self.message}"

    def conflict_keys(self) -> list[str]:
        """Dotted content keys named by the conflicts in `errorDetails` (empty if none were sent)."""
        keys = []
        for conflict in self.conflicts:
            key = conflict.get("key") or {}
            if key.get("elements"):
                keys.append(elements_to_key(key["elements"]))
        return sorted(set(keys))


def key_to_elements(key: str) -> list[str]:
    """`layer.table` -> `["layer", "table"]` (the layer is everything before the first dot)."""
    layer, sep, name = key.partition(".")
    return [layer, name] if sep else [layer]


def elements_to_key(elements: Sequence[str]) -> str:
    """Nessie key elements -> our dotted `layer.table` name."""
    return ".".join(elements)


def key_path_string(elements: Sequence[str]) -> str:
    """A content key for a URL path or query, escaped like Nessie's `Util.toPathStringEscaped()`.

    Keys of plain elements are joined with `.` (`bronze.sales`). If any element holds `.`, `/`,
    `\\` or `%`, the key starts with `.`, every element is preceded by `.`, and `.`->`*.`,
    `*`->`**`, `/`->`*{`, `\\`->`*}`, `%`->`*[` (the README's rules, Nessie 0.108). Ratatouille sends
    keys in JSON bodies only; this is here for URLs built by hand and for tests.
    """
    if not any(c in element for element in elements for c in _KEY_SPECIAL):
        return ".".join(elements)
    return "".join("." + "".join(_KEY_ESCAPES.get(c, c) for c in element) for element in elements)


def ref_path(name: str | None = None, hash_: str | None = None, relative: str = "") -> str:
    """A `{ref}` path element: `name`, `name@hash`, `@hash`, plus `*<time>` / `~N` lookups.

    A name holding `/` must be followed by `@` (Nessie's `Util.toPathStringRef`), so the server
    can tell the ref from the rest of the path (`my/branch@/history`).
    """
    text = name or ""
    if hash_ or (name and "/" in name):
        text += "@"
    text += hash_ or ""
    return text + relative


def normalize_uri(uri: str) -> str:
    """`http://host:19120`, `…/api` or `…/api/v2` -> the API v2 base URL (no trailing slash)."""
    uri = uri.strip().rstrip("/")
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"NESSIE_URI '{uri}' is not an http(s) URL", hint="set NESSIE_URI=http://host:19120/api/v2"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        raise ConfigError(
            f"NESSIE_URI '{uri}' points at Nessie's REST API v1; Ratatouille speaks API v2",
            hint="use …/api/v2",
        )
    if not path.endswith("/v2"):
        path = path + "/v2" if path.endswith("/api") else path + "/api/v2"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class NessieHTTP:
    """Thin JSON-over-HTTP client for one Nessie server (one `requests.Session` per thread)."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 60.0) -> None:
        self.base_url = normalize_uri(base_url)
        self.timeout = timeout
        self.headers = {
            "Accept": "application/json",
            "Nessie-Client-Spec": "2",
            **dict(headers or {}),
        }
        self._local = threading.local()

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers.update(self.headers)
            self._local.session = session
        return session

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body, raises `NessieHTTPError` on 4xx/5xx."""
        import requests

        url = self.base_url + quote(path, safe="/@~*^:-._")
        query = {k: ("true" if v is True else "false" if v is False else v) for k, v in (params or {}).items() if v is not None}
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            resp = self._session().request(method, url, params=query, data=data, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CatalogError(
                f"cannot reach Nessie at {self.base_url}: {exc.__class__.__name__}: {exc}",
                hint="check NESSIE_URI and that the Nessie server is running",
            ) from None
        if resp.status_code >= 400:
            raise _error_from(resp)
        if not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            raise CatalogError(f"Nessie at {self.base_url} sent a non-JSON answer to {method} {path}") from None

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


def _error_from(resp: Any) -> NessieHTTPError:
    try:
        payload = resp.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    details = payload.get("errorDetails") or {}
    conflicts = details.get("conflicts") if isinstance(details, dict) else None
    return NessieHTTPError(
        status=int(payload.get("status") or resp.status_code),
        error_code=str(payload.get("errorCode") or "UNKNOWN"),
        message=str(payload.get("message") or payload.get("reason") or resp.reason or ""),
        conflicts=list(conflicts or []),
    )

"""Reference names and expressions: git-like branch/tag rules and `name@hash`, `name@time`, `name~N`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ratatouille_nb.errors import InvalidNameError, ReferenceNotFoundError

HASH_RE = re.compile(r"^[0-9a-f]{6,64}$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def validate_ref_name(name: str) -> str:
    """Apply git's check-ref-format rules (the subset that matters) and return the name."""
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > 200:
        problem = "is longer than 200 characters"
    elif name.startswith("/") or name.endswith("/") or "//" in name:
        problem = "has an empty path segment"
    elif ".." in name or "@{" in name or name.endswith((".lock", ".")):
        problem = "contains '..', '@{', or ends with '.' or '.lock'"
    elif any(not _SEGMENT_RE.match(seg) for seg in name.split("/")):
        problem = "segments must start with a letter or digit and use only letters, digits, '.', '_', '-'"
    elif HASH_RE.match(name) and len(name) >= 40:
        problem = "looks like a commit hash"
    if problem:
        raise InvalidNameError(f"invalid reference name '{name}': {problem}")
    return name


@dataclass(frozen=True)
class RefSpec:
    """A parsed ref expression: a base name or hash, plus an optional point in its history."""

    name: str | None
    hash: str | None = None
    at: datetime | None = None
    back: int = 0


def parse_time(text: str) -> datetime:
    """ISO-8601 (date or date-time, naive = UTC) or epoch milliseconds."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReferenceNotFoundError(f"'{text}' is neither a commit hash nor a timestamp") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_ref(expr: str) -> RefSpec:
    """Parse `main`, `abc123…`, `main@abc123`, `main@2024-05-01T10:00`, `main*<ts>`, `main~2`."""
    text = expr.strip()
    if not text:
        raise ReferenceNotFoundError("empty reference")
    back = 0
    if m := re.match(r"^(.*)~(\d+)$", text):
        text, back = m.group(1), int(m.group(2))
    for sep in ("@", "*"):
        if sep in text:
            name, _, point = text.partition(sep)
            if sep == "@" and HASH_RE.match(point.lower()):
                return RefSpec(name or None, hash=point.lower(), back=back)
            return RefSpec(name or None, at=parse_time(point), back=back)
    return RefSpec(text, back=back)

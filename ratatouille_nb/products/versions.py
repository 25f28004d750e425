"""Semantic versions and npm/cargo-style constraints (`^2.0.0`, `~2.1`, `2.x`, `latest`, exact, ranges).

Parsing and comparison are the `semver` package's; this module only turns the shorthand
constraints into `semver` comparison clauses.
"""

from __future__ import annotations

import re

import semver

from ratatouille_nb.products.errors import ProductError, ProductNotFoundError

_PARTIAL = re.compile(r"^v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")


def parse_version(text: str) -> semver.Version:
    """A full semantic version (`1.2.3`, `1.2.3-rc.1`); anything else is a ProductError."""
    try:
        return semver.Version.parse(text.strip().removeprefix("v"))
    except (ValueError, TypeError):
        raise ProductError(f"invalid version '{text}': use MAJOR.MINOR.PATCH, e.g. 1.0.0") from None


def _clauses(constraint: str) -> list[str]:
    text = constraint.strip()
    if text in ("", "*", "x", "X", "latest"):
        return []
    if "," in text or " " in text.strip():
        return [c for part in re.split(r"[,\s]+", text) if part for c in _clauses(part)]
    op = next((o for o in (">=", "<=", "==", "!=", ">", "<") if text.startswith(o)), None)
    if op:
        return [f"{op}{parse_version(text[len(op):])}"]
    if text[0] in "^~":
        m = _PARTIAL.match(text[1:])
        if not m:
            raise ProductError(f"invalid version constraint '{constraint}'")
        major_text, minor_text, patch_text = m.groups()
        major = int(major_text) if major_text and major_text.isdigit() else 0
        minor = int(minor_text) if minor_text and minor_text.isdigit() else None
        patch = int(patch_text) if patch_text and patch_text.isdigit() else None
        low = semver.Version(major, minor or 0, patch or 0)
        if text[0] == "~":
            high = low.bump_major() if minor is None else semver.Version(major, minor + 1, 0)
        elif major > 0 or minor is None:
            high = low.bump_major()
        elif minor > 0 or patch is None:
            high = semver.Version(0, minor + 1, 0)
        else:
            high = semver.Version(0, 0, (patch or 0) + 1)
        return [f">={low}", f"<{high}"]
    m = _PARTIAL.match(text)
    if m:
        major_s, minor_s, patch_s = m.groups()
        if patch_s is not None and patch_s.isdigit() and minor_s is not None and minor_s.isdigit():
            return [f"=={parse_version(text)}"]
        if minor_s is None or not minor_s.isdigit():
            return [f">={major_s}.0.0", f"<{int(major_s) + 1}.0.0"]
        return [f">={major_s}.{minor_s}.0", f"<{major_s}.{int(minor_s) + 1}.0"]
    if "-" in text or "+" in text:
        return [f"=={parse_version(text)}"]
    raise ProductError(f"invalid version constraint '{constraint}'", hint="use e.g. ^1.0.0, ~1.2, 1.x, latest or 1.2.3")


def satisfies(version: str | semver.Version, constraint: str) -> bool:
    v = version if isinstance(version, semver.Version) else parse_version(version)
    clauses = _clauses(constraint)
    if v.prerelease and "-" not in constraint:
        return False  # pre-releases only when asked for by name, as npm and cargo do
    return all(v.match(c) for c in clauses)


def resolve(versions: list[str], constraint: str, product: str = "") -> str:
    """The newest version satisfying the constraint."""
    _clauses(constraint)  # validate even when there is nothing to match
    matching = [v for v in versions if satisfies(v, constraint)]
    if not matching:
        have = ", ".join(sorted(versions, key=parse_version)) or "none"
        raise ProductNotFoundError(f"no version of product '{product}' satisfies '{constraint}' (published: {have})")
    return str(max(matching, key=parse_version))

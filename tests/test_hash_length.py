"""Commit hashes are shown with one length everywhere (catalog/models.py SHORT_HASH_LENGTH): CLI,
magics, widgets, the lineage widget's JavaScript and the JupyterLab extension."""

from __future__ import annotations

import re
from pathlib import Path

from ratatouille_nb.catalog.models import SHORT_HASH_LENGTH, Commit, short_hash

REPO = Path(__file__).resolve().parents[1]
# `hash[:10]`, `commit_hash or "")[:8]`, `.hash.slice(0, 10)`, `commit_hash.substring(0, 7)`
PY = re.compile(r"hash[\w.]*(?:\s+or\s+[^)\]]*\))?\[:(\d+)\]")
JS = re.compile(r"hash[\w.]*\)?\.(?:slice|substring)\(0,\s*(\d+)\)")


def lengths(paths: list[Path], pattern: re.Pattern[str]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for path in paths:
        found = {int(n) for n in pattern.findall(path.read_text(encoding="utf-8"))}
        if found:
            out[str(path.relative_to(REPO))] = found
    return out


def test_short_hash() -> None:
    assert SHORT_HASH_LENGTH == 12 and short_hash("a" * 40) == "a" * 12 and short_hash(None) == ""
    assert Commit(hash="b" * 40).short == "b" * 12


def test_python_front_ends_show_12_characters() -> None:
    files = [p for p in (REPO / "ratatouille_nb").rglob("*.py") if p.parts[-2] in ("cli", "notebook", "widgets", "server", "verbs", "catalog")]
    found = lengths(files, PY)
    assert len(found) >= 3  # the pattern sees the CLI's and the magics' hashes
    wrong = {f: n for f, n in found.items() if n != {SHORT_HASH_LENGTH}}
    assert not wrong, wrong


def test_lineage_widget_shows_12_characters() -> None:
    files = list((REPO / "ratatouille_nb" / "notebook" / "widgets" / "js" / "src").glob("*.js"))
    found = lengths(files, JS)
    assert found  # the run's commit in the details panel
    wrong = {f: n for f, n in found.items() if n != {SHORT_HASH_LENGTH}}
    assert not wrong, wrong


def test_labextension_shows_12_characters() -> None:
    files = list((REPO / "labextension" / "src").glob("*.ts"))
    wrong = {f: n for f, n in lengths(files, JS).items() if n != {SHORT_HASH_LENGTH}}
    assert not wrong, wrong

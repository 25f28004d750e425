"""Bad input gets one line naming file:line and changes nothing (yamlfile.py, resources/).

The alias bomb is the 333-byte "billion laughs" workspace.yaml that once ran for minutes and took
1.5 GB: it is refused while it is parsed, before any alias is expanded.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import ConfigError, ProfileError, RatError
from ratatouille_nb.pipeline.loader import load_project
from ratatouille_nb.resources import load_profile
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace

LAUGHS = 'lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def _set_yaml(workspace: Workspace, text: str | bytes) -> Path:
    path = workspace.root / "workspace.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_the_alias_bomb_is_refused_at_its_first_alias(workspace: Workspace) -> None:
    bomb = f"name: acme\n{LAUGHS}"
    assert len(bomb) < 360
    path = _set_yaml(workspace, bomb)
    with pytest.raises(ConfigError, match=re.escape(f"{path}:3: YAML aliases are not allowed (*a)")):
        Workspace.load(workspace.root)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (b"name: acme\ndescription: caf\xe9\n", 2, "not UTF-8 text (byte 0xe9)"),
        ("name: acme\ndescription: x\nname: other\n", 3, "duplicate key 'name' (first at line 1)"),
        ("name: acme\nlayers:\n  silver: {}\n  silver: {}\n", 4, "duplicate key 'silver' (first at line 3)"),
        ("name: acme\n? [a, b]\n: 1\n", 2, "a key must be a plain value"),
        ("name: acme\nx: !!python/object/apply:os.system ['true']\n", 2, "the YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed"),
        ("name: acme\nx: !!python/name:os.system ''\n", 2, "malformed YAML"),
        ("name: acme\nbase: &b {profile: tiny}\nresources:\n  <<: *b\n", 4, "YAML aliases are not allowed (*b)"),
    ],
)
def test_bad_workspace_yaml_is_named_with_file_and_line(workspace: Workspace, text: str | bytes, line: int, problem: str) -> None:
    path = _set_yaml(workspace, text)
    with pytest.raises(ConfigError) as caught:
        Workspace.load(workspace.root)
    assert str(caught.value).startswith(f"{path}:{line}: {problem}")


def test_model_yaml_goes_through_the_same_loader(workspace: Workspace) -> None:
    (workspace.pipelines_dir / "silver" / "t.sql").write_text("SELECT 1 AS x\n")
    yaml_path = workspace.pipelines_dir / "silver" / "t.yaml"
    yaml_path.write_text(f"description: x\n{LAUGHS}")
    with pytest.raises(RatError, match=re.escape(f"{yaml_path}:3: YAML aliases are not allowed (*a)")):
        load_project(workspace.root)
    yaml_path.write_text("description: x\ndescription: y\n")
    with pytest.raises(RatError, match=re.escape(f"{yaml_path}:2: duplicate key 'description'")):
        load_project(workspace.root)


def test_a_profile_file_with_aliases_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(f"resources:\n  max_memory_mb: 2048\n{LAUGHS}")
    with pytest.raises(ProfileError, match=re.escape(f"{path}:4: YAML aliases are not allowed (*a)")):
        load_profile(str(path))


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("{memory_limit: abc}", "'abc' is not a memory size"),
        ("{memory_limit: '-5GB'}", "'-5GB' is not a memory size"),
        ("{memory_limit: nanGB}", "'nanGB' is not a memory size"),
        ("{memory_limit: infGB}", "'infGB' is not a memory size"),
        ("{duckdb: {memory_limit: 0}}", "0 is not a memory size"),
        ("{threads: many}", "duckdb.threads: Input should be a valid integer"),
        ("{max_memory_mb: -1}", "max_memory_mb: Input should be greater than or equal to 256"),
        ("{temp_directory: 's3://bucket/tmp'}", "is not a local folder"),
    ],
)
def test_resource_overrides_are_validated_with_their_line(settings: Settings, workspace: Workspace, override: str, problem: str) -> None:
    path = workspace.root / "workspace.yaml"
    path.write_text(path.read_text().replace("overrides: {}", f"overrides: {override}"))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "overrides:" in text)
    with pytest.raises(ConfigError) as caught:
        Session(settings, Workspace.load(workspace.root))
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: invalid resources"), message
    assert problem in message


def test_an_unwritable_spill_folder_is_named(settings: Settings, workspace: Workspace, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "file").write_text("not a folder")
    path = workspace.root / "workspace.yaml"
    path.write_text(path.read_text().replace("overrides: {}", f"overrides: {{temp_directory: '{locked / 'file' / 'spill'}'}}"))
    with Session(settings, Workspace.load(workspace.root)) as s, pytest.raises(ProfileError, match="cannot create the spill folder"):
        s.sql("SELECT 1")


def test_good_overrides_still_apply(settings: Settings, workspace: Workspace) -> None:
    path = workspace.root / "workspace.yaml"
    path.write_text(path.read_text().replace("overrides: {}", "overrides: {memory_limit: 1GB, threads: 1}"))
    with Session(settings, Workspace.load(workspace.root)) as s:
        assert s.resources.duckdb_limit_mb == 1024
        assert s.sql("SELECT current_setting('threads')").relation.fetchone() == (1,)

"""Fault injection: corrupted or missing state ends in one clear line, loses nothing, and `rat doctor` names it.

Each case breaks one thing the way a crash, a full disk or a stray `rm` does (a truncated Iceberg
metadata file, a garbage or deleted SQLite store) and runs the real CLI against it.
"""

from __future__ import annotations

import os
import sqlite3
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.catalog.local import LocalVersionStore
from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.errors import CatalogError, CatalogMissingError
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs.maintenance import gc, session_gc
from ratatouille_nb.workspace import Workspace

from .conftest import scalar

DOCTOR = "`rat doctor` checks every store and table and prints the command that fixes each problem"


@dataclass
class Out:
    code: int
    stdout: str
    stderr: str


Rat = Callable[..., Out]


@pytest.fixture
def rat(settings: Settings, workspace: Workspace) -> Rat:
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Out:
        result = runner.invoke(cli, ["--home", str(settings.home), "-w", str(workspace.root), *args], obj={})
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.stdout + result.stderr
        return Out(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def lake(session: Session) -> Session:
    """Two gold tables, each published as a product."""
    session.sql("CREATE TABLE gold.a AS SELECT i AS id FROM range(5) t(i)")
    session.sql("CREATE TABLE gold.b AS SELECT i AS id FROM range(3) t(i)")
    session.products.publish("gold.a", "pa", "1.0.0")
    session.products.publish("gold.b", "pb", "1.0.0")
    return session


def _files(settings: Settings) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in Path(settings.warehouse).rglob("*") if p.is_file()}


# -- a truncated Iceberg metadata JSON ---------------------------------------------------------


def _truncate_metadata(s: Session, key: str) -> str:
    location = s.contents()[key].metadata_location
    Path(location).write_bytes(b"{")  # what a writer killed mid-upload leaves on a filesystem without atomic rename
    return location


def test_truncated_metadata_is_listed_broken_named_and_droppable(lake: Session, rat: Rat, settings: Settings) -> None:
    branch = lake.branch
    location = _truncate_metadata(lake, "gold.a")
    broken = f"cannot read the metadata of table gold.a at {location}: Invalid JSON: EOF while parsing an object at line 1 column 1"
    drop_hint = f'restore the file from a backup, or drop the table: `rat sql "DROP TABLE gold.a"`; {DOCTOR}'

    listing = rat("tables")
    assert listing.stdout.splitlines()[2].split() == ["gold.a", "BROKEN", "-", "-", "-"]
    assert listing.stdout.splitlines()[3].split()[:2] == ["gold.b", "3"]
    assert listing.stderr == f"broken: {broken}\n  hint: {drop_hint}\n"

    assert rat("tables", "show", "gold.a", code=1).stderr == f"error: {broken}\n  hint: {drop_hint}\n"
    read = rat("sql", "SELECT count(*) FROM gold.a", code=1).stderr
    assert read == (
        f"error: cannot read the metadata of table gold.a at {location}: Invalid Input Error: Fails to parse iceberg metadata\n"
        f"  hint: {drop_hint}\n"
    )

    products = rat("products", "list")
    rows = {line.split()[0]: line.split() for line in products.stdout.splitlines()[2:]}
    assert rows["pa"][4] == "BROKEN" and rows["pb"][4] != "BROKEN"
    assert products.stderr == (
        f"broken: cannot read the metadata of product pa 1.0.0 at {location}: Invalid JSON: EOF while parsing an object "
        f"at line 1 column 1\n  hint: {DOCTOR}\n"
    )

    doctor = rat("doctor", code=1).stdout.splitlines()
    assert f"PROBLEM  table gold.a on branch {branch}: cannot read its metadata at {location}: Invalid JSON: EOF while parsing an object at line 1 column 1" in doctor
    assert f'  fix: restore the file from a backup, or drop the table: `rat sql --branch {branch} "DROP TABLE gold.a"`' in doctor
    assert any(line.startswith("PROBLEM  product pa 1.0.0 (publish pin): cannot read its metadata") for line in doctor)

    # Nothing else was lost, and the broken table can be dropped without its metadata.
    assert scalar(lake, "SELECT count(*) FROM gold.b") == 3
    dropped = rat("sql", "DROP TABLE gold.a")
    assert "gold.a: drop" in dropped.stdout
    assert "gold.a" not in rat("tables").stdout
    assert lake.store.get_commit(lake.store.resolve(f"{branch}~1").hash).contents["gold.a"].metadata_location == location


def test_missing_metadata_file_says_so(lake: Session, rat: Rat) -> None:
    location = lake.contents()["gold.b"].metadata_location
    os.remove(location)
    assert rat("tables", "show", "gold.b", code=1).stderr.startswith(
        f"error: cannot read the metadata of table gold.b at {location}: the file is missing\n"
    )
    assert "gold.b: drop" in rat("sql", "DROP TABLE IF EXISTS gold.b").stdout


# -- a garbage registry.db ---------------------------------------------------------------------


def _garbage(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"this is not a database, it is what a bad copy left behind" * 100)


def test_garbage_registry_db(lake: Session, rat: Rat, settings: Settings) -> None:
    registry = settings.home / "registry.db"
    lake.close()
    before = _files(settings)
    _garbage(registry)

    out = rat("products", "list", code=1)
    assert out.stderr == f"error: {registry} is damaged: file is not a database\n  hint: {DOCTOR}\n"
    # Tables are untouched and readable; gc refuses (the registry's pins are roots it cannot read).
    assert rat("sql", "SELECT count(*) AS n FROM gold.a", "--format", "csv").stdout.splitlines() == ['"n"', "5"]
    gc = rat("gc", "--older-than", "0", code=1)
    assert gc.stderr.startswith(f"error: {registry} is damaged: file is not a database\n")
    assert _files(settings) == before

    doctor = rat("doctor", code=1).stdout.splitlines()
    assert f"PROBLEM  {registry}: registry.db is damaged: file is not a database" in doctor
    assert (
        f"  fix: restore registry.db from a backup, or salvage what SQLite can read: "
        f"`mv {registry} {registry}.damaged && sqlite3 {registry}.damaged .recover | sqlite3 {registry}`"
    ) in doctor


# -- a garbage runs.db -------------------------------------------------------------------------


def _model(workspace: Workspace) -> None:
    (workspace.root / "pipelines" / "silver" / "ids.sql").write_text("SELECT id * 2 AS id2 FROM {{ ref('gold.a') }}\n")


def test_garbage_runs_db_never_turns_a_landed_commit_into_a_failure(lake: Session, rat: Rat, settings: Settings, workspace: Workspace) -> None:
    runs = settings.home / "runs.db"
    _model(workspace)
    rat("run")  # creates runs.db
    _garbage(runs)
    head = lake.store.resolve(lake.branch).hash

    out = rat("run")  # exit 0: the commit landed
    new_head = lake.store.resolve(lake.branch).hash
    assert new_head != head and f"committed {new_head[:12]} on '{lake.branch}'" in out.stdout
    run_id = out.stdout.split("run ", 2)[-1].split(":")[0]
    assert out.stderr == (
        f"warning: run {run_id} was not recorded in the run history: {runs} is damaged: file is not a database\n"
        f"  hint: {DOCTOR}\n"
    )
    assert scalar(lake, "SELECT count(*) FROM silver.ids") == 5

    doctor = rat("doctor", code=1).stdout.splitlines()
    assert f"PROBLEM  {runs}: runs.db is damaged: file is not a database" in doctor
    fix = f"  fix: move it aside (only run history is lost; the next run starts a new one): `mv {runs} {runs}.damaged`"
    assert fix in doctor

    # Following the fix: the next run is recorded again, and doctor is content.
    runs.rename(f"{runs}.damaged")
    again = rat("run")
    assert again.stderr == ""
    con = sqlite3.connect(runs)
    assert con.execute("SELECT count(*) FROM runs WHERE status = 'success'").fetchone() == (1,)
    con.close()
    assert rat("doctor").stdout.splitlines()[-1] == "no problems found"


def test_failed_run_with_garbage_runs_db_reports_the_model_error(lake: Session, rat: Rat, settings: Settings, workspace: Workspace) -> None:
    _garbage(settings.home / "runs.db")
    (workspace.root / "pipelines" / "silver" / "bad.sql").write_text("SELECT nope FROM {{ ref('gold.a') }}\n")
    head = lake.store.resolve(lake.branch).hash
    out = rat("run", code=1)
    assert 'error: model silver_bad failed: Binder Error: Referenced column "nope" not found' in out.stderr
    assert "was not recorded in the run history" in out.stderr
    assert lake.store.resolve(lake.branch).hash == head


# -- a deleted catalog.db ----------------------------------------------------------------------


def test_deleted_catalog_is_not_recreated_empty(lake: Session, rat: Rat, settings: Settings) -> None:
    lake.close()
    before = _files(settings)
    catalog = settings.catalog_db
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)
    table_files = sum(1 for p in before if "/metadata/" in p or "/data/w-" in p)
    message = (
        f"error: the catalog {catalog} is missing, but {settings.home / 'access.db'} holds 1 registered workspace(s): "
        "refusing to start an empty catalog\n"
        "  hint: restore catalog.db from a backup (the table files are intact) and see `rat doctor`; to start over "
        "instead, move the warehouse, access.db, registry.db and runs.db out of RAT_HOME\n"
    )
    assert rat("tables", code=1).stderr == message
    assert rat("gc", "--older-than", "0", code=1).stderr == message
    assert not catalog.exists() and _files(settings) == before

    doctor = rat("doctor", code=1).stdout.splitlines()
    assert f"PROBLEM  {catalog}: catalog.db is missing, but {settings.home / 'access.db'} holds 1 registered workspace(s)" in doctor
    assert f"  fix: restore {catalog} from a backup (the table files are intact); do not run `rat gc` until then" in doctor

    # Without the access store, the warehouse alone gives it away.
    (settings.home / "access.db").unlink()
    assert rat("tables", code=1).stderr.startswith(
        f"error: the catalog {catalog} is missing, but the warehouse {settings.warehouse} holds {table_files} table file(s): "
    )
    assert not catalog.exists()


def test_gc_refuses_an_empty_catalog_over_a_used_warehouse(lake: Session, settings: Settings) -> None:
    lake.close()
    before = _files(settings)
    settings.catalog_db.unlink()
    LocalVersionStore(settings.catalog_db).close()  # what any older `rat` did: a fresh, empty catalog
    with pytest.raises(CatalogError) as err:
        gc(settings, older_than_seconds=0)
    table_files = sum(1 for p in before if "/metadata/" in p or "/data/w-" in p)
    assert str(err.value) == (
        f"gc refused: the catalog {settings.catalog_db} holds no commits, yet the warehouse holds {table_files} table "
        "file(s); it references none of them, so gc would delete them all\n"
        "  hint: nothing was deleted; restore catalog.db from a backup (the table files are intact), see `rat doctor`"
    )
    assert _files(settings) == before


def test_gc_refuses_a_catalog_younger_than_the_warehouse(lake: Session, settings: Settings, workspace: Workspace) -> None:
    lake.close()
    old = time.time() - 3600
    for path in _files(settings):
        os.utime(path, (old, old))  # the lakehouse was written an hour ago
    settings.catalog_db.unlink()
    (settings.home / "registry.db").unlink()
    LocalVersionStore(settings.catalog_db).close()  # recreated empty (as an older `rat` did), then written to
    with Session(settings, workspace) as fresh:
        fresh.sql("CREATE TABLE gold.c AS SELECT 1 AS x")
        before = _files(settings)
        with pytest.raises(CatalogError, match=r"^gc refused: the catalog .* was created at .*, after \d+ table file\(s\) of the warehouse were written"):
            session_gc(fresh, older_than_seconds=0)
    assert _files(settings) == before


def test_open_store_refuses_while_runs_db_remains(settings: Settings, session: Session, workspace: Workspace) -> None:
    session.sql("CREATE TABLE gold.t AS SELECT 1 AS x")
    (workspace.root / "pipelines" / "silver" / "u.sql").write_text("SELECT x FROM {{ ref('gold.t') }}\n")
    from ratatouille_nb.pipeline.executor import Runner

    Runner(session).run()
    session.close()
    settings.catalog_db.unlink()
    with pytest.raises(CatalogMissingError, match=rf"^the catalog {settings.catalog_db} is missing, but {settings.home / 'runs.db'} holds run history"):
        Session(settings, workspace)


# -- Python models: the user's file and line ---------------------------------------------------


PY_MODEL = '''from ratatouille import pipeline, rat


def helper(x):
    return 1 / x


@pipeline(name="bronze_boom", layer="bronze")
def boom():
    helper(0)
'''


def test_python_model_error_names_the_users_line(session: Session, rat: Rat, workspace: Workspace) -> None:
    path = workspace.root / "pipelines" / "bronze" / "boom.py"
    path.write_text(PY_MODEL)
    out = rat("run", code=1)
    assert out.stderr.splitlines()[-2] == f"error: model bronze_boom failed: {path}:5: ZeroDivisionError: division by zero"
    assert "FAIL  bronze_boom -> bronze.boom" in out.stdout and f"{path}:5: ZeroDivisionError" in out.stdout


def test_python_model_debug_traceback_shows_the_users_frames(session: Session, settings: Settings, workspace: Workspace) -> None:
    path = workspace.root / "pipelines" / "bronze" / "boom.py"
    path.write_text(PY_MODEL)
    result = CliRunner().invoke(cli, ["--debug", "--home", str(settings.home), "-w", str(workspace.root), "run"], obj={})
    assert result.exit_code == 1 and result.exception is not None
    text = "".join(traceback.format_exception(result.exception))
    assert f'File "{path}", line 10, in boom\n    helper(0)' in text
    assert f'File "{path}", line 5, in helper\n    return 1 / x' in text
    # The user's traceback starts at their function: the runner's frames are trimmed from it.
    user_part = text.split("The above exception was the direct cause")[0]
    assert "executor.py" not in user_part and "ZeroDivisionError: division by zero" in user_part


def test_rat_error_inside_a_python_model_keeps_its_class_and_gains_the_line(session: Session, workspace: Workspace) -> None:
    from ratatouille_nb.pipeline.errors import PipelineError
    from ratatouille_nb.pipeline.executor import Runner

    path = workspace.root / "pipelines" / "bronze" / "q.py"
    path.write_text(
        'from ratatouille import pipeline, rat\n\n\n@pipeline(name="bronze_q", layer="bronze")\ndef q():\n'
        '    rat.read_file("landing/missing.csv")\n'
    )
    record = Runner(session).run()
    run = record.models[0]
    assert run.status == "failed" and type(run.exception) is PipelineError
    assert run.error == f"{path}:6: no file 'landing/missing.csv' under the storage root"


def test_python_model_import_error_names_the_line(session: Session, rat: Rat, workspace: Workspace) -> None:
    path = workspace.root / "pipelines" / "bronze" / "broken.py"
    path.write_text("import json\n\nVALUE = json.loads('{')\n")
    out = rat("run", code=1)
    assert out.stderr.startswith(f"error: {path}:3: JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")

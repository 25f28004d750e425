"""`rat doctor`: every problem it can find, named, with the command that fixes it; silence when all is well."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from ratatouille_nb.engine.session import Session
from ratatouille_nb.engine.writer import TableWriter
from ratatouille_nb.maintenance.doctor import diagnose
from ratatouille_nb.settings import Settings


def _doctor(settings: Settings, code: int = 0) -> list[str]:
    result = CliRunner().invoke(cli, ["--home", str(settings.home), "doctor"], obj={})
    assert result.exit_code == code, (result.output, result.exception)
    assert "Traceback" not in result.output
    return result.stdout.splitlines()


@pytest.fixture
def lake(session: Session) -> Session:
    session.sql("CREATE TABLE silver.s AS SELECT i AS id FROM range(10) t(i)")
    session.sql("INSERT INTO silver.s SELECT 10")
    session.sql("CREATE TABLE gold.g AS SELECT 1 AS x")
    session.products.publish("gold.g", "g", "1.0.0")
    session.store.create_reference("v1", "tag", session.branch)
    return session


def test_a_fresh_home_has_nothing_to_check(settings: Settings) -> None:
    assert _doctor(settings) == ["checked: nothing (no stores under RAT_HOME yet)", "no problems found"]
    assert not (settings.home / "catalog.db").exists()


def test_a_healthy_lakehouse(lake: Session, settings: Settings) -> None:
    lines = _doctor(settings)
    assert lines[-1] == "no problems found"
    checked = lines[0]
    for part in ("catalog.db", "registry.db", "access.db", "table(s) on 3 branch(es) and tag(s)", "1 product pin(s)"):
        assert part in checked
    assert diagnose(settings).problems == []


def test_a_damaged_catalog_stops_the_table_checks(lake: Session, settings: Settings) -> None:
    lake.close()
    catalog = settings.catalog_db
    con = sqlite3.connect(catalog)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(catalog.read_bytes())
    data[100:4096 * 2] = b"\x00" * (4096 * 2 - 100)  # the header survives, the schema page does not
    catalog.write_bytes(bytes(data))
    lines = _doctor(settings, code=1)
    problem = next(line for line in lines if line.startswith("PROBLEM"))
    assert problem.startswith(f"PROBLEM  {catalog}: catalog.db is damaged: ")
    assert lines[lines.index(problem) + 1] == (
        f"  fix: restore catalog.db from a backup, or salvage what SQLite can read: "
        f"`mv {catalog} {catalog}.damaged && sqlite3 {catalog}.damaged .recover | sqlite3 {catalog}`"
    )
    assert "table(s) on" not in lines[0]


def test_missing_data_file_and_manifest(lake: Session, settings: Settings) -> None:
    branch = lake.branch
    meta = lake.table_stats("silver.s")
    data_files = sorted(Path(meta["location"], "data").rglob("*.parquet"))
    os.remove(data_files[0])
    lines = _doctor(settings, code=1)
    assert f"PROBLEM  table silver.s on branch {branch}: 1 referenced file(s) missing from the warehouse, e.g. {data_files[0]}" in lines
    assert (
        f'  fix: restore the missing file(s) from a backup, or drop the table (`rat sql --branch {branch} "DROP TABLE silver.s"`) '
        "and build it again"
    ) in lines

    manifests = [p for p in Path(meta["location"], "metadata").glob("*-m*.avro")]
    for path in manifests:
        os.remove(path)
    lines = _doctor(settings, code=1)
    assert any(
        line.startswith(f"PROBLEM  table silver.s on branch {branch}: the manifests of snapshot {meta['snapshot_id']} cannot be read (missing: ")
        for line in lines
    )


def test_a_broken_table_on_a_tag_is_fixed_by_deleting_the_tag(lake: Session, settings: Settings) -> None:
    location = lake.contents("v1")["gold.g"].metadata_location
    lake.sql("CREATE OR REPLACE TABLE gold.g AS SELECT 2 AS x")  # the branch moves on; the tag keeps the old file
    Path(location).write_text("")
    lines = _doctor(settings, code=1)
    assert f"PROBLEM  table gold.g on tag v1: cannot read its metadata at {location}: Invalid JSON: EOF while parsing a value at line 1 column 0" in lines
    assert "  fix: restore the file(s) from a backup, or delete the tag: `rat tag delete v1`" in lines
    assert "PROBLEM  product g 1.0.0 (publish pin): cannot read its metadata at " + location + ": Invalid JSON: EOF while parsing a value at line 1 column 0" in lines
    assert "  fix: restore the file from a backup; newer reads are fixed by re-pinning from the owner workspace 'acme': `rat products refresh g`" in lines
    assert not any(line.startswith(f"PROBLEM  table gold.g on branch {lake.branch}") for line in lines)


def test_orphans_are_a_warning_with_the_gc_command(lake: Session, settings: Settings) -> None:
    txn = lake.transaction("killed")
    lake.bind("SELECT * FROM silver.s", txn.tables.base)
    TableWriter(lake.con, txn, lake.resources).insert("silver.s", "SELECT 99")  # a writer killed before its commit
    assert _doctor(settings)[-1] == "no problems found"  # its files may be a write in flight: not reported yet

    old = time.time() - 7200
    for path in Path(settings.warehouse).rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    con = sqlite3.connect(settings.catalog_db)
    with con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'created_at'", (repr(old - 60),))
    con.close()
    lines = _doctor(settings)  # exit 0: a warning only
    warning = next(line for line in lines if line.startswith("WARNING"))
    assert warning.startswith("WARNING  warehouse: ") and "table file(s) (" in warning and "no branch, tag or product references" in warning
    assert lines[lines.index(warning) + 1] == "  fix: `rat gc --dry-run -v` lists them; `rat gc` deletes them"
    assert lines[-1] == "0 problem(s), 1 warning(s)"


def test_gc_blocked_by_history_is_explained(lake: Session, settings: Settings) -> None:
    location = lake.contents()["silver.s"].metadata_location
    Path(location).write_text("{")
    lake.sql("DROP TABLE silver.s")  # the head is clean now; older commits still name the file
    lake.store.delete_reference("v1")
    lines = _doctor(settings, code=1)
    assert f"PROBLEM  table silver.s in the commit history: `rat gc` cannot run: a reachable commit references {location}, which cannot be read" in lines
    assert "  fix: restore the file from a backup: gc keeps refusing while any reachable commit references it" in lines


def test_a_store_from_a_newer_version(lake: Session, settings: Settings) -> None:
    lake.close()
    con = sqlite3.connect(settings.home / "runs.db")
    con.execute("CREATE TABLE IF NOT EXISTS x (y)")
    con.execute("PRAGMA user_version = 99")
    con.close()
    lines = _doctor(settings, code=1)
    runs = settings.home / "runs.db"
    from ratatouille_nb.pipeline.runs import MIGRATIONS

    assert f"PROBLEM  {runs}: runs.db has schema version 99; this Ratatouille knows up to {len(MIGRATIONS)}" in lines
    assert "  fix: upgrade ratatouille_nb (`pip install -U ratatouille_nb`)" in lines

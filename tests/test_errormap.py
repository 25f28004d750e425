"""errormap: each library family a user can trigger becomes one RatError line with a hint."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import duckdb
import pytest
import yaml

from ratatouille_nb.catalog.tables import read_metadata
from ratatouille_nb.errormap import DOCTOR_HINT, map_error, mapped_errors
from ratatouille_nb.errors import (
    CommitConflictError,
    ConfigError,
    RatError,
    SqlError,
    StorageError,
    StoreBusyError,
    StoreCorruptError,
    TableMetadataError,
    TableNotFoundError,
)


def test_sqlite_errors_name_the_store() -> None:
    corrupt = map_error(sqlite3.DatabaseError("database disk image is malformed"), path="/h/catalog.db")
    assert isinstance(corrupt, StoreCorruptError)
    assert str(corrupt) == f"/h/catalog.db is damaged: database disk image is malformed\n  hint: {DOCTOR_HINT}"
    busy = map_error(sqlite3.OperationalError("database is locked"), path="/h/runs.db")
    assert isinstance(busy, StoreBusyError) and str(busy).startswith("/h/runs.db stayed locked by another process\n")
    readonly = map_error(sqlite3.OperationalError("attempt to write a readonly database"), path="/h/r.db")
    assert str(readonly) == (
        "cannot open /h/r.db for writing: attempt to write a readonly database\n  hint: check that RAT_HOME exists and is writable"
    )


def test_iceberg_metadata_errors_name_the_table_and_the_way_out(tmp_path: Path) -> None:
    from pyiceberg.io import load_file_io

    io = load_file_io({}, str(tmp_path))
    bad = tmp_path / "00001-x.metadata.json"
    bad.write_text('{"format-version": 2')
    with pytest.raises(TableMetadataError) as err:
        read_metadata(io, str(bad), "silver.sales")
    assert str(err.value) == (
        f"cannot read the metadata of table silver.sales at {bad}: Invalid JSON: EOF while parsing an object at line 1 column 20\n"
        f'  hint: restore the file from a backup, or drop the table: `rat sql "DROP TABLE silver.sales"`; {DOCTOR_HINT}'
    )
    assert err.value.table == "silver.sales" and err.value.location == str(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(TableMetadataError, match=r": 'utf-8' codec can't decode byte 0xff"):
        read_metadata(io, str(bad))
    bad.write_text("{}")
    with pytest.raises(TableMetadataError, match=r"^cannot read the metadata of a table at .*: Unable to extract tag"):
        read_metadata(io, str(bad))
    with pytest.raises(TableMetadataError, match=r": the file is missing\n"):
        read_metadata(io, str(tmp_path / "gone.metadata.json"), "gold.x")


def test_pyiceberg_catalog_errors() -> None:
    from pyiceberg.exceptions import CommitFailedException, NoSuchTableError

    assert isinstance(map_error(NoSuchTableError("Table does not exist: a.b")), TableNotFoundError)
    conflict = map_error(CommitFailedException("Requirement failed: branch main has changed"))
    assert isinstance(conflict, CommitConflictError)
    assert str(conflict).startswith("commit failed: Requirement failed: branch main has changed\n")


def test_duckdb_errors_are_one_line_with_the_statement() -> None:
    con = duckdb.connect()
    with pytest.raises(duckdb.Error) as raw:
        con.execute("SELECT nope")
    err = map_error(raw.value, statement="SELECT nope")
    assert isinstance(err, SqlError)
    assert str(err) == 'Binder Error: Referenced column "nope" was not found because the FROM clause is missing\n  in: SELECT nope'
    oom = map_error(duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate"), statement="SELECT 1")
    assert oom is not None and oom.hint is not None and "--profile" in oom.hint


def test_yaml_errors_give_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(yaml.YAMLError) as raw:
        yaml.safe_load("a: 1\nb: [2\n")
    err = map_error(raw.value, path=tmp_path / "workspace.yaml")
    assert isinstance(err, ConfigError)
    assert str(err).splitlines()[0] == f"{tmp_path / 'workspace.yaml'}:3: malformed YAML: expected ',' or ']', but got '<stream end>'"


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file", "/w/x.csv"), "/w/x.csv does not exist"),
        (PermissionError(errno.EACCES, "Permission denied", "/w/x.csv"), "permission denied on /w/x.csv"),
        (OSError(errno.ENOSPC, "No space left on device", "/w/x.csv"), "no space left on the device holding /w/x.csv"),
        (OSError(errno.EIO, "Input/output error", "/w/x.csv"), "/w/x.csv: Input/output error"),
    ],
)
def test_os_errors_say_what_happened_to_which_file(exc: OSError, message: str) -> None:
    err = map_error(exc)
    assert isinstance(err, StorageError) and err.args[0] == message


def test_mapped_errors_chains_the_original_and_leaves_bugs_alone() -> None:
    with pytest.raises(StorageError) as err, mapped_errors(path="/w/x"):
        raise PermissionError(errno.EACCES, "Permission denied")
    assert isinstance(err.value.__cause__, PermissionError)
    with pytest.raises(KeyError), mapped_errors():
        raise KeyError("a bug stays a bug")
    original = RatError("already one line")
    with pytest.raises(RatError) as same, mapped_errors():
        raise original
    assert same.value is original

"""Open tables, proven: what Ratatouille writes reads back in independent Iceberg readers.

Ratatouille writes tables on two branches (on the local warehouse and on S3), then each branch's
tables are read — from the metadata location the version store records for that branch — by
pyiceberg's own scan (a `StaticTable`, and a table registered in a pyiceberg `SqlCatalog`),
polars' `scan_iceberg`, and Daft (`daft.read_iceberg`), a distributed-capable engine. Every
reader must see exactly the rows Ratatouille reads on that branch, nested columns, partition
values and decimals included, and Iceberg's own snapshot history must time-travel the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace

# Flat, partition, decimal, date and struct columns: every reader, Daft included.
SALES = (
    "SELECT i AS id, 'n' || i AS name, DATE '2024-01-01' + (i % 3)::INTEGER AS d, "
    "CAST(i * 1.25 AS DECIMAL(10, 2)) AS amount, "
    "{{'k': 'store' || (i % 7), 'v': (i % 7)::INTEGER}} AS attrs FROM range({lo}, {hi}) t(i)"
)
# Lists and maps: pyiceberg and polars (Daft 0.7 cannot read DuckDB-written LIST/MAP groups, see below).
NESTED = "SELECT i AS id, ['t' || (i % 4), 'all'] AS tags, MAP {{'n': i}} AS counts FROM range({lo}, {hi}) t(i)"


@pytest.fixture(autouse=True)
def _quiet_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLARS_ICEBERG_PLANNER", "pyiceberg")  # the optional planner plugin isn't installed
    monkeypatch.setenv("DAFT_ANALYTICS_ENABLED", "0")
    monkeypatch.setenv("DAFT_PROGRESS_BAR", "0")


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A session on the local warehouse or on S3 (moto), with bronze partitioned by `d`."""
    if request.param == "s3":
        settings: Settings = request.getfixturevalue("s3_settings")
    else:
        settings = Settings.from_env(home=str(tmp_path / "rat-home"))
    ws = init_workspace(tmp_path / "acme", settings, name="acme")
    config = ws.root / "workspace.yaml"
    config.write_text(config.read_text().replace("partition_by: []", "partition_by: [d]", 1))
    with Session(settings, Workspace.load(ws.root)) as session:
        yield session


def _write_branches(s: Session) -> tuple[str, dict[str, int]]:
    """main: bronze.sales (1,000 rows) then silver.stores; dev (from the first commit): +10, -3, 5 updated."""
    main = s.branch
    first = s.sql("CREATE TABLE bronze.sales AS " + SALES.format(lo=0, hi=1000)).commit
    assert first is not None
    s.store.create_reference("dev", "branch", main)
    s.sql("INSERT INTO bronze.sales " + SALES.format(lo=1000, hi=1010), ref="dev")
    s.sql("DELETE FROM bronze.sales WHERE id < 3", ref="dev")
    s.sql("UPDATE bronze.sales SET amount = 0, name = 'changed' WHERE id BETWEEN 10 AND 14", ref="dev")
    s.sql("CREATE TABLE silver.stores AS SELECT DISTINCT attrs.k AS store, d FROM bronze.sales")
    s.sql("CREATE TABLE silver.nested AS " + NESTED.format(lo=0, hi=20), ref="dev")
    s.sql("INSERT INTO silver.nested " + NESTED.format(lo=20, hi=25), ref="dev")
    return main, {"main": 1000, "dev": 1007}


def _plain(value: Any) -> Any:
    """Maps as dicts whichever way a reader spells them (Arrow: key/value tuples; polars: key/value structs)."""
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {k: _plain(v) for k, v in value}
        if value and all(isinstance(v, dict) and set(v) == {"key", "value"} for v in value):
            return {v["key"]: _plain(v["value"]) for v in value}
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rows(table: Any) -> list[dict[str, Any]]:
    """An Arrow table's rows, sorted by the first column, in plain Python values."""
    rows = [_plain(r) for r in table.to_pylist()]
    first = table.column_names[0]
    return sorted(rows, key=lambda r: r[first])


def _ratatouille(s: Session, key: str, ref: str) -> list[dict[str, Any]]:
    return _rows(s.sql(f"SELECT * FROM {key}", ref=ref).arrow())


def test_branches_read_back_in_pyiceberg_polars_and_daft(lake: Session, tmp_path: Path) -> None:
    import polars as pl
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import StaticTable

    daft = pytest.importorskip("daft")
    s = lake
    main, expected_rows = _write_branches(s)
    props = dict(s.warehouse.io_properties)
    catalog = SqlCatalog("external", uri=f"sqlite:///{tmp_path / 'external.db'}", warehouse=s.warehouse.location(), **props)

    for ref, label in ((main, "main"), ("dev", "dev")):
        contents = s.contents(ref)
        for key in sorted(contents):
            meta = contents[key].metadata_location
            want = _ratatouille(s, key, ref)
            if key == "bronze.sales":
                assert len(want) == expected_rows[label]

            # pyiceberg, straight from the metadata file
            static = StaticTable.from_metadata(meta, properties=props)
            assert _rows(static.scan().to_arrow()) == want, (label, key, "pyiceberg")

            # pyiceberg through a catalog: register this branch's table under a namespace per branch
            namespace = f"{label}_{key.split('.')[0]}"
            catalog.create_namespace_if_not_exists(namespace)
            registered = catalog.register_table((namespace, key.split(".")[1]), meta)
            assert _rows(catalog.load_table((namespace, key.split(".")[1])).scan().to_arrow()) == want
            assert registered.metadata_location == meta

            # polars, from the metadata location
            frame = pl.scan_iceberg(meta, storage_options=props).collect()
            assert _rows(frame.to_arrow()) == want, (label, key, "polars")

            # Daft, on the pyiceberg table (it takes the FileIO's S3 settings from it)
            if key != "silver.nested":
                assert _rows(daft.read_iceberg(static).to_arrow()) == want, (label, key, "daft")

    # The branches really differ, and the other readers see the difference.
    dev = StaticTable.from_metadata(s.contents("dev")["bronze.sales"].metadata_location, properties=props)
    changed = pl.scan_iceberg(dev.metadata_location, storage_options=props).filter(pl.col("name") == "changed").collect()
    assert sorted(changed["id"].to_list()) == [10, 11, 12, 13, 14]
    assert "silver.stores" not in s.contents("dev") and "silver.nested" not in s.contents(main)

    # Iceberg's own snapshot history time-travels like Ratatouille's commits: dev's first snapshot is main's table.
    first_snapshot = dev.snapshots()[0].snapshot_id
    assert len(dev.snapshots()) == 4  # create, insert, delete, update
    at_first = dev.scan(snapshot_id=first_snapshot).to_arrow()
    assert _rows(at_first) == _ratatouille(s, "bronze.sales", main)
    polars_first = pl.scan_iceberg(dev.metadata_location, snapshot_id=first_snapshot, storage_options=props).collect()
    assert polars_first.height == 1000


def test_data_files_carry_iceberg_field_ids(lake: Session) -> None:
    """Every data file maps to the Iceberg schema by field id, so readers need no name mapping."""
    import pyarrow.parquet as pq

    s = lake
    s.sql("CREATE TABLE bronze.sales AS " + SALES.format(lo=0, hi=50))
    s.sql("INSERT INTO bronze.sales " + SALES.format(lo=50, hi=60))
    s.sql("UPDATE bronze.sales SET amount = 1 WHERE id = 3")
    table = s.transaction("read").load("bronze.sales")
    ids = {f.name: f.field_id for f in table.schema().fields}
    files = [task.file.file_path for task in table.scan().plan_files()]
    assert len(files) >= 3
    for path in files:
        with table.io.new_input(path).open() as stream:
            schema = pq.read_schema(stream)
        got = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in schema}
        assert got == ids, path
        attrs = schema.field("attrs").type
        assert {attrs.field(i).name: int(attrs.field(i).metadata[b"PARQUET:field_id"]) for i in range(attrs.num_fields)} == {
            f.name: f.field_id for f in table.schema().find_field("attrs").field_type.fields  # type: ignore[attr-defined]
        }


@pytest.mark.xfail(
    reason="Daft 0.7's Iceberg reader maps Parquet columns by field id and drops the LIST/MAP groups DuckDB "
    "writes with only the legacy converted type ('list type must have a single child, found 0'); "
    "pyiceberg, polars and DuckDB read them",
    strict=False,
)
def test_daft_reads_list_and_map_columns(lake: Session) -> None:
    from pyiceberg.table import StaticTable

    daft = pytest.importorskip("daft")
    s = lake
    s.sql("CREATE TABLE silver.nested AS " + NESTED.format(lo=0, hi=20))
    static = StaticTable.from_metadata(s.contents()["silver.nested"].metadata_location, properties=dict(s.warehouse.io_properties))
    assert _rows(daft.read_iceberg(static).to_arrow()) == _ratatouille(s, "silver.nested", s.branch)


def test_merge_on_read_deletes_and_compaction_read_back_everywhere(lake: Session, tmp_path: Path) -> None:
    """Position-delete files (merges, DELETE, UPDATE moving rows across partitions) and a compacted
    copy on another branch: pyiceberg, polars and Daft read the same rows as Ratatouille."""
    import polars as pl
    from pyiceberg.table import StaticTable

    from ratatouille_nb.engine.incremental import IncrementalWriter
    from ratatouille_nb.maintenance.optimize import optimize

    daft = pytest.importorskip("daft")
    s = lake
    s.sql("CREATE TABLE bronze.sales AS " + SALES.format(lo=0, hi=600))
    for lo in (0, 300):  # two merges: 550..699 (50 updated, 100 new), then 850..999 (all new)
        with s.transaction("merge") as txn:
            s.bind("bronze.sales", txn.contents())
            IncrementalWriter(s.con, txn, s.resources, spill_dir=s.spill_dir).merge(
                "bronze.sales", SALES.format(lo=lo + 550, hi=lo + 700).replace("'n' || i", "'m' || i"), ["id"]
            )
    s.sql("DELETE FROM bronze.sales WHERE id % 9 = 0")
    s.sql("UPDATE bronze.sales SET d = DATE '2024-02-01', name = 'moved' WHERE id % 7 = 0")  # rows change partition
    assert s.table_stats("bronze.sales")["delete_files"] > 0
    s.store.create_reference("compacted", "branch", s.branch)
    optimize(s, branch="compacted")
    assert s.table_stats("bronze.sales", "compacted")["delete_files"] == 0
    props = dict(s.warehouse.io_properties)
    for ref in (s.branch, "compacted"):
        want = _ratatouille(s, "bronze.sales", ref)
        ids = {i for i in [*range(700), *range(850, 1000)] if i % 9}
        assert len(want) == len(ids) and {r["id"] for r in want} == ids
        meta = s.contents(ref)["bronze.sales"].metadata_location
        static = StaticTable.from_metadata(meta, properties=props)
        assert _rows(static.scan().to_arrow()) == want, (ref, "pyiceberg")
        assert _rows(pl.scan_iceberg(meta, storage_options=props).collect().to_arrow()) == want, (ref, "polars")
        assert _rows(daft.read_iceberg(static).to_arrow()) == want, (ref, "daft")

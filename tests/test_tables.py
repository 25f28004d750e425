"""The tables browser (verbs/tables.py): layers, tables, DuckDB types, last change, model, freshness."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.verbs.tables import hours_text, judge, list_tables
from ratatouille_nb.workspace import Workspace


def write(workspace: Workspace, rel: str, text: str) -> None:
    path = workspace.root / "pipelines" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).strip() + "\n")


@pytest.fixture
def stocked(settings: Settings, workspace: Workspace) -> Iterator[Session]:
    """bronze.orders (no model), silver.orders (model with freshness), gold.kpis (a product with an SLA)."""
    yaml = (workspace.root / "workspace.yaml").read_text().replace(
        "products: []",
        "products:\n  - name: kpis\n    source: gold.kpis\n    sla: {freshness_hours: 24}",
    )
    (workspace.root / "workspace.yaml").write_text(yaml)
    write(workspace, "silver/orders.sql", "SELECT * FROM {{ ref('bronze.orders') }}")
    write(workspace, "silver/orders.yaml", "freshness:\n  warn_after: {hours: 6}\n  error_after: {hours: 12}\n")
    s = Session(settings, Workspace.load(workspace.root))
    s.sql("CREATE TABLE bronze.orders AS SELECT i AS order_id, i * 1.5 AS amount, 'x' || i AS note FROM range(10) t(i)")
    s.sql("CREATE TABLE silver.orders AS SELECT order_id, amount FROM bronze.orders WHERE order_id < 4")
    s.sql("CREATE TABLE gold.kpis AS SELECT count(*)::INTEGER AS n, DATE '2026-01-01' AS day FROM silver.orders")
    yield s
    s.close()


def test_layers_tables_types_and_commits(stocked: Session) -> None:
    listing = list_tables(stocked)
    assert listing.workspace == "acme" and listing.ref == stocked.branch and len(listing.commit) == 12
    assert [layer.name for layer in listing.layers] == ["bronze", "silver", "gold"]
    by = {t.table: t for t in listing.tables}
    assert set(by) == {"bronze.orders", "silver.orders", "gold.kpis"}
    orders = by["bronze.orders"]
    assert (orders.kind, orders.rows, orders.layer, orders.name) == ("table", 10, "bronze", "orders")
    # DuckDB's names, not Iceberg's (long, double, string)
    assert [(c.name, c.type) for c in orders.columns] == [("order_id", "BIGINT"), ("amount", "DECIMAL(21,1)"), ("note", "VARCHAR")]
    assert all("long" not in c.type and "string" not in c.type for t in by.values() for c in t.columns)
    assert [(c.name, c.type) for c in by["gold.kpis"].columns] == [("n", "INTEGER"), ("day", "DATE")]
    # Each table names the commit that last changed it: three different commits, the head last.
    commits = [by[k].commit for k in ("bronze.orders", "silver.orders", "gold.kpis")]
    assert all(c is not None and len(c) == 12 for c in commits) and len(set(commits)) == 3
    assert by["gold.kpis"].commit == listing.commit
    assert by["bronze.orders"].snapshot_at is not None and abs(by["bronze.orders"].snapshot_at - time.time()) < 120


def test_model_and_freshness(stocked: Session) -> None:
    now = time.time()
    by = {t.table: t for t in list_tables(stocked, now=now).tables}
    silver = by["silver.orders"]
    assert silver.model == "silver_orders" and silver.model_path == str(Path("pipelines/silver/orders.sql"))
    assert (silver.freshness.basis, silver.freshness.status) == ("model", "fresh")
    assert (silver.freshness.warn_after_hours, silver.freshness.error_after_hours) == (6, 12)
    kpis = by["gold.kpis"]
    assert kpis.model is None and (kpis.freshness.basis, kpis.freshness.error_after_hours) == ("product", 24)
    assert by["bronze.orders"].freshness.basis == "age" and by["bronze.orders"].freshness.text.endswith("old")

    later = {t.table: t for t in list_tables(stocked, now=now + 8 * 3600).tables}
    assert later["silver.orders"].freshness.status == "warn"
    assert later["gold.kpis"].freshness.status == "fresh"
    much_later = {t.table: t for t in list_tables(stocked, now=now + 30 * 3600).tables}
    assert much_later["silver.orders"].freshness.status == "stale"
    assert much_later["gold.kpis"].freshness.status == "stale"
    assert much_later["gold.kpis"].freshness.text == "30.0h old · stale (product SLA 24.0h)"
    assert much_later["silver.orders"].freshness.text == "30.0h old · stale (model freshness: warn 6.0h, error 12.0h)"


def test_other_ref_and_unchanged_tables(stocked: Session) -> None:
    main_commit = list_tables(stocked).commit
    stocked.store.create_reference("dev", "branch", stocked.branch)
    stocked.sql("DROP TABLE gold.kpis", ref="dev")
    stocked.sql("CREATE TABLE gold.extra AS SELECT 1 AS one", ref="dev")
    dev = list_tables(stocked, "dev")
    assert {t.table for t in dev.tables} == {"bronze.orders", "silver.orders", "gold.extra"}
    # bronze.orders did not change on dev: the same commit as on the workspace branch
    base = {t.table: t for t in list_tables(stocked).tables}
    assert {t.table: t for t in dev.tables}["bronze.orders"].commit == base["bronze.orders"].commit
    assert list_tables(stocked).commit == main_commit


def test_judge_and_hours_text() -> None:
    assert judge(None, warn=1, error=2, basis="model").status == "unknown"
    assert judge(3, warn=1, error=2, basis="model").status == "stale"
    assert judge(1.5, warn=1, error=2, basis="model").status == "warn"
    assert judge(0.5, warn=1, error=2, basis="model").status == "fresh"
    assert judge(5, warn=None, error=None, basis="age").status == "unknown"
    assert (hours_text(0.001), hours_text(0.5), hours_text(5.25), hours_text(72)) == ("<1m", "30m", "5.2h", "3.0d")


def test_rat_tables_magic(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    from ratatouille_nb.notebook.tables_view import TablesView
    from ratatouille_nb.verbs import session as sessions
    from ratatouille_nb.workspace import init_workspace

    ws = init_workspace(tmp_path / "nbws", settings, name="nbws")
    monkeypatch.setenv("RAT_HOME", str(settings.home))
    monkeypatch.setenv("RAT_WORKSPACE", str(ws.root))
    config = Config()
    config.HistoryManager.enabled = False
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    try:
        with capture_output():
            shell.run_cell("%load_ext ratatouille_nb")
            shell.run_cell("%%rat sql\nCREATE TABLE silver.t AS SELECT i AS id, 'n' || i AS name FROM range(25) t(i)")
            shell.run_cell("%rat branch create dev")
            shell.run_cell("%%rat sql\nCREATE TABLE gold.only_dev AS SELECT 1 AS one")
            result = shell.run_cell("%rat tables")
            main = shell.run_cell("%rat tables --branch workspace/nbws")
        assert result.success and isinstance(result.result, TablesView)
        text = repr(result.result)
        assert "workspace nbws · dev @ " in text and "silver.t  25 rows" in text and "id BIGINT, name VARCHAR" in text
        assert "gold.only_dev" in text
        page = result.result._repr_html_()
        assert 'data-table="silver.t"' in page and "BIGINT" in page and "25 rows" in page
        assert main.success and "gold.only_dev" not in repr(main.result)
    finally:
        sessions.reset()
        InteractiveShell.clear_instance()


def test_did_you_mean_for_missing_tables_and_columns(stocked: Session) -> None:
    from ratatouille_nb.errors import RatError
    from ratatouille_nb.verbs.sql import sql

    with pytest.raises(RatError) as table:
        sql(stocked, "SELECT * FROM silver.order")
    first = str(table.value).splitlines()[0]
    assert "silver.order" in first and "did you mean silver.orders?" in first
    with pytest.raises(RatError) as unqualified:
        sql(stocked, "SELECT * FROM kpi")
    assert "did you mean gold.kpis?" in str(unqualified.value).splitlines()[0]
    with pytest.raises(RatError) as column:
        sql(stocked, "SELECT amout FROM bronze.orders")
    assert "did you mean amount (bronze.orders)?" in str(column.value).splitlines()[0]
    with pytest.raises(RatError) as nothing:
        sql(stocked, "SELECT zzzzzz FROM bronze.orders")
    assert "did you mean" not in str(nothing.value)


def test_model_freshness_on_a_column(stocked: Session, workspace: Workspace) -> None:
    """`freshness: column:` judges now - max(column), as the freshness test does, not the last change."""
    stocked.sql("CREATE TABLE silver.events AS SELECT TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (i) HOUR AS loaded_at FROM range(3) t(i)")
    write(workspace, "silver/events.sql", "SELECT * FROM {{ ref('bronze.orders') }}")
    write(workspace, "silver/events.yaml", "freshness:\n  warn_after: {hours: 6}\n  error_after: {hours: 24}\n  column: loaded_at\n")
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 5, 0, tzinfo=UTC).timestamp()  # 3 hours after the last loaded_at
    events = {t.table: t for t in list_tables(stocked, now=now).tables}["silver.events"]
    assert events.freshness.column == "loaded_at" and events.freshness.age_hours == pytest.approx(3)
    assert events.freshness.status == "fresh"
    assert events.freshness.text == "3.0h old · fresh (model freshness on max(loaded_at): warn 6.0h, error 24.0h)"


def test_ratatouilles_own_bookkeeping_is_not_listed(stocked: Session) -> None:
    stocked.sql("CREATE TABLE _rat.ledger_probe AS SELECT 1 AS x")
    assert "_rat.ledger_probe" in stocked.contents(stocked.branch)
    listing = list_tables(stocked)
    assert all(not t.table.startswith("_") for t in listing.tables)
    assert "_rat" not in [layer.name for layer in listing.layers]

"""Row-level diffs in the branch picker (notebook/widgets/branches.py): fork point by default, both directions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from ratatouille_nb.engine.session import Session
from ratatouille_nb.settings import Settings
from ratatouille_nb.workspace import Workspace, init_workspace


@pytest.fixture
def picker_session(settings: Settings, tmp_path: Path) -> Iterator[Session]:
    ws: Workspace = init_workspace(tmp_path / "diffws", settings, name="diffws")
    with Session(settings, ws) as s:
        s.sql("CREATE TABLE silver.sales AS SELECT i AS id, i % 7 AS store, i * 1.5 AS amount FROM range(20000) t(i)")
        s.sql("CREATE TABLE silver.stores AS SELECT i AS store, 'S' || i AS name FROM range(7) t(i)")
        yield s


def test_default_compares_with_the_fork_point_in_both_directions(picker_session: Session) -> None:
    from ratatouille_nb.notebook.widgets.branches import BranchPicker
    from ratatouille_nb.verbs import branches

    s = picker_session
    branches.create(s, "cleanup")
    base = s.branch
    s.use_branch("cleanup")
    s.sql("DELETE FROM silver.sales WHERE id < 4672")
    s.use_branch(base)
    s.sql("INSERT INTO silver.stores VALUES (7, 'S7')")  # the current branch moved on too
    picker = BranchPicker(s)
    picker.compare.value = "cleanup"
    assert picker.mode.value == "fork"
    incoming = picker.preview()
    incoming_by = {d.table: d for d in incoming}
    assert set(incoming_by) == {"silver.sales"}  # not the store added on the current branch since the fork
    sales = incoming_by["silver.sales"]
    assert sales.rows_exact and sales.rows_removed == 4672 and sales.rows_added == 0 and sales.net_rows == -4672
    ours = {d.table: d for d in picker.last_diffs[1]}
    assert set(ours) == {"silver.stores"} and ours["silver.stores"].rows_added == 1
    view = picker.diff_view.value
    assert "−4,672" in view and "-4,672" in view.replace("−", "-") and "fork point" in view
    assert "since then" in view and "+1" in view
    assert "sample changed rows" in view


def test_updates_by_key_and_schema_changes_with_sample_rows(picker_session: Session) -> None:
    from ratatouille_nb.notebook.widgets.branches import BranchPicker
    from ratatouille_nb.verbs import branches

    s = picker_session
    branches.create(s, "fix")
    base = s.branch
    s.use_branch("fix")
    s.sql(
        "CREATE OR REPLACE TABLE silver.stores AS SELECT store, CASE WHEN store = 3 THEN 'Renamed' ELSE name END AS name, "
        "'Lyon' AS city FROM silver.stores"
    )
    s.use_branch(base)
    picker = BranchPicker(s)
    picker.compare.value = "fix"
    [stores] = picker.preview()
    assert stores.table == "silver.stores"
    assert [c.name for c in stores.schema_changes] == ["city"]
    assert stores.net_rows == 0 and stores.sample
    view = picker.diff_view.value
    assert "+city" in view and "Renamed" in view


def test_tip_to_tip_mode(picker_session: Session) -> None:
    from ratatouille_nb.notebook.widgets.branches import BranchPicker
    from ratatouille_nb.verbs import branches

    s = picker_session
    branches.create(s, "side")
    s.sql("INSERT INTO silver.stores VALUES (8, 'S8')")  # only on the current branch
    picker = BranchPicker(s)
    picker.compare.value = "side"
    assert picker.preview() == []  # nothing new on `side` since the fork
    picker.mode.value = "tips"
    [d] = picker.preview()
    assert d.table == "silver.stores" and d.rows_removed == 1  # from current to side: the row is missing there

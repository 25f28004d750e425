"""Tab completion in `%%rat sql` cells and `%rat` lines through IPython's real completer (the path
ipykernel's complete_request takes: `Completer.completions(code, offset)`), over a real workspace."""

from __future__ import annotations

import pytest

pytest.importorskip("IPython")

from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

from tests.kernel_shell import pipelines_dir, run, shell

__all__ = ["shell"]


def complete(sh: InteractiveShell, code: str) -> list[str]:
    """What the popup would list for a cursor at the end of `code` (each completion applied to the text)."""
    offset = len(code)
    with provisionalcompleter():
        found = list(sh.Completer.completions(code, offset))
    return [code[: c.start] + c.text for c in found]


def texts(sh: InteractiveShell, code: str) -> list[str]:
    with provisionalcompleter():
        return [c.text for c in sh.Completer.completions(code, len(code))]


@pytest.fixture
def tables(shell: InteractiveShell) -> InteractiveShell:
    run(shell, "%%rat sql\nCREATE TABLE gold.daily_sales AS SELECT DATE '2024-01-01' AS day, 10.5 AS revenue, 3 AS customer_id")
    run(shell, "%%rat sql\nCREATE TABLE gold.dim_customers AS SELECT 3 AS customer_id, 'ann' AS customer_name")
    run(shell, "%%rat sql\nCREATE TABLE silver.sales AS SELECT 1 AS txn_id, 3 AS customer_id, 2 AS quantity")
    (pipelines_dir() / "gold" / "top_customers.sql").write_text("SELECT * FROM {{ ref('silver.sales') }}\n")
    return shell


def test_layer_prefix_completes_tables_on_the_branch(tables: InteractiveShell) -> None:
    assert texts(tables, "%%rat sql\nSELECT * FROM gold.") == ["gold.daily_sales", "gold.dim_customers"]
    assert texts(tables, "%%rat sql\nSELECT * FROM gold.da") == ["gold.daily_sales"]
    assert complete(tables, "%%rat sql\nSELECT * FROM gold.da")[0].endswith("FROM gold.daily_sales")
    run(tables, "%rat branch create other")
    run(tables, "%%rat sql\nCREATE TABLE gold.only_here AS SELECT 1 AS x")
    assert "gold.only_here" in texts(tables, "%%rat sql\nSELECT * FROM gold.")
    run(tables, "%rat branch checkout workspace/kws")
    assert "gold.only_here" not in texts(tables, "%%rat sql\nSELECT * FROM gold.")


def test_columns_after_a_table_or_alias_and_in_the_select_list(tables: InteractiveShell) -> None:
    code = "%%rat sql\nSELECT s.cu"
    cell = code + "\nFROM silver.sales s"
    with provisionalcompleter():
        found = [c.text for c in tables.Completer.completions(cell, len(code))]
    assert found == ["customer_id"]
    assert texts(tables, "%%rat sql\nSELECT * FROM gold.daily_sales WHERE gold.daily_sales.re") == ["revenue"]
    assert texts(tables, "%%rat sql\nSELECT * FROM gold.daily_sales d JOIN gold.dim_customers c ON d.customer_id = c.") == [
        "customer_id", "customer_name"]
    select_list = "%%rat sql\nSELECT "
    cell = select_list + "\nFROM gold.daily_sales"
    with provisionalcompleter():
        found = [c.text for c in tables.Completer.completions(cell, len(select_list))]
    assert found == ["day", "revenue", "customer_id"]
    cell = "%%rat sql\nSELECT day, re\nFROM gold.daily_sales"
    with provisionalcompleter():
        found = [c.text for c in tables.Completer.completions(cell, cell.index(" re") + 3)]
    assert found[0] == "revenue"


def test_ref_completes_models_and_tables(tables: InteractiveShell) -> None:
    found = texts(tables, "%%rat sql\nSELECT * FROM {{ ref('")
    assert "gold_top_customers" in found and "silver.sales" in found
    assert texts(tables, "%%rat sql\nSELECT * FROM {{ ref('gold_t") == ["gold_top_customers"]
    cell = "%%rat sql\nSELECT c\nFROM {{ ref('gold_top_customers') }}"
    (pipelines_dir() / "gold" / "top_customers.sql").write_text("SELECT * FROM {{ ref('silver.sales') }}\n")
    run(tables, "%rat run")
    with provisionalcompleter():
        found = [c.text for c in tables.Completer.completions(cell, cell.index("SELECT c") + 8)]
    assert found[0] == "customer_id"


def test_python_completions_are_suppressed_in_sql_cells(tables: InteractiveShell) -> None:
    tables.user_ns["storage_thing"] = 1
    assert texts(tables, "%%rat sql\nSELECT stor") == []
    assert texts(tables, "%%rat sql\nSELECT * FROM gold.daily_sales WHERE stor") == []
    assert texts(tables, "%%rat sql\nSELECT %timei") == []
    assert "%timeit" in texts(tables, "%timei")  # outside SQL cells, IPython's completions as before
    assert "storage_thing" in texts(tables, "stor")


def test_rat_line_verbs_and_branch_names(tables: InteractiveShell) -> None:
    run(tables, "%rat branch create feature-x")
    run(tables, "%rat branch checkout workspace/kws")
    assert set(texts(tables, "%rat b")) == {"branch", "build"}
    assert "checkout" in texts(tables, "%rat branch ") and "feature-x" in texts(tables, "%rat branch ")
    assert texts(tables, "%rat branch checkout fea") == ["feature-x"]
    assert texts(tables, "%rat branch delete feat") == ["feature-x"]
    assert texts(tables, "%rat run gold_t") == ["gold_top_customers"]
    assert texts(tables, "%%rat sql --branch fea\nSELECT 1")[:0] == []  # cursor at the end of the SQL, nothing odd
    line = "%%rat sql --branch fea"
    cell = line + "\nSELECT 1"
    with provisionalcompleter():
        found = [c.text for c in tables.Completer.completions(cell, len(line))]
    assert found == ["feature-x"]


def test_load_ext_twice_installs_one_matcher(shell: InteractiveShell) -> None:
    from ratatouille_nb.notebook.completion import MATCHER_ID, install

    install(shell, verbs=lambda: ["sql"])
    ids = [getattr(m, "matcher_identifier", None) for m in shell.Completer.custom_matchers]
    assert ids.count(MATCHER_ID) == 1
    assert texts(shell, "%%rat sql\nSELECT * FROM gold.") == []  # an empty workspace: nothing, and no error

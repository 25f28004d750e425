"""`%%rat sql` result tables through a real IPython shell and DuckDB: what the grid and text/plain show."""

from __future__ import annotations

import decimal

import pytest

pytest.importorskip("IPython")
pytest.importorskip("bs4")

import bs4
from IPython.core.interactiveshell import InteractiveShell

from ratatouille_nb.notebook.display import MAX_HTML, MORE_ROWS
from ratatouille_nb.notebook.formatting import format_cell, format_float, plural
from tests.kernel_shell import run, shell

__all__ = ["shell"]

QUERY = """%%rat sql
SELECT i AS id, 16314241.940000024 * (i + 1)::DOUBLE AS revenue, 2024 AS year,
       CASE WHEN i = 0 THEN NULL WHEN i = 1 THEN 'NULL' ELSE 'name ' || i END AS name,
       CASE WHEN i = 2 THEN repeat('x', 500) ELSE 'short' END AS note,
       (i * 1234567)::BIGINT AS big, 12.5::DECIMAL(18,2) AS price
FROM range(60) t(i) ORDER BY i"""


def soup(html: str) -> bs4.BeautifulSoup:
    return bs4.BeautifulSoup(html, "html.parser")


def test_grid_rounds_numbers_and_keeps_full_values(shell: InteractiveShell) -> None:
    result, _ = run(shell, QUERY)
    assert result.success
    frame = result.result
    assert frame["revenue"][0] == 16314241.940000024  # the DataFrame keeps every digit
    doc = soup(frame._repr_html_())
    rows = doc.select(".rat-result tbody tr")
    first = [td for td in rows[0].find_all("td", recursive=False)]
    revenue = first[1]
    assert revenue.get_text() == "16,314,241.94" and revenue["title"] == "16314241.940000024"
    assert "rat-num" in revenue["class"]
    assert first[0].get_text() == "0" and first[2].get_text() == "2024"  # ids and years without separators
    assert [td.get_text() for td in rows[3].find_all("td", recursive=False)][5] == "3,703,701"
    assert first[6].get_text() == "12.50"


def test_null_is_styled_apart_from_the_string_null(shell: InteractiveShell) -> None:
    result, _ = run(shell, QUERY)
    doc = soup(result.result._repr_html_())
    rows = doc.select(".rat-result tbody tr")
    null_cell = rows[0].find_all("td", recursive=False)[3]
    string_cell = rows[1].find_all("td", recursive=False)[3]
    assert null_cell.get_text() == "NULL" and "rat-null" in null_cell["class"]
    assert string_cell.get_text() == "NULL" and "rat-text" in string_cell["class"] and "rat-null" not in string_cell["class"]


def test_text_left_numbers_right_and_long_values_expand(shell: InteractiveShell) -> None:
    result, _ = run(shell, QUERY)
    html = result.result._repr_html_()
    doc = soup(html)
    heads = doc.select(".rat-result thead th")
    assert [("rat-num" in th["class"]) for th in heads] == [True, True, True, False, False, True, True]
    assert ".rat-result td.rat-num{text-align:right" in html and "td.rat-text" in html and "text-align:left" in html
    assert "position:sticky" in html and "overflow:auto" in html  # a scrollable grid, the header stays
    long_cell = doc.select(".rat-result tbody tr")[2].find_all("td", recursive=False)[4]
    details = long_cell.find("details")
    assert details is not None and len(details.summary.get_text()) <= 61 and details.summary.get_text().endswith("…")
    assert "x" * 500 in details.get_text()


def test_header_has_one_branch_badge_and_the_shown_count(shell: InteractiveShell) -> None:
    result, _ = run(shell, QUERY)
    html = result.result._repr_html_()
    doc = soup(html)
    meta = doc.select_one(".rat-result .rat-meta")
    assert meta.get_text().count("workspace/kws") == 1 and doc.select_one(".rat-badge").get_text() == "workspace/kws"
    assert "60 rows · 7 columns" in meta.get_text()
    assert "showing 10 of 60 rows" in doc.select_one(".rat-note").get_text()
    assert len(doc.select(".rat-result tbody:not(.rat-extra) tr")) == 10
    types = [small.get_text() for small in doc.select(".rat-result thead small")]
    assert types == ["BIGINT", "DOUBLE", "INTEGER", "VARCHAR", "VARCHAR", "BIGINT", "DECIMAL(18,2)"]


def test_plurals_for_one_row_and_one_column(shell: InteractiveShell) -> None:
    result, out = run(shell, "%%rat sql\nSELECT 1 AS a")
    text = repr(result.result)
    assert "1 row · 1 column" in result.result._repr_html_() and "1 row · 1 column" in text
    assert "1 rows" not in text and "showing" not in text
    run(shell, "%%rat sql\nCREATE TABLE silver.one AS SELECT 1 AS a")
    _, out = run(shell, "%%rat sql\nINSERT INTO silver.one SELECT 2")
    shown = out.outputs[0].data
    assert "(1 row)" in shown["text/plain"] and "1 row)" in shown["text/html"] and "1 rows" not in str(shown)


def test_text_repr_shows_the_same_values(shell: InteractiveShell) -> None:
    result, _ = run(shell, QUERY)
    text = repr(result.result)
    assert "16,314,241.94" in text and "16314241.940000024" not in text
    assert "showing 10 of 60 rows" in text and "branch workspace/kws" in text
    lines = text.splitlines()
    header = lines[0]
    assert header.split() == ["id", "revenue", "year", "name", "note", "big", "price"]
    assert "x" * 100 not in text and "xxx…" in text
    # numbers are right-aligned: the id column's values end where its header ends
    assert lines[2].index("0") == header.index("id") + 1


def test_formatting_rules() -> None:
    assert plural(1, "row") == "1 row" and plural(0, "row") == "0 rows" and plural(1234, "row") == "1,234 rows"
    assert format_float(0.000123456) == "0.000123" and format_float(-2.5) == "-2.50" and format_float(float("nan")) == "NaN"
    assert format_cell(decimal.Decimal("1234567.891234"), "x").text == "1,234,567.89"
    assert format_cell(decimal.Decimal("12.5")).text == "12.5" and format_cell(decimal.Decimal("0.000400")).text == "0.000400"
    assert format_cell(None).kind == "null" and format_cell("NULL").kind == "text"
    assert format_cell(True).text == "true" and format_cell(b"\x00\x01").text == "\\x0001"
    assert format_cell("a\nb").truncated and format_cell(12345, "customer_id").text == "12345"


def test_more_rows_continue_the_grid_in_an_expander(shell: InteractiveShell) -> None:
    result, _ = run(shell, QUERY)
    html = result.result._repr_html_()
    doc = soup(html)
    tables = doc.select(".rat-result table")
    assert len(tables) == 1  # one grid: the extra rows keep its column widths and sticky header
    shown = doc.select(".rat-result table > tbody:not(.rat-extra) > tr")
    extra = doc.select(".rat-result table > tbody.rat-extra > tr")
    assert len(shown) == 10 and len(extra) == 50
    assert [td.get_text() for td in extra[0].find_all("td", recursive=False)][:3] == ["10", "179,456,661.34", "2024"]
    assert extra[-1].find("td").get_text() == "59"
    more = doc.select_one(".rat-result > details.rat-more")
    assert more is not None and more.summary.get_text() == "show 50 more rows" and more.get("open") is None
    note = doc.select_one(".rat-note").get_text()
    assert "showing 10 of 60 rows" in note and "full result (60 rows) is the returned DataFrame (_ or -o VAR)" in note
    assert "tbody.rat-extra{display:none}" in html and "details.rat-more[open]) tbody.rat-extra{display:table-row-group}" in html
    text = repr(result.result)
    assert "showing 10 of 60 rows" in text and "show 50" not in text and len(text.splitlines()) == 2 + 10 + 2


def test_more_rows_are_bounded(shell: InteractiveShell) -> None:
    result, _ = run(shell, "%%rat sql\nSELECT i AS id, 'name ' || i AS name FROM range(5000) t(i) ORDER BY i")
    assert len(result.result) == 5000  # the DataFrame has every row
    html = result.result._repr_html_()
    doc = soup(html)
    assert len(doc.select("tbody.rat-extra tr")) == MORE_ROWS
    assert doc.select_one("details.rat-more summary").get_text() == f"show {MORE_ROWS} more rows"
    assert "showing 10 of 5,000 rows" in doc.select_one(".rat-note").get_text()
    assert len(html) < MAX_HTML
    # wide rows: fewer extra rows, the HTML stays under the bound
    result, _ = run(shell, "%%rat sql\nSELECT i AS id, repeat('x', 4000) AS blob FROM range(300) t(i) ORDER BY i")
    html = result.result._repr_html_()
    extra = soup(html).select("tbody.rat-extra tr")
    assert 0 < len(extra) < MORE_ROWS and len(html) < MAX_HTML
    assert soup(html).select_one("details.rat-more summary").get_text() == f"show {len(extra)} more rows"


def test_a_small_result_has_no_expander(shell: InteractiveShell) -> None:
    result, _ = run(shell, "%%rat sql\nSELECT i AS id FROM range(10) t(i)")
    doc = soup(result.result._repr_html_())
    assert len(doc.select("tbody tr")) == 10
    assert doc.select_one("details.rat-more") is None and doc.select_one("tbody.rat-extra") is None
    assert doc.select_one(".rat-note") is None

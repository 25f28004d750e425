"""`rat docs` opened in a real browser (Playwright driving Debian's /usr/bin/chromium): the static
site of the bakery dbt project lists its models, shows a model's description, columns with their
descriptions and types, tests and last run, and its lineage graph selects what is clicked."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from tests.browser.conftest import VIEWPORT

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dbt_bakery"


def test_docs_site_in_a_browser(browser: Any, tmp_path: Path, screenshot_dir: Path) -> None:
    project = tmp_path / "bakery"
    shutil.copytree(FIXTURE, project)
    home = str(tmp_path / "rat-home")
    for args in (["build"], ["docs"]):
        result = CliRunner().invoke(cli, ["--home", home, "--workspace", str(project), *args])
        assert result.exit_code == 0, result.output
    index = project / "target" / "docs" / "index.html"
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(index.as_uri())
        assert page.title() == "corner_bakery docs"
        nav = page.locator("nav a")
        assert "orders" in nav.all_inner_texts() and "raw_payments" in nav.all_inner_texts()
        page.locator('nav a[data-id="gold.orders"]').click()
        assert page.locator("#node-title").inner_text() == "gold.orders"
        assert page.locator("#node-description").inner_text() == "Orders with their payments, pivoted by method."
        columns = page.locator("#columns").inner_text()
        assert "status" in columns and "Where an order is: placed, shipped, completed or returned." in columns
        assert "DECIMAL(38,0)" in columns
        assert "relationships(customer_id)" in page.locator("#tests").inner_text()
        assert page.locator("#last-run").inner_text().startswith("success at ")
        page.screenshot(path=str(screenshot_dir / "docs-site-orders.png"))
        # The lineage graph: clicking a node shows it and marks it selected.
        page.locator('#graph .node[data-id="gold.customers"]').click()
        page.wait_for_function("document.getElementById('node-title').textContent === 'gold.customers'")
        assert page.locator('#graph .node.selected').get_attribute("data-id") == "gold.customers"
        assert "The till's customer number" in page.locator("#node-description").inner_text()
        # Upstream links navigate too.
        page.locator("#details a", has_text="gold.orders").first.click()
        page.wait_for_function("document.getElementById('node-title').textContent === 'gold.orders'")
    finally:
        context.close()

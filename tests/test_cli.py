"""The `rat` CLI: verbs, formats, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli


@pytest.fixture
def rat(tmp_path: Path):
    home = str(tmp_path / "home")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["--home", home, *args], obj={}, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_init_sql_tables_round_trip(rat, tmp_path: Path) -> None:
    ws = str(tmp_path / "shop")
    assert "created workspace 'shop'" in rat("init", ws)
    out = rat("-w", ws, "sql", "CREATE TABLE bronze.items AS SELECT i AS id, i * 1.5 AS price FROM range(10) t(i)")
    assert "bronze.items: create (10 rows)" in out and "committed" in out
    rows = json.loads(rat("-w", ws, "sql", "--format", "json", "SELECT id, price FROM bronze.items ORDER BY id LIMIT 2"))
    assert rows == [{"id": 0, "price": "0.0"}, {"id": 1, "price": "1.5"}]
    csv = rat("-w", ws, "sql", "--format", "csv", "SELECT id FROM bronze.items WHERE id < 3 ORDER BY id")
    assert csv.splitlines() == ['"id"', "0", "1", "2"]
    table = rat("-w", ws, "sql", "--limit", "3", "SELECT id FROM bronze.items ORDER BY id")
    assert "3 row(s) shown (limit 3; more exist)" in table
    listing = rat("-w", ws, "tables")
    assert "bronze.items" in listing and "10" in listing
    show = rat("-w", ws, "tables", "show", "bronze.items")
    assert "price" in show and "DECIMAL" in show  # DuckDB's type names
    assert "storage root" in rat("-w", ws, "workspace", "show")


def test_workspace_create_and_list(rat) -> None:
    rat("workspace", "create", "alpha")
    rat("workspace", "create", "beta")
    out = rat("workspace", "list")
    assert "alpha" in out and "workspace/beta" in out
    out = rat("-w", "alpha", "workspace", "show")
    assert "workspace/alpha" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "SELEC 1"], "error: Parser Error"),
        (["sql", "SELECT * FROM silver.missing"], "error: table 'silver.missing' does not exist"),
        (["sql", "--branch", "nope", "SELECT 1"], "error: unknown reference 'nope'"),
        (["--profile", "huge", "sql", "SELECT 1"], "error: unknown resource profile 'huge'"),
        (["sql", "INSERT INTO silver.t SELECT 1"], "error: table 'silver.t' does not exist"),
    ],
)
def test_errors_are_one_line_and_exit_1(rat, tmp_path: Path, args: list[str], message: str) -> None:
    ws = str(tmp_path / "w")
    rat("init", ws)
    out = rat("-w", ws, *args, code=1)
    assert out.startswith(message)
    assert "Traceback" not in out


def test_no_workspace_is_explained(rat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = rat("sql", "SELECT 1", code=1)
    assert "error: no workspace.yaml" in out and "rat init" in out


def test_installed_entry_point_and_debug_traceback(tmp_path: Path) -> None:
    rat_bin = Path(sys.executable).with_name("rat")
    env = {"RAT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    ws = tmp_path / "w"
    subprocess.run([str(rat_bin), "init", str(ws)], check=True, env=env, capture_output=True)
    ok = subprocess.run([str(rat_bin), "-w", str(ws), "sql", "SELECT 41 + 1 AS answer"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "42" in ok.stdout
    bad = subprocess.run([str(rat_bin), "-w", str(ws), "sql", "SELECT nope"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: Binder Error") and "Traceback" not in bad.stderr
    dbg = subprocess.run([str(rat_bin), "--debug", "-w", str(ws), "sql", "SELECT nope"], env=env, capture_output=True, text=True)
    assert dbg.returncode == 1 and "Traceback" in dbg.stderr


def test_demo_builds_all_layers(tmp_path: Path) -> None:
    from ratatouille_nb.demo import run_demo
    from ratatouille_nb.settings import Settings

    lines: list[str] = []
    counts = run_demo(Settings.from_env(home=str(tmp_path / "home")), tmp_path / "demo", rows=20_000, echo=lines.append)
    # 20,000 CSV rows + 1,000 from the Excel export + a second batch of 2,000 (10 % updates)
    assert counts["bronze.raw_sales"] == 23_000
    assert counts["_rat.ingested_files"] == 3
    assert 20_000 < counts["silver.sales"] < 23_000
    assert counts["gold.daily_sales_kpis"] > 0
    assert sum("published: merged into workspace/demo" in line for line in lines) == 2
    assert any("updated" in line and "silver_sales" in line for line in lines)
    assert any(line.startswith("done in") for line in lines)
    # A second run reuses the workspace: every landing file is in the ledger, nothing changes.
    again = run_demo(Settings.from_env(home=str(tmp_path / "home")), tmp_path / "demo", rows=20_000, echo=lines.append)
    assert again == counts

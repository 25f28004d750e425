"""Failures in the notebook through a real IPython shell: one red `RatError:` line (not IPython's
UsageError), failing `%rat run|test|build` raise so the cell is errored, remedies are notebook
commands, test output starts with its summary, the progress display shows the phase and turns red."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("IPython")

from IPython.core.interactiveshell import InteractiveShell

from ratatouille_nb.notebook.failures import CellError
from tests.kernel_shell import pipelines_dir, run, shell

__all__ = ["shell"]


def plain(out: Any) -> str:
    """What the cell printed, without ANSI colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


def widgets_in(out: Any) -> list[Any]:
    from ipywidgets.widgets.widget import _instances

    ids = [o.data["application/vnd.jupyter.widget-view+json"]["model_id"] for o in out.outputs if "application/vnd.jupyter.widget-view+json" in o.data]
    return [_instances[i] for i in ids]


def models_with_a_failing_test() -> None:
    root = pipelines_dir()
    (root / "silver" / "nums.sql").write_text("SELECT i % 8 AS i, i AS n FROM range(10) t(i)\n")
    (root / "silver" / "nums.yaml").write_text("columns:\n  - name: i\n    tests: [unique, not_null]\n  - name: n\n    tests: [not_null]\n")


def test_user_errors_are_one_red_rat_error_line(shell: InteractiveShell) -> None:
    for cell in ("%%rat sql\nSELECT * FROM silver.nope", "%rat bogus-verb", "%rat branch nope-branch", "%%rat sql\nSELECT 1 +\nFROM"):
        result, out = run(shell, cell)
        text = out.stdout + out.stderr
        assert not result.success, cell
        assert isinstance(result.error_in_exec, CellError), cell
        assert "UsageError" not in text and "Traceback" not in text, text
        first = next(line for line in text.splitlines() if line.strip())
        assert first.startswith("\x1b[1;31mRatError:\x1b[0m\x1b[0;31m "), first
    stb = CellError("no table 'silver.nope'", hint="did you mean silver.nums?")._render_traceback_()
    assert stb[0] == "\x1b[1;31mRatError:\x1b[0m\x1b[0;31m no table 'silver.nope'\x1b[0m"
    assert "hint: did you mean silver.nums?" in stb[1]


def test_branch_checkout_and_switch(shell: InteractiveShell) -> None:
    from ratatouille_nb.verbs import session as sessions

    run(shell, "%rat branch create dev")
    _, out = run(shell, "%rat branch checkout workspace/kws")
    assert sessions.current().branch == "workspace/kws" and "on branch 'workspace/kws'" in out.stdout
    run(shell, "%rat branch switch dev")
    assert sessions.current().branch == "dev"
    result, out = run(shell, "%rat branch checkout")
    assert not result.success and "usage: %rat branch checkout NAME" in out.stdout


def test_failing_build_raises_with_notebook_remedies_and_turns_red(shell: InteractiveShell) -> None:
    from ratatouille_nb.api import rat
    from ratatouille_nb.verbs import session as sessions

    models_with_a_failing_test()
    result, out = run(shell, "%rat build")
    assert not result.success  # the cell is errored: Run All stops here
    text = plain(out)
    build_branch = rat.last_run.build_branch
    assert build_branch.startswith("workspace/kws/build/") and not rat.last_run.published
    assert "RatError: " in text and "build not published" in text
    assert f"%rat branch checkout {build_branch}" in text and f"%rat branch delete {build_branch}" in text
    assert "rat sql --branch" not in text  # no terminal commands
    progress = widgets_in(out)[0]
    assert progress.bar.bar_style == "danger" and progress.phase == "failed"
    assert "rat-progress-failed" in progress._dom_classes
    summary = progress.summary.value
    assert "1 failed" in summary and "2 passed" in summary and "0 warned" in summary
    assert summary.index("unique(i)") < summary.index("not_null(i)")  # failures first
    # the remedy works as written
    assert run(shell, f"%rat branch checkout {build_branch}")[0].success
    assert sessions.current().branch == build_branch
    run(shell, "%rat branch checkout workspace/kws")
    assert run(shell, f"%rat branch delete {build_branch}")[0].success


def test_passing_build_is_green_and_shows_the_test_phase_summary(shell: InteractiveShell) -> None:
    from ratatouille_nb.api import rat

    root = pipelines_dir()
    (root / "silver" / "nums.sql").write_text("SELECT i FROM range(10) t(i)\n")
    (root / "silver" / "nums.yaml").write_text("columns:\n  - name: i\n    tests: [unique]\n")
    result, out = run(shell, "%rat build")
    assert result.success and rat.last_run.published
    progress = widgets_in(out)[0]
    assert progress.bar.bar_style == "success" and "tests: 0 failed, 1 passed, 0 warned" in progress.phase_label.value


def test_build_shows_the_test_phase_while_tests_run(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    import ratatouille_nb.pipeline.quality as quality
    from ratatouille_nb.notebook.widgets.progress import RunProgress

    seen: list[tuple[str, str]] = []
    original = quality.run_tests

    def spy(*args: Any, **kwargs: Any) -> Any:
        from ipywidgets.widgets.widget import _instances

        for widget in list(_instances.values()):
            if isinstance(widget, RunProgress):
                seen.append((widget.phase, widget.bar.description))
        return original(*args, **kwargs)

    monkeypatch.setattr(quality, "run_tests", spy)
    root = pipelines_dir()
    (root / "silver" / "nums.sql").write_text("SELECT i FROM range(10) t(i)\n")
    (root / "silver" / "nums.yaml").write_text("columns:\n  - name: i\n    tests: [unique]\n")
    assert run(shell, "%rat build")[0].success
    assert ("testing", "build: testing") in seen


def test_failing_test_magic_raises_and_lists_failures_first_with_samples(shell: InteractiveShell) -> None:
    from ratatouille_nb.api import rat

    models_with_a_failing_test()
    assert run(shell, "%rat run")[0].success
    result, out = run(shell, "%rat test")
    assert not result.success and "RatError: 1 error-level test failed on 'workspace/kws': silver_nums.unique(i)" in plain(out)
    progress = widgets_in(out)[0]
    assert progress.bar.bar_style == "danger" and "1 failed, 2 passed, 0 warned" in progress.phase_label.value
    summary = progress.summary.value
    assert summary.index("1 failed") < summary.index("<table")
    assert "rat-st-fail" in summary and "rat-sample" in summary and "failing row" in summary
    assert rat.last_run.results  # the report is kept


def test_failing_run_raises_and_names_the_model(shell: InteractiveShell) -> None:
    (pipelines_dir() / "silver" / "bad.sql").write_text("SELECT nope FROM range(3)\n")
    result, out = run(shell, "%rat run")
    text = plain(out)
    assert not result.success and "RatError: run failed" in text and "nothing was committed" in text
    assert "%rat run" in text
    assert widgets_in(out)[0].bar.bar_style == "danger"


def test_test_summary_text_and_html() -> None:
    from ratatouille_nb.notebook.widgets.testsummary import TestSummary, summary_line
    from ratatouille_nb.pipeline.testresult import TestResult

    results = [
        TestResult("silver.a", f"not_null(c{i})", "not_null", f"c{i}", "error", "pass") for i in range(25)
    ] + [TestResult("silver.a", "unique(id)", "unique", "id", "error", "fail", failing=7, sample=[{"id": 1, "n": 2}, {"id": 3, "n": None}])]
    assert summary_line(results) == "1 failed, 25 passed, 0 warned"
    summary = TestSummary(results, ref="main")
    text = repr(summary)
    assert text.splitlines()[0] == "1 failed, 25 passed, 0 warned on 'main'"
    assert "FAIL  silver.a  unique(id)  7 failing rows" in text and "NULL" in text
    html = summary._repr_html_()
    assert html.index("unique(id)") < html.index("not_null(c0)") and "25 passing tests" in html and "… 5 more" in html


def test_rat_errors_from_python_cells_are_one_line_too(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    result, out = run(shell, "from ratatouille_nb import rat\nrat.sql('SELECT * FROM silver.nope')")
    text = plain(out)
    assert not result.success and text.startswith("RatError: ") and "silver.nope" in text and "Traceback" not in text
    result, out = run(shell, "1 / 0")  # a bug keeps its traceback
    assert not result.success and "ZeroDivisionError" in plain(out) and "RatError" not in plain(out)
    monkeypatch.setenv("RAT_DEBUG", "1")
    result, out = run(shell, "rat.sql('SELECT * FROM silver.nope')")
    assert "Traceback" in plain(out) or "----> " in plain(out) or "Cell In[" in plain(out)

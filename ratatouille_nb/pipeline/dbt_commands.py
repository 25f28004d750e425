"""The core of `rat seed` and `rat deps` (cli/dbt.py calls one function each; `rat docs` is lineage/site.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ratatouille_nb.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.pipeline.dbt.packages import PackageStatus
    from ratatouille_nb.pipeline.executor import Event
    from ratatouille_nb.pipeline.runs import RunRecord


def seed_selectors(selectors: list[str] | tuple[str, ...]) -> list[str]:
    """Each selector term intersected with `resource_type:seed` (every seed when none is given)."""
    terms = [t for raw in selectors for t in raw.split()]
    return [f"{t},resource_type:seed" for t in terms] or ["resource_type:seed"]


def run_seeds(
    session: Session,
    selectors: list[str] | tuple[str, ...] = (),
    *,
    exclude: list[str] | tuple[str, ...] = (),
    branch: str | None = None,
    on_event: Event | None = None,
) -> RunRecord:
    """`rat seed`: load the selected seed CSVs into their tables, as one atomic commit."""
    from ratatouille_nb.pipeline.executor import Runner

    runner = Runner(session)
    if not any(m.resource_type == "seed" for m in runner.project.models.values()):
        raise PipelineError(f"no seeds in {session.workspace.root}", hint="seeds are .csv files under the dbt project's seed-paths")
    return runner.run(seed_selectors(selectors), exclude=exclude, branch=branch, command="seed", on_event=on_event)


def dependencies(root: Path) -> list[PackageStatus]:
    """`rat deps`: where each package of packages.yml comes from, or why it cannot be fetched."""
    from ratatouille_nb.pipeline.dbt.packages import statuses
    from ratatouille_nb.yamlfile import load_yaml_with_lines

    path = root / "dbt_project.yml"
    cfg: Any = load_yaml_with_lines(path)[0] if path.is_file() else {}
    return statuses(root, cfg if isinstance(cfg, dict) else {})

"""dbt packages (packages.yml / dependencies.yml) without a network registry.

dbt_utils is shipped with Ratatouille, written for DuckDB (ratatouille_nb/dbt_packages/dbt_utils).
Any other package loads its macros from `dbt_packages/<name>/` (dbt's install folder) or from a
`local:` path; one that is not there is an error naming it. `rat deps` reports, per package,
where it comes from or that it cannot be fetched here and where to copy it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ratatouille_nb.pipeline.errors import PipelineError
from ratatouille_nb.yamlfile import load_yaml_with_lines

SHIPPED = Path(__file__).resolve().parents[2] / "dbt_packages"


@dataclass(frozen=True)
class PackageStatus:
    name: str
    spec: str
    source: str  # "shipped", "installed", "local", "missing"
    path: Path | None
    message: str


def _declared(root: Path, cfg: dict[str, Any]) -> list[tuple[str, str, Path | None]]:
    """(name, spec text, local path) of each declared package."""
    out: list[tuple[str, str, Path | None]] = []
    for file in ("packages.yml", "dependencies.yml"):
        path = root / file
        if not path.is_file():
            continue
        data, _lines = load_yaml_with_lines(path)
        for item in (data or {}).get("packages") or []:
            if not isinstance(item, dict):
                raise PipelineError("each package is a mapping (package:, git: or local:)", path=path)
            if "package" in item:
                out.append((str(item["package"]).rsplit("/", 1)[-1], f"{item['package']} {item.get('version', '')}".strip(), None))
            elif "git" in item:
                url = str(item["git"]).rstrip("/")
                out.append((url.rsplit("/", 1)[-1].removesuffix(".git"), url, None))
            elif "local" in item:
                local = (root / str(item["local"])).resolve()
                out.append((_project_name(local) or local.name, f"local: {item['local']}", local))
            else:
                raise PipelineError(f"unknown package entry {sorted(item)}", path=path, hint="use package:, git: or local:")
    return out


def _project_name(folder: Path) -> str | None:
    path = folder / "dbt_project.yml"
    if not path.is_file():
        return None
    data, _ = load_yaml_with_lines(path)
    return str(data.get("name")) if isinstance(data, dict) and data.get("name") else None


def _macro_dirs(folder: Path) -> list[Path]:
    data: Any = None
    if (folder / "dbt_project.yml").is_file():
        data, _ = load_yaml_with_lines(folder / "dbt_project.yml")
    paths = (data or {}).get("macro-paths") or ["macros"] if isinstance(data, dict) else ["macros"]
    return [folder / p for p in ([paths] if isinstance(paths, str) else paths)]


def statuses(root: Path, cfg: dict[str, Any]) -> list[PackageStatus]:
    """Where each declared package comes from (`rat deps` prints these)."""
    install = root / str(cfg.get("packages-install-path") or "dbt_packages")
    out = []
    for name, spec, local in _declared(root, cfg):
        if name == "dbt_utils":
            out.append(PackageStatus(name, spec, "shipped", SHIPPED / "dbt_utils", "shipped with Ratatouille, written for DuckDB"))
        elif local is not None:
            state = "local" if local.is_dir() else "missing"
            out.append(PackageStatus(name, spec, state, local, "local folder" if local.is_dir() else f"local folder {local} does not exist"))
        elif (install / name).is_dir():
            out.append(PackageStatus(name, spec, "installed", install / name, f"present in {install / name}"))
        else:
            out.append(PackageStatus(
                name, spec, "missing", None,
                f"cannot be fetched here (Ratatouille does not download dbt packages): copy it into {install / name}",
            ))
    return out


def package_macro_paths(root: Path, cfg: dict[str, Any], warnings: list[str]) -> dict[str, list[Path]]:
    """Package name -> its macro folders; a missing package is an error naming it."""
    out: dict[str, list[Path]] = {}
    for status in statuses(root, cfg):
        if status.source == "missing":
            raise PipelineError(f"dbt package '{status.name}' ({status.spec}) is not installed: {status.message}", path=root / "packages.yml",
                                hint="`rat deps` lists what each package needs")
        assert status.path is not None
        out[status.name] = [d for d in _macro_dirs(status.path) if d.is_dir()] if status.source != "shipped" else [status.path / "macros"]
    return out

"""Promote a notebook to pipeline files: `%%rat sql` cells that create or save tables become
`pipelines/<layer>/<table>.sql` (+ YAML with the produced columns), ingestion cells become
`pipelines/<layer>/<name>.py` with `@pipeline`. References to other promoted tables become
`{{ ref() }}`. Nothing is overwritten without `force`, and a refused promotion writes nothing.

Every target is checked before anything is planned: a table is `layer.table` (lowercase
identifiers, engine/statements.py) in one of the workspace's layers, an ingestion cell's layer is
one of them too, and every file lands under the pipelines folder (or `--into`) — whatever a cell,
its `--save` or its `-- @layer:` header says, and whoever calls (CLI, REST, magics).

Planning never stops at a bad cell: a cell whose SQL does not parse or whose target is refused is
listed among the skipped cells with `failed` and the reason. Writing refuses while a failed cell
is not explicitly skipped (`skip=[number]`), so nothing is silently left out. Cells are numbered
by their 1-based position in the notebook (export/cells.py), the same in the plan, the files'
header comments and the errors.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ratatouille_nb.errors import RatError
from ratatouille_nb.export.cells import CellIngest, CellModel, CellSkip, cell_number, read_cell

if TYPE_CHECKING:
    from ratatouille_nb.engine.session import Session
    from ratatouille_nb.workspace import Workspace

Status = Literal["new", "unchanged", "overwrite", "conflict"]
_JINJA_EXPR_RE = re.compile(r"\{\{\s*([A-Za-z_][\w]*)\s*(\|[^}]*)?\}\}")


class PromoteError(RatError):
    """The notebook cannot be promoted as asked (bad path, conflicts, duplicate tables)."""


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    content: str
    status: Status
    cell: int


@dataclass(frozen=True)
class PlannedModel:
    """What one cell becomes: a SQL model (`layer.table`, its materialization) or a Python ingestion."""

    cell: int
    name: str
    target: str
    kind: Literal["sql", "python"]
    materialized: str
    files: tuple[Path, ...] = ()


@dataclass
class PromoteResult:
    files: list[PlannedFile] = field(default_factory=list)
    models: list[PlannedModel] = field(default_factory=list)
    skipped: list[CellSkip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def conflicts(self) -> list[PlannedFile]:
        return [f for f in self.files if f.status == "conflict"]

    @property
    def failed(self) -> list[CellSkip]:
        """Cells left out because they are broken (and not skipped on request)."""
        return [c for c in self.skipped if c.failed]


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _check_layer(layer: str, cell: int, workspace: Workspace) -> None:
    layers = workspace.config.layers
    if layer not in layers:
        raise PromoteError(
            f"cell {cell}: '{layer}' is not a layer of workspace '{workspace.name}' ({', '.join(layers)})",
            hint="save into one of the layers (e.g. --save silver.orders) or add the layer to workspace.yaml `layers:`",
        )


def _check_target(item: CellModel | CellIngest, workspace: Workspace) -> None:
    """A cell's table or layer, validated before any path is built from it."""
    from ratatouille_nb.engine.statements import validate_table_key
    from ratatouille_nb.errors import InvalidNameError

    if isinstance(item, CellModel):
        try:
            validate_table_key(item.target)
        except InvalidNameError as exc:
            raise PromoteError(f"cell {item.index}: {exc}") from None
        _check_layer(item.target.split(".", 1)[0], item.index, workspace)
    else:
        _check_layer(item.layer, item.index, workspace)


def _rewrite_refs(sql: str, known: set[str]) -> str:
    """Replace `layer.table` references to known tables with `{{ ref('layer.table') }}` (not inside strings)."""
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        tokens = Tokenizer(dialect="duckdb").tokenize(sql)
    except Exception:  # noqa: BLE001 - sqlglot raises several error types; fall back to no rewriting
        return sql
    edits: list[tuple[int, int, str]] = []
    i = 0
    while i + 2 < len(tokens):
        a, dot, b = tokens[i], tokens[i + 1], tokens[i + 2]
        if dot.token_type == TokenType.DOT and a.token_type == TokenType.VAR and b.token_type == TokenType.VAR:
            key = f"{a.text}.{b.text}".lower()
            before = tokens[i - 1] if i > 0 else None
            if key in known and not (before is not None and before.token_type == TokenType.DOT):
                edits.append((a.start, b.end + 1, f"{{{{ ref('{key}') }}}}"))
                i += 3
                continue
        i += 1
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql


def _yaml_for(target: str, session: Session | None, header: dict[str, str]) -> str:
    lines = [f"description: Promoted from a notebook ({target}).", "columns:"]
    stats = None
    if session is not None and target in session.contents():
        stats = session.table_stats(target)
    for name, typ, _nullable in (stats or {}).get("schema", []):
        lines.append(f"  - name: {name}")
        lines.append(f"    type: {typ}")
        lines.append("    tests: []  # e.g. [not_null, unique]")
    if not stats:
        lines[-1] = "columns: []  # run the notebook first to infer columns and types"
    return "\n".join(lines) + "\n"


def _sql_file(cell: CellModel, notebook: Path, known: set[str], warnings: list[str]) -> str:
    layer, table = cell.target.split(".", 1)
    header = {"name": f"{layer}_{table}", "materialized": "table", **cell.header}
    sql = _rewrite_refs(cell.select_sql, known - {cell.target} | ({cell.target} if header["materialized"] == "incremental" else set()))
    for m in _JINJA_EXPR_RE.finditer(sql):
        name = m.group(1)
        if name not in ("ref", "this", "source", "var", "env_var", "watermark", "is_incremental"):
            warnings.append(f"cell {cell.index}: notebook variable '{name}' became var('{name}'); pass it with --vars {name}=…")
    sql = _JINJA_EXPR_RE.sub(lambda m: m.group(0) if m.group(1) in ("ref", "this") else f"{{{{ var('{m.group(1)}') }}}}", sql)
    head = "\n".join(f"-- @{k}: {v}" for k, v in header.items())
    return f"-- Promoted from {notebook.name}, cell {cell.index}\n{head}\n\n{sql.strip()}\n"


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _py_file(cell: CellIngest, notebook: Path) -> str:
    func = _identifier(cell.name)
    body = textwrap.indent(cell.code.strip() or "pass", "    ")
    schedule = f", schedule={cell.header['schedule']!r}" if cell.header.get("schedule") else ""
    return (
        f'"""Promoted from {notebook.name}, cell {cell.index}."""\n\n'
        "from ratatouille_nb import pipeline, rat\n\n\n"
        f"@pipeline(name={cell.name!r}, layer={cell.layer!r}{schedule})\n"
        f"def {func}():\n{body}\n"
    )


def plan_promotion(
    notebook: Path,
    workspace: Workspace,
    *,
    into: Path | None = None,
    session: Session | None = None,
    skip: Iterable[int] = (),
) -> PromoteResult:
    """What promoting `notebook` would write (no file is touched); cells numbered in `skip` are left out."""
    import nbformat

    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise PromoteError(f"{notebook}: not a notebook file (.ipynb)")
    target_dir = (into or workspace.pipelines_dir).resolve()
    if not _inside(target_dir, workspace.root):
        raise PromoteError(f"{target_dir} is outside the workspace {workspace.root}", hint="--into must be a folder inside the workspace")
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many error types for bad files
        raise PromoteError(f"{notebook}: cannot read notebook: {exc}") from None
    result = PromoteResult()
    found: list[CellModel | CellIngest] = []
    asked = set(skip)
    for position, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        number = cell_number(position)
        try:
            read = read_cell(number, cell.source, set(cell.get("metadata", {}).get("tags", [])))
            if not isinstance(read, CellSkip):
                _check_target(read, workspace)
        except RatError as exc:
            message = str(exc.args[0] if exc.args else exc).removeprefix(f"cell {number}: ")
            read = CellSkip(number, message, failed=True)
        if number in asked:
            why = "skipped on request"
            if isinstance(read, CellSkip) and read.failed:
                why += f" (it fails: {read.reason})"
            result.skipped.append(CellSkip(number, why))
            continue
        if isinstance(read, CellSkip):
            result.skipped.append(read)
        else:
            found.append(read)
    known = {c.target for c in found if isinstance(c, CellModel)}
    if session is not None:
        known |= set(session.contents())
    seen: dict[str, int] = {}
    for item in found:
        if isinstance(item, CellModel):
            if item.target in seen:
                result.warnings.append(f"cell {item.index}: {item.target} is also built by cell {seen[item.target]}; the later cell wins")
            seen[item.target] = item.index
    planned: dict[Path, tuple[str, int]] = {}
    for item in found:
        if isinstance(item, CellModel):
            if seen[item.target] != item.index:
                result.skipped.append(CellSkip(item.index, f"{item.target} is built by a later cell ({seen[item.target]})"))
                continue
            layer, table = item.target.split(".", 1)
            base = target_dir / layer / table
            planned[base.with_suffix(".sql")] = (_sql_file(item, notebook, known, result.warnings), item.index)
            planned[base.with_suffix(".yaml")] = (_yaml_for(item.target, session, item.header), item.index)
            result.models.append(
                PlannedModel(
                    cell=item.index,
                    name=item.header.get("name") or f"{layer}_{table}",
                    target=item.target,
                    kind="sql",
                    materialized=item.header.get("materialized") or "table",
                    files=(base.with_suffix(".sql"), base.with_suffix(".yaml")),
                )
            )
        else:
            path = target_dir / item.layer / (_identifier(item.name) + ".py")
            planned[path] = (_py_file(item, notebook), item.index)
            result.models.append(
                PlannedModel(cell=item.index, name=item.name, target=item.layer, kind="python", materialized="python", files=(path,))
            )
    result.skipped.sort(key=lambda c: c.index)
    for path, (content, index) in sorted(planned.items()):
        if not _inside(path, target_dir) or path.resolve().parent == target_dir:
            raise PromoteError(f"cell {index}: {path} would be outside the pipeline folders under {target_dir}")
        if not path.exists():
            status: Status = "new"
        elif path.read_text() == content:
            status = "unchanged"
        else:
            status = "conflict"
        result.files.append(PlannedFile(path=path, content=content, status=status, cell=index))
    return result


def promote(
    notebook: Path,
    workspace: Workspace,
    *,
    into: Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    session: Session | None = None,
    skip: Iterable[int] = (),
) -> PromoteResult:
    """Write the planned files; refuses (writing nothing) if any would overwrite a different file without
    `force`, or while a broken cell is not in `skip`."""
    result = plan_promotion(notebook, workspace, into=into, session=session, skip=skip)
    if dry_run:
        return result
    if result.failed:
        first = result.failed[0]
        numbers = " ".join(str(c.index) for c in result.failed)
        more = f" (and {len(result.failed) - 1} more failing cell(s))" if len(result.failed) > 1 else ""
        raise PromoteError(
            f"cell {first.index} fails: {first.reason}{more}",
            hint=f"fix the cell, or promote without it: `--skip {numbers}` (the Promote dialog offers to skip it)",
        )
    if result.conflicts and not force:
        names = ", ".join(str(f.path.relative_to(workspace.root)) for f in result.conflicts)
        raise PromoteError(f"would overwrite {len(result.conflicts)} existing file(s): {names}", hint="review them, then use --force")
    final = []
    for f in result.files:
        if f.status != "unchanged":
            f.path.parent.mkdir(parents=True, exist_ok=True)
            f.path.write_text(f.content)
        final.append(PlannedFile(path=f.path, content=f.content, status="overwrite" if f.status == "conflict" else f.status, cell=f.cell))
    result.files = final
    result.written = True
    return result

"""DuckDB SQL over a table version's own files: the live rows of data files, minus their position deletes.

Writers, compaction and row-level diffs read data files directly with `read_parquet` (not through
`iceberg_scan`) so that work is limited to the files that matter and each row keeps its file and
position. A row is live when no position-delete file of its data file lists `(file, position)`;
`live_rows_sql` expresses that as an anti-join DuckDB streams and spills like any other join.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ratatouille_nb.catalog.deletes import LiveFile, delete_files_of

FILE_COL = "__rat_file"  # the data file a row was read from (read_parquet's filename column, renamed)
POS_COL = "file_row_number"  # its 0-based position in that file: Iceberg's `pos`


def sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_list(paths: Iterable[str]) -> str:
    return "[" + ", ".join(sql_str(p) for p in paths) + "]"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_files_sql(paths: Sequence[str], *, positions: bool = False) -> str:
    """`read_parquet` over data files by name (`hive_partitioning` off: paths hold `col=value` folders)."""
    extra = f", filename={sql_str(FILE_COL)}, file_row_number=true" if positions else ""
    return f"read_parquet({sql_list(paths)}, hive_partitioning=false, union_by_name=true{extra})"


def deleted_positions_sql(delete_paths: Sequence[str]) -> str:
    """(file, position) of every row a set of position-delete files deletes."""
    return f"SELECT file_path AS {FILE_COL}, pos AS {POS_COL} FROM read_parquet({sql_list(delete_paths)})"


def live_source_sql(files: Sequence[LiveFile]) -> str:
    """`<the files' live rows> AS d`, for a FROM clause; `d` also has FILE_COL and POS_COL."""
    if not files:
        raise ValueError("live rows need at least one data file")
    source = f"{read_files_sql([f.path for f in files], positions=True)} AS d"
    deletes = delete_files_of(files)
    if deletes:
        source += (
            f" ANTI JOIN ({deleted_positions_sql([d.file_path for d in deletes])}) AS x"
            f" ON d.{FILE_COL} = x.{FILE_COL} AND d.{POS_COL} = x.{POS_COL}"
        )
    return source


def live_rows_sql(files: Sequence[LiveFile], select: str = "d.*", where: str | None = None) -> str:
    """`SELECT <select> FROM <the files' live rows> AS d [WHERE …]`."""
    return f"SELECT {select} FROM {live_source_sql(files)}" + (f" WHERE {where}" if where else "")


def aligned_select(columns: Sequence[tuple[str, str | None]], present: set[str], alias: str = "d") -> str:
    """A SELECT list giving the table's columns by name; a column no file has is NULL (typed when known)."""
    parts = []
    for name, duck_type in columns:
        if name in present:
            parts.append(f"{alias}.{ident(name)} AS {ident(name)}")
        elif duck_type is not None:
            parts.append(f"CAST(NULL AS {duck_type}) AS {ident(name)}")
        else:
            parts.append(f"NULL AS {ident(name)}")
    return ", ".join(parts)

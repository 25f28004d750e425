"""DuckDB readers for files by suffix: native `source('landing/…')` and dbt `external_location`s."""

from __future__ import annotations

LANDING_READERS = {
    ".csv": "read_csv({files}, union_by_name=true)",
    ".tsv": "read_csv({files}, union_by_name=true, delim='\\t')",
    ".parquet": "read_parquet({files}, union_by_name=true)",
    ".json": "read_json_auto({files})",
    ".jsonl": "read_json_auto({files})",
    ".ndjson": "read_json_auto({files})",
}

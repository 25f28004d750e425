"""Ingest sales files from the landing zone (the seed's Python pipeline, for CSV and Excel)."""

import re

from ratatouille import pipeline, rat
from ratatouille.parsers import csv_parser, excel_parser


@pipeline(
    name="bronze_raw_sales",
    layer="bronze",
    schedule="0 * * * *",  # hourly
)
def ingest_sales():
    """Ingest sales files from landing zone."""
    files = rat.ls("landing/sales/*")

    for file_path in files:
        # Skip already processed
        if rat.is_ingested(file_path):
            continue

        # e.g. "sales_STORE001_2024-01-15.xlsx" or "sales_batch_0001.csv"
        match = re.match(r".*/sales_(\w+?)_([\w-]+)\.(xlsx|csv)$", file_path)
        if not match:
            rat.log.warning(f"Skipping {file_path}: unexpected filename format")
            continue
        source_id, _stamp, ext = match.groups()

        parse = excel_parser if ext == "xlsx" else csv_parser
        df = parse(
            rat.read_file(file_path),
            skip_rows=3 if ext == "xlsx" else 0,  # header junk in the Excel exports
            columns_map={"Transaction ID": "txn_id", "Qty": "quantity", "Price": "unit_price"} if ext == "xlsx" else None,
        )
        if "store_id" not in df.columns:
            df["store_id"] = source_id

        # Add metadata
        df["_source_file"] = file_path
        df["_ingested_at"] = rat.now()

        # Append to bronze table
        rat.append("bronze.raw_sales", df)
        rat.mark_ingested(file_path)

        rat.log.info(f"Ingested {len(df)} rows from {file_path}")

"""The engine: memory-capped DuckDB sessions over the Iceberg tables of a branch."""

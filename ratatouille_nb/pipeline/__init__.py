"""dbt-like pipelines: SQL + YAML models and Python ingestion, run as one atomic commit per run."""

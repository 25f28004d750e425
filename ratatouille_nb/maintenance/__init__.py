"""Keeping a lakehouse healthy: checks (doctor), compaction and snapshot expiry."""

"""Keeping a lakehouse healthy: checks (doctor), compaction (optimize) and snapshot expiry with layer retention (expire)."""

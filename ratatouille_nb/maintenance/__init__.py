"""Table maintenance: compaction (`optimize.py`) and snapshot expiry with layer retention (`expire.py`)."""

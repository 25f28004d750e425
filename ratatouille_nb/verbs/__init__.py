"""The verb layer: every user-facing operation once, typed, with its defaults and rules.

The CLI (`cli/`), the `rat` Python API (`api.py`), the `%rat` magics and widgets (`notebook/`),
the REST service (`server/`) and Dagster (`orchestration/`) are thin callers of these functions;
a default (the merge target, the branch a run writes) or a rule (what may be deleted) lives here
and nowhere else. Authorization is not decided here either: the session's version store and
services check the acting principal (catalog/authorized.py, access/policy.py), so no caller can
skip it. Each module is one topic: session, branches, sql, tables, pipelines, products,
workspaces, maintenance, lineage, promote.
"""

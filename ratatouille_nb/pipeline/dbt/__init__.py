"""dbt projects as Ratatouille workspaces: dbt_project.yml, models/ trees, schema.yml, config(),
seeds, snapshots, tests, docs blocks, packages (project.py loads them; context.py is dbt's Jinja)."""

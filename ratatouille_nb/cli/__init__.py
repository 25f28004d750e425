"""The `rat` command line: thin verbs over the core, with lazy imports so start-up stays instant."""

"""The notebook layer: `%rat` magics and widgets over one kernel-side engine session.

Nothing in the core imports this package; it imports the core.
"""

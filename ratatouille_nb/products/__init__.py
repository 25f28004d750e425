"""Data products: versioned, zero-copy releases of gold tables that other workspaces subscribe to."""

"""Search: full-text search over the catalog."""

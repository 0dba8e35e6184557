"""Readers' own tags on their entries: adding and removing them, renaming, deleting,
and the list filtered by one. Unlike topics, a tag belongs to one reader."""

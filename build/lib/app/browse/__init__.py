"""Browse: the shared catalog and the post page."""

"""My list: each reader's queue of saved posts and their progress."""

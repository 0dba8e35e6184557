"""Search: ranked full-text search over the catalog, and related posts.

`app.search.engine.search()` and `related_posts()` are the interface; `parser.parse()`
turns the search box into the query they take; `sqlite.py` and `postgres.py` answer
it, one per database, with the same results.
"""

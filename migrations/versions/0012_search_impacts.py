"""search impacts: for each frequent word, its best posts by relevance, so the first
page of a common-word search is the true top 20 without scoring every match

Revision ID: 0012
Revises: 0011

On PostgreSQL the same tables and a trigger function (its scores, ts_rank_cd, have no
corpus statistics, so a stored score stays right until its post changes).

- `search_impacts`: per stemmed index term, its `depth` best posts by the weighted
  bm25 of that term alone (lower is better), as FTS5 scores them; `WITHOUT ROWID`, keyed
  on (term, score), so a term's list is read in order from the key.
- `search_impact_terms`: which terms have a list, how long it is, the score of its last
  post (no post outside the list scores better), and whether it holds every post with
  the term.
- `search_changes`: posts whose index row changed since the lists were built. The
  triggers mirror those of posts_fts (0005): inserts, deletes, updates of indexed
  columns, topics added, removed or renamed, a private post's savers. Searches score
  these posts exactly beside the lists (and trust the stored scores as they are only
  while it is empty); rebuilding the lists (app/search/impacts.py) empties it.

Not models: app.db.include_in_autogenerate leaves the search_* tables alone.
"""

# ruff: noqa: S608 - DDL assembled from the constants below; nothing comes from input.

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXED = (
    "id, title, summary, author, content_text, published_on, reading_minutes, source_id, owner_id"
)
# A private post's index row names the readers who saved it (0005).
PRIVATE = "(SELECT owner_id FROM posts WHERE id = {e}.post_id) IS NOT NULL"

DDL = [
    """CREATE TABLE search_impacts (
        term TEXT NOT NULL,
        score REAL NOT NULL,
        post_id INTEGER NOT NULL,
        PRIMARY KEY (term, score, post_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE search_impact_terms (
        term TEXT NOT NULL PRIMARY KEY,
        docs INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        last_score REAL NOT NULL,
        complete BOOLEAN NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE search_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        post_id INTEGER NOT NULL
    )""",
    """CREATE TRIGGER search_changes_post_insert AFTER INSERT ON posts BEGIN
        INSERT INTO search_changes (post_id) VALUES (new.id);
    END""",
    f"""CREATE TRIGGER search_changes_post_update AFTER UPDATE OF {INDEXED} ON posts BEGIN
        INSERT INTO search_changes (post_id) VALUES (new.id);
    END""",
    """CREATE TRIGGER search_changes_post_delete AFTER DELETE ON posts BEGIN
        INSERT INTO search_changes (post_id) VALUES (old.id);
    END""",
    f"""CREATE TRIGGER search_changes_saver_insert AFTER INSERT ON entries
    WHEN {PRIVATE.format(e="new")} BEGIN
        INSERT INTO search_changes (post_id) VALUES (new.post_id);
    END""",
    f"""CREATE TRIGGER search_changes_saver_delete AFTER DELETE ON entries
    WHEN {PRIVATE.format(e="old")} BEGIN
        INSERT INTO search_changes (post_id) VALUES (old.post_id);
    END""",
    """CREATE TRIGGER search_changes_topic_insert AFTER INSERT ON post_topics BEGIN
        INSERT INTO search_changes (post_id) VALUES (new.post_id);
    END""",
    """CREATE TRIGGER search_changes_topic_delete AFTER DELETE ON post_topics BEGIN
        INSERT INTO search_changes (post_id) VALUES (old.post_id);
    END""",
    """CREATE TRIGGER search_changes_topic_rename AFTER UPDATE OF slug, name ON topics BEGIN
        INSERT INTO search_changes (post_id)
        SELECT post_id FROM post_topics WHERE topic_id = new.id;
    END""",
    # A change with no post: the worker's first refresh builds lists for the posts
    # that are already here.
    "INSERT INTO search_changes (post_id) VALUES (0)",
]
NAMES = [
    ("TRIGGER", "search_changes_topic_rename"),
    ("TRIGGER", "search_changes_topic_delete"),
    ("TRIGGER", "search_changes_topic_insert"),
    ("TRIGGER", "search_changes_saver_delete"),
    ("TRIGGER", "search_changes_saver_insert"),
    ("TRIGGER", "search_changes_post_delete"),
    ("TRIGGER", "search_changes_post_update"),
    ("TRIGGER", "search_changes_post_insert"),
    ("TABLE", "search_changes"),
    ("TABLE", "search_impact_terms"),
    ("TABLE", "search_impacts"),
]


# PostgreSQL: the same tables; one trigger function. Visibility is not in the search
# vector there, so a private post's savers change nothing.
POSTGRES_DDL = [
    """CREATE TABLE search_impacts (
        term TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        post_id INTEGER NOT NULL,
        PRIMARY KEY (term, score, post_id)
    )""",
    """CREATE TABLE search_impact_terms (
        term TEXT NOT NULL PRIMARY KEY,
        docs INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        last_score DOUBLE PRECISION NOT NULL,
        complete BOOLEAN NOT NULL
    )""",
    "CREATE TABLE search_changes (seq BIGSERIAL PRIMARY KEY, post_id INTEGER NOT NULL)",
    """CREATE FUNCTION dogear_search_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'topics' THEN
            INSERT INTO search_changes (post_id)
            SELECT post_id FROM post_topics WHERE topic_id = NEW.id;
        ELSIF TG_TABLE_NAME = 'post_topics' THEN
            INSERT INTO search_changes (post_id)
            VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.post_id ELSE NEW.post_id END);
        ELSE
            INSERT INTO search_changes (post_id)
            VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER search_changes_posts AFTER INSERT OR DELETE OR UPDATE OF"
    f" {INDEXED.removeprefix('id, ')} ON posts"
    " FOR EACH ROW EXECUTE FUNCTION dogear_search_change()",
    "CREATE TRIGGER search_changes_post_topics AFTER INSERT OR DELETE ON post_topics"
    " FOR EACH ROW EXECUTE FUNCTION dogear_search_change()",
    "CREATE TRIGGER search_changes_topics AFTER UPDATE OF slug, name ON topics"
    " FOR EACH ROW EXECUTE FUNCTION dogear_search_change()",
    "INSERT INTO search_changes (post_id) VALUES (0)",
]


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in DDL if dialect == "sqlite" else POSTGRES_DDL:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        for trigger, table in (
            ("search_changes_topics", "topics"),
            ("search_changes_post_topics", "post_topics"),
            ("search_changes_posts", "posts"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS dogear_search_change()")
        for table in ("search_changes", "search_impact_terms", "search_impacts"):
            op.execute(f"DROP TABLE IF EXISTS {table}")
        return
    for kind, name in NAMES:
        op.execute(f"DROP {kind} IF EXISTS {name}")

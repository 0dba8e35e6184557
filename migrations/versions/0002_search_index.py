"""search index: an FTS5 table over the posts, kept in sync by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 16:00:00

SQLite only; on any other database this migration does nothing (PostgreSQL gets its
own search implementation and migration later).

`posts_fts` keeps its own copy of the text (a regular FTS5 table, rowid = posts.id):
an external-content table would need the topics as a column of `posts`, and a
contentless one can't delete rows on SQLite < 3.43. Besides the five searchable
columns it has `meta`, which the search module never shows: filter tokens (topic
slugs, year, length bucket, source, privacy), so the common filters and the privacy
rule are answered by the index alone, counts included.

`post_title_fts` answers "is there a post with exactly this title?" in one index
lookup: each title, punctuation turned into spaces, is a single token (space is a
token character there), folded for case and accents by the tokenizer.

Two covering indexes let browse walk the catalog in date or length order and check
visibility (owner_id) without reading rows, so deep pages stay fast.

The token scheme and KEY_SEPARATORS are mirrored in app/search/engine.py; change both
together.
"""

# ruff: noqa: S608 - DDL assembled from the constants below; nothing comes from input.

from alembic import op


# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = "title, summary, author, topics, content, meta"

# Topic names, plus the slug where it reads differently ("PostgreSQL postgres").
TOPICS_OF = """(
    SELECT group_concat(
        CASE WHEN lower(t.name) = t.slug THEN t.name
             ELSE t.name || ' ' || replace(t.slug, '-', ' ') END, ' ')
    FROM post_topics AS pt JOIN topics AS t ON t.id = pt.topic_id
    WHERE pt.post_id = {p}.id
)"""

TOPIC_TOKENS_OF = """(
    SELECT group_concat('dgxt' || replace(t.slug, '-', ''), ' ')
    FROM post_topics AS pt JOIN topics AS t ON t.id = pt.topic_id
    WHERE pt.post_id = {p}.id
)"""

META_OF = """trim(
    coalesce(TOPIC_TOKENS, '')
    || coalesce(' dgxy' || substr({p}.published_on, 1, 4), '')
    || CASE WHEN {p}.reading_minutes < 5 THEN ' dgxlshort'
            WHEN {p}.reading_minutes <= 10 THEN ' dgxlmedium'
            ELSE ' dgxllong' END
    || coalesce(' dgxs' || {p}.source_id, '')
    || CASE WHEN {p}.owner_id IS NULL THEN ' dgxpublic'
            ELSE ' dgxprivate dgxowner' || {p}.owner_id END
)""".replace("TOPIC_TOKENS", TOPIC_TOKENS_OF)


def row_values(p):
    """The FTS values of the posts row aliased or named `p` (a table name or new/old)."""
    return ", ".join(
        [
            f"{p}.title",
            f"{p}.summary",
            f"{p}.author",
            f"coalesce({TOPICS_OF.format(p=p)}, '')",
            f"coalesce({p}.content, '')",
            META_OF.format(p=p),
        ]
    )


def reindex(post_id):
    """Statements that rebuild one post's FTS row from the posts table."""
    return (
        f"DELETE FROM posts_fts WHERE rowid = {post_id};\n"
        f"INSERT INTO posts_fts(rowid, {COLUMNS})\n"
        f"SELECT p.id, {row_values('p')} FROM posts AS p WHERE p.id = {post_id};"
    )


# Characters that separate words in a title key (everything else a title is made of
# is letters, digits and spaces in practice).
KEY_SEPARATORS = (
    "\t\n\r\u00a0\u2009\u202f\u3000"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2026\u2018\u2019\u201a\u201c\u201d\u201e"
    "\u00ab\u00bb\u2039\u203a\u00b7\u2022\u00a1\u00bf\u00a7\u00b6\u2020\u2021\u2032\u2033"
    "\u00a9\u00ae\u2122\u2190\u2192\u21d2\u00d7\u00f7"
)


def _title_key_views():
    """Views that turn posts.title into its key, a score of replace() calls at a time
    (nesting all of them in one expression overflows SQLite's parser stack; views
    are parsed one by one and flattened into the query that reads them)."""
    views = {}
    source, column = "posts", "title"
    chars = list(KEY_SEPARATORS)
    for n, start in enumerate(range(0, len(chars), 20), start=1):
        value = column
        for char in chars[start : start + 20]:
            value = f"replace({value}, char({ord(char)}), ' ')"
        name = f"post_title_key_step{n}"
        views[name] = f"SELECT id, {value} AS v FROM {source}"
        source, column = name, "v"
    value = "v"
    for _ in range(6):
        value = f"replace({value}, '  ', ' ')"
    views["post_title_key_source"] = f"SELECT id, trim({value}) AS key FROM {source}"
    return views


TITLE_KEY_VIEWS = _title_key_views()


CREATE_TABLE = f"""
CREATE VIRTUAL TABLE posts_fts USING fts5(
    {COLUMNS},
    tokenize = 'porter unicode61 remove_diacritics 2',
    prefix = '2 3'
)
"""

CREATE_TITLE_KEYS = """
CREATE VIRTUAL TABLE post_title_fts USING fts5(
    key,
    tokenize = "unicode61 remove_diacritics 2 tokenchars ' '",
    detail = none
)
"""

TRIGGERS = {
    "posts_fts_insert": f"""
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts(rowid, {COLUMNS}) VALUES (new.id, {row_values("new")});
END""",
    "posts_fts_delete": """
CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
    DELETE FROM posts_fts WHERE rowid = old.id;
END""",
    # Only the columns the index holds: a touch of updated_at reindexes nothing.
    "posts_fts_update": f"""
CREATE TRIGGER posts_fts_update AFTER UPDATE OF
    id, title, summary, author, content, published_on, reading_minutes, source_id, owner_id
ON posts BEGIN
    DELETE FROM posts_fts WHERE rowid = old.id;
    INSERT INTO posts_fts(rowid, {COLUMNS}) VALUES (new.id, {row_values("new")});
END""",
    "posts_title_key_insert": """
CREATE TRIGGER posts_title_key_insert AFTER INSERT ON posts BEGIN
    INSERT INTO post_title_fts(rowid, key)
    SELECT id, key FROM post_title_key_source WHERE id = new.id;
END""",
    "posts_title_key_delete": """
CREATE TRIGGER posts_title_key_delete AFTER DELETE ON posts BEGIN
    DELETE FROM post_title_fts WHERE rowid = old.id;
END""",
    "posts_title_key_update": """
CREATE TRIGGER posts_title_key_update AFTER UPDATE OF id, title ON posts BEGIN
    DELETE FROM post_title_fts WHERE rowid = old.id;
    INSERT INTO post_title_fts(rowid, key)
    SELECT id, key FROM post_title_key_source WHERE id = new.id;
END""",
    "post_topics_fts_insert": f"""
CREATE TRIGGER post_topics_fts_insert AFTER INSERT ON post_topics BEGIN
    {reindex("new.post_id")}
END""",
    "post_topics_fts_delete": f"""
CREATE TRIGGER post_topics_fts_delete AFTER DELETE ON post_topics BEGIN
    {reindex("old.post_id")}
END""",
    "topics_fts_update": f"""
CREATE TRIGGER topics_fts_update AFTER UPDATE OF slug, name ON topics BEGIN
    DELETE FROM posts_fts
    WHERE rowid IN (SELECT post_id FROM post_topics WHERE topic_id = new.id);
    INSERT INTO posts_fts(rowid, {COLUMNS})
    SELECT p.id, {row_values("p")} FROM posts AS p
    WHERE p.id IN (SELECT post_id FROM post_topics WHERE topic_id = new.id);
END""",
}

BACKFILL = f"""
INSERT INTO posts_fts(rowid, {COLUMNS})
SELECT p.id, {row_values("p")} FROM posts AS p
"""

BACKFILL_TITLE_KEYS = """
INSERT INTO post_title_fts(rowid, key) SELECT id, key FROM post_title_key_source
"""

COVERING_INDEXES = {
    "ix_posts_published_on_id_owner_id": ["published_on", "id", "owner_id"],
    "ix_posts_reading_minutes_id_owner_id": ["reading_minutes", "id", "owner_id"],
}


def upgrade():
    for name, columns in COVERING_INDEXES.items():
        op.create_index(name, "posts", columns)
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(CREATE_TABLE)
    op.execute(CREATE_TITLE_KEYS)
    for name, select in TITLE_KEY_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {select}")
    op.execute(BACKFILL)
    op.execute(BACKFILL_TITLE_KEYS)
    op.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")
    for ddl in TRIGGERS.values():
        op.execute(ddl)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for name in reversed(TITLE_KEY_VIEWS):
            op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS post_title_fts")
        op.execute("DROP TABLE IF EXISTS posts_fts")
    for name in COVERING_INDEXES:
        op.drop_index(name, table_name="posts")

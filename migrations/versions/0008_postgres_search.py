"""PostgreSQL search: a weighted tsvector on posts kept current by triggers, a GIN
index, an English-stemming, accent-folding text search configuration

Revision ID: 0008
Revises: 0007

PostgreSQL only; on SQLite this migration does nothing (SQLite searches the FTS5
tables of migrations 0002 and 0005). app/search/postgres.py reads what this builds;
change both together.

- `dogear`, a text search configuration: words are unaccented, then stemmed by the
  English Snowball stemmer *without* a stop-word list (SQLite's porter tokenizer keeps
  "the", so a phrase like "the event loop" means the same on both).
- `dogear_plain(text)`: letters and digits, everything else a space, so words split
  where SQLite's unicode61 tokenizer splits them ("coffee-driven", "example.com" and
  "foo_bar" are two words each, not one compound token).
- `posts.search_vector`: title (weight A), summary (B), author (C), topic names and
  slugs (B), plain-text content (D), in that order, so no two neighbouring fields share
  a weight and a weight-restricted phrase can't run from one field into the next. The
  content is cut at CONTENT_CHARS: a tsvector holds at most 1 MB and positions up to
  16,383, which a long article would exceed.
- Triggers keep it current: on posts (insert; update of the indexed columns), on
  post_topics (rows added or removed, one statement at a time) and on topics (renamed
  or re-slugged). Visibility is not in the vector: the search checks it in SQL against
  `owner_id` and `entries`, so adding or removing entries reindexes nothing.
- `dogear_title_key(text)`: a title folded for case, accents and punctuation, indexed,
  so "is there a post with exactly this title?" is one index lookup.
- `ix_posts_search_published_on`: (published_on NULLS FIRST, id), so "newest" and
  "oldest" walk an index with undated posts last and first, as SQLite orders them.

The unaccent extension is created if missing (in `public` when the schema exists and
we may create in it, else in the current schema) and is left in place on downgrade:
it is database-wide and may serve others.
"""

# ruff: noqa: S608 - DDL assembled from the constants below and catalog names.

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CONTENT_CHARS = 200_000

TRIGGERS = {
    "posts_search_insert": "posts",
    "posts_search_update": "posts",
    "post_topics_search_insert": "post_topics",
    "post_topics_search_delete": "post_topics",
    "topics_search_update": "topics",
}
FUNCTIONS = [
    "dogear_topics_search_trigger()",
    "dogear_post_topics_search_trigger()",
    "dogear_posts_search_trigger()",
    "dogear_post_vector(integer, text, text, text, text)",
    "dogear_title_key(text)",
    "dogear_plain(text)",
]
INDEXES = ["ix_posts_search_vector", "ix_posts_search_title_key", "ix_posts_search_published_on"]


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


def _unaccent_schema(bind):
    """The schema of the unaccent extension, created first if it isn't installed."""
    schema = bind.scalar(
        sa.text(
            "SELECT n.nspname FROM pg_extension AS e"
            " JOIN pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent'"
        )
    )
    if schema is None:
        public = bind.scalar(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace"
                " WHERE nspname = 'public' AND has_schema_privilege(oid, 'CREATE'))"
            )
        )
        schema = "public" if public else bind.scalar(sa.text("SELECT current_schema()"))
        op.execute(f"CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA {_quote(schema)}")
    return schema


def _ddl(s, u):
    """Statements creating everything but the column and indexes. `s`: our schema,
    `u`: unaccent's, both quoted. SQL-standard function bodies bind the objects they
    name when created, so they work whatever the caller's search_path."""
    word_types = (
        "asciiword, word, numword, asciihword, hword, numhword,"
        " hword_asciipart, hword_part, hword_numpart"
    )
    topics_of = f"""(
        SELECT string_agg(
            CASE WHEN lower(t.name) = t.slug THEN t.name
                 ELSE t.name || ' ' || replace(t.slug, '-', ' ') END, ' ' ORDER BY t.slug)
        FROM {s}.post_topics AS pt JOIN {s}.topics AS t ON t.id = pt.topic_id
        WHERE pt.post_id = $1
    )"""
    vector = f"{s}.dogear_post_vector(p.id, p.title, p.summary, p.author, p.content_text)"
    return [
        f"CREATE TEXT SEARCH DICTIONARY {s}.dogear_stem"
        " (TEMPLATE = pg_catalog.snowball, Language = english)",
        f"CREATE TEXT SEARCH CONFIGURATION {s}.dogear (COPY = pg_catalog.simple)",
        f"ALTER TEXT SEARCH CONFIGURATION {s}.dogear ALTER MAPPING FOR {word_types}"
        f" WITH {u}.unaccent, {s}.dogear_stem",
        f"""
CREATE FUNCTION {s}.dogear_plain(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN regexp_replace(value, '[^[:alnum:]]+', ' ', 'g')""",
        # unaccent() is only STABLE (its rules file could change); declaring the key
        # IMMUTABLE is what lets it be indexed, the usual way to index unaccented text.
        f"""
CREATE FUNCTION {s}.dogear_title_key(title text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN btrim(lower({s}.dogear_plain({u}.unaccent('{u}.unaccent'::regdictionary, title))))""",
        f"""
CREATE FUNCTION {s}.dogear_post_vector(
    post_id integer, title text, summary text, author text, content text
) RETURNS tsvector
LANGUAGE sql STABLE PARALLEL SAFE
RETURN setweight(to_tsvector('{s}.dogear', {s}.dogear_plain(coalesce(title, ''))), 'A')
    || setweight(to_tsvector('{s}.dogear', {s}.dogear_plain(coalesce(summary, ''))), 'B')
    || setweight(to_tsvector('{s}.dogear', {s}.dogear_plain(coalesce(author, ''))), 'C')
    || setweight(to_tsvector('{s}.dogear', {s}.dogear_plain(coalesce({topics_of}, ''))), 'B')
    || setweight(to_tsvector('{s}.dogear',
           {s}.dogear_plain(left(coalesce(content, ''), {CONTENT_CHARS}))), 'D')""",
        f"""
CREATE FUNCTION {s}.dogear_posts_search_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := {s}.dogear_post_vector(
        NEW.id, NEW.title, NEW.summary, NEW.author, NEW.content_text);
    RETURN NEW;
END $$""",
        f"""
CREATE FUNCTION {s}.dogear_post_topics_search_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {s}.posts AS p SET search_vector = {vector}
    WHERE p.id IN (SELECT post_id FROM changed);
    RETURN NULL;
END $$""",
        f"""
CREATE FUNCTION {s}.dogear_topics_search_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {s}.posts AS p SET search_vector = {vector}
    WHERE p.id IN (SELECT post_id FROM {s}.post_topics WHERE topic_id = NEW.id);
    RETURN NULL;
END $$""",
        f"""
CREATE TRIGGER posts_search_insert BEFORE INSERT ON {s}.posts
FOR EACH ROW EXECUTE FUNCTION {s}.dogear_posts_search_trigger()""",
        # Only the indexed columns: a touch of updated_at or the fetch state is free.
        f"""
CREATE TRIGGER posts_search_update
BEFORE UPDATE OF id, title, summary, author, content_text ON {s}.posts
FOR EACH ROW WHEN (
    OLD.id IS DISTINCT FROM NEW.id OR OLD.title IS DISTINCT FROM NEW.title
    OR OLD.summary IS DISTINCT FROM NEW.summary OR OLD.author IS DISTINCT FROM NEW.author
    OR OLD.content_text IS DISTINCT FROM NEW.content_text
) EXECUTE FUNCTION {s}.dogear_posts_search_trigger()""",
        f"""
CREATE TRIGGER post_topics_search_insert AFTER INSERT ON {s}.post_topics
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION {s}.dogear_post_topics_search_trigger()""",
        f"""
CREATE TRIGGER post_topics_search_delete AFTER DELETE ON {s}.post_topics
REFERENCING OLD TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION {s}.dogear_post_topics_search_trigger()""",
        f"""
CREATE TRIGGER topics_search_update AFTER UPDATE OF name, slug ON {s}.topics
FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.slug IS DISTINCT FROM NEW.slug)
EXECUTE FUNCTION {s}.dogear_topics_search_trigger()""",
    ]


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    s = _quote(bind.scalar(sa.text("SELECT current_schema()")))
    u = _quote(_unaccent_schema(bind))
    op.execute(f"ALTER TABLE {s}.posts ADD COLUMN search_vector tsvector NOT NULL DEFAULT ''")
    for ddl in _ddl(s, u):
        op.execute(ddl)
    op.execute(
        f"UPDATE {s}.posts AS p SET search_vector ="
        f" {s}.dogear_post_vector(p.id, p.title, p.summary, p.author, p.content_text)"
    )
    op.execute(f"CREATE INDEX ix_posts_search_vector ON {s}.posts USING gin (search_vector)")
    op.execute(
        f"CREATE INDEX ix_posts_search_title_key ON {s}.posts ({s}.dogear_title_key(title))"
    )
    op.execute(
        f"CREATE INDEX ix_posts_search_published_on ON {s}.posts (published_on NULLS FIRST, id)"
    )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    s = _quote(bind.scalar(sa.text("SELECT current_schema()")))
    for name, table in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {s}.{table}")
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {s}.{name}")
    op.execute(f"ALTER TABLE {s}.posts DROP COLUMN IF EXISTS search_vector")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {s}.{signature}")
    op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {s}.dogear")
    op.execute(f"DROP TEXT SEARCH DICTIONARY IF EXISTS {s}.dogear_stem")

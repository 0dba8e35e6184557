"""saved articles: fetch state and content text on posts, resume position and the
reader's own title on entries;
the search index reads the plain text and knows every reader who saved a private post

Revision ID: 0005
Revises: 0004

Plain ALTER TABLE ADD COLUMN, never batch mode: recreating `posts` on SQLite would
drop the full-text triggers of migration 0002. SQLite accepts a CHECK constraint on
an added column, so the constraints are written into the column there and added as
table constraints elsewhere.

The full-text triggers are rebuilt (SQLite only) so that
- the index's `content` column holds `posts.content_text`, the article's plain text,
  not its HTML;
- a private post's `meta` carries `dgxowner<id>` for its first owner and for every
  reader with an entry for it, so a reader who saved the same URL finds it and nobody
  else does. Adding or removing an entry of a private post reindexes that post.

The token scheme is mirrored in app/search/engine.py; change both together.
"""

# ruff: noqa: S608 - DDL assembled from the constants below; nothing comes from input.

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PENDING_ONLY = sa.text("fetch_state = 'pending'")

# name, type, default, check (None: no check)
POST_COLUMNS = [
    ("site_name", "VARCHAR(200)", "''", None),
    ("image_url", "VARCHAR(2048)", None, None),
    ("content_text", "TEXT", None, None),
    (
        "content_kind",
        "VARCHAR(10)",
        None,
        "content_kind IS NULL OR content_kind IN ('article', 'text', 'pdf')",
    ),
    (
        "fetch_state",
        "VARCHAR(10)",
        "'none'",
        "fetch_state IN ('none', 'pending', 'done', 'failed')",
    ),
    ("fetch_error", "TEXT", "''", None),
    ("fetch_attempts", "INTEGER", "0", None),
    ("fetch_claimed_at", "DATETIME", None, None),
    ("fetched_at", "DATETIME", None, None),
]
ENTRY_COLUMNS = [
    ("resume_position", "INTEGER", "0", "resume_position BETWEEN 0 AND 1000"),
    ("title", "VARCHAR(500)", "''", None),
]

SA_TYPES = {
    "VARCHAR(200)": sa.String(200),
    "VARCHAR(500)": sa.String(500),
    "VARCHAR(2048)": sa.String(2048),
    "VARCHAR(10)": sa.String(10),
    "TEXT": sa.Text(),
    "INTEGER": sa.Integer(),
    "DATETIME": sa.DateTime(),
}

# --- the full-text index (SQLite), as migration 0002 built it and as it is now -------

COLUMNS = "title, summary, author, topics, content, meta"

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

# Every reader but the first owner who has an entry for the post.
SAVERS_OF = """coalesce((
    SELECT ' ' || group_concat('dgxowner' || e.user_id, ' ')
    FROM entries AS e WHERE e.post_id = {p}.id AND e.user_id != {p}.owner_id
), '')"""

META_OF = """trim(
    coalesce(TOPIC_TOKENS, '')
    || coalesce(' dgxy' || substr({p}.published_on, 1, 4), '')
    || CASE WHEN {p}.reading_minutes < 5 THEN ' dgxlshort'
            WHEN {p}.reading_minutes <= 10 THEN ' dgxlmedium'
            ELSE ' dgxllong' END
    || coalesce(' dgxs' || {p}.source_id, '')
    || CASE WHEN {p}.owner_id IS NULL THEN ' dgxpublic'
            ELSE ' dgxprivate dgxowner' || {p}.owner_id SAVERS END
)""".replace("TOPIC_TOKENS", TOPIC_TOKENS_OF)


def row_values(p, *, new):
    """The FTS values of the posts row `p` in the new scheme or in 0002's."""
    content = "content_text" if new else "content"
    meta = META_OF.replace("SAVERS", f"|| {SAVERS_OF}" if new else "")
    return ", ".join(
        [
            f"{p}.title",
            f"{p}.summary",
            f"{p}.author",
            f"coalesce({TOPICS_OF.format(p=p)}, '')",
            f"coalesce({p}.{content}, '')",
            meta.format(p=p),
        ]
    )


def reindex(post_id, *, new):
    return (
        f"DELETE FROM posts_fts WHERE rowid = {post_id};\n"
        f"INSERT INTO posts_fts(rowid, {COLUMNS})\n"
        f"SELECT p.id, {row_values('p', new=new)} FROM posts AS p WHERE p.id = {post_id};"
    )


def triggers(*, new):
    content = "content_text" if new else "content"
    ddl = {
        "posts_fts_insert": f"""
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
    INSERT INTO posts_fts(rowid, {COLUMNS}) VALUES (new.id, {row_values("new", new=new)});
END""",
        # Only the columns the index holds: a touch of updated_at or of the fetch
        # state reindexes nothing.
        "posts_fts_update": f"""
CREATE TRIGGER posts_fts_update AFTER UPDATE OF
    id, title, summary, author, {content}, published_on, reading_minutes, source_id, owner_id
ON posts BEGIN
    DELETE FROM posts_fts WHERE rowid = old.id;
    INSERT INTO posts_fts(rowid, {COLUMNS}) VALUES (new.id, {row_values("new", new=new)});
END""",
        "post_topics_fts_insert": f"""
CREATE TRIGGER post_topics_fts_insert AFTER INSERT ON post_topics BEGIN
    {reindex("new.post_id", new=new)}
END""",
        "post_topics_fts_delete": f"""
CREATE TRIGGER post_topics_fts_delete AFTER DELETE ON post_topics BEGIN
    {reindex("old.post_id", new=new)}
END""",
        "topics_fts_update": f"""
CREATE TRIGGER topics_fts_update AFTER UPDATE OF slug, name ON topics BEGIN
    DELETE FROM posts_fts
    WHERE rowid IN (SELECT post_id FROM post_topics WHERE topic_id = new.id);
    INSERT INTO posts_fts(rowid, {COLUMNS})
    SELECT p.id, {row_values("p", new=new)} FROM posts AS p
    WHERE p.id IN (SELECT post_id FROM post_topics WHERE topic_id = new.id);
END""",
    }
    if new:
        private = "(SELECT owner_id FROM posts WHERE id = {e}.post_id) IS NOT NULL"
        ddl["entries_fts_insert"] = f"""
CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries
WHEN {private.format(e="new")} BEGIN
    {reindex("new.post_id", new=True)}
END"""
        ddl["entries_fts_delete"] = f"""
CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries
WHEN {private.format(e="old")} BEGIN
    {reindex("old.post_id", new=True)}
END"""
    return ddl


def rebuild_index(*, new):
    op.execute("DELETE FROM posts_fts")
    op.execute(
        f"INSERT INTO posts_fts(rowid, {COLUMNS}) "
        f"SELECT p.id, {row_values('p', new=new)} FROM posts AS p"
    )


def replace_triggers(*, new):
    for name in triggers(new=True):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for ddl in triggers(new=new).values():
        op.execute(ddl)
    rebuild_index(new=new)


def add_columns(table, columns, sqlite):
    for name, type_, default, check in columns:
        if sqlite:
            sql = f"ALTER TABLE {table} ADD COLUMN {name} {type_}"
            if default is not None:
                sql += f" DEFAULT {default} NOT NULL"
            if check is not None:
                sql += f" CONSTRAINT ck_{table}_{name} CHECK ({check})"
            op.execute(sql)
            continue
        op.add_column(
            table,
            sa.Column(
                name,
                SA_TYPES[type_],
                nullable=default is None,
                server_default=sa.text(default) if default is not None else None,
            ),
        )
        if check is not None:
            op.create_check_constraint(name, table, check)


def drop_columns(table, columns, sqlite):
    for name, _type, _default, check in reversed(columns):
        if check is not None and not sqlite:
            op.drop_constraint(f"ck_{table}_{name}", table, type_="check")
        op.drop_column(table, name)


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    add_columns("posts", POST_COLUMNS, sqlite)
    add_columns("entries", ENTRY_COLUMNS, sqlite)
    op.create_index(
        "ix_posts_fetch_pending",
        "posts",
        ["fetch_claimed_at"],
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    )
    if sqlite:
        replace_triggers(new=True)


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The index may only refer to columns that survive the downgrade.
        for name in triggers(new=True):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_posts_fetch_pending", table_name="posts")
    drop_columns("entries", ENTRY_COLUMNS, sqlite)
    drop_columns("posts", POST_COLUMNS, sqlite)
    if sqlite:
        replace_triggers(new=False)

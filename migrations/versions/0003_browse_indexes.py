"""Browse indexes: private-posts-only owner index; drop indexes the covering ones replace.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PRIVATE_ONLY = sa.text("owner_id IS NOT NULL")


# Plain index operations, never batch mode: recreating `posts` on SQLite would drop
# the full-text triggers that migration 0002 put on it.


def upgrade():
    op.drop_index("ix_posts_owner_id", table_name="posts")
    op.drop_index("ix_posts_published_on_id", table_name="posts")
    op.drop_index("ix_posts_reading_minutes_id", table_name="posts")
    op.create_index(
        "ix_posts_owner_id",
        "posts",
        ["owner_id"],
        sqlite_where=PRIVATE_ONLY,
        postgresql_where=PRIVATE_ONLY,
    )


def downgrade():
    op.drop_index("ix_posts_owner_id", table_name="posts")
    op.create_index("ix_posts_reading_minutes_id", "posts", ["reading_minutes", "id"])
    op.create_index("ix_posts_published_on_id", "posts", ["published_on", "id"])
    op.create_index("ix_posts_owner_id", "posts", ["owner_id"])

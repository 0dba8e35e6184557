"""PostgreSQL browse indexes: the date index carries owner_id, so a deep page of the
catalog is answered from the index alone; the sidebar's counts per author and per
source read only the shared catalog's rows. SQLite is left as it is.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Named ix_posts_search_* so that autogenerate leaves them alone, like 0008's
# (app.db.include_in_autogenerate).


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX ix_posts_search_published_on_owner"
        " ON posts (published_on NULLS FIRST, id, owner_id)"
    )
    op.execute("DROP INDEX ix_posts_search_published_on")
    op.execute(
        "CREATE INDEX ix_posts_search_shared_author ON posts (author, id) WHERE owner_id IS NULL"
    )
    op.execute(
        "CREATE INDEX ix_posts_search_shared_source"
        " ON posts (source_id, id) WHERE owner_id IS NULL"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_posts_search_shared_source")
    op.execute("DROP INDEX ix_posts_search_shared_author")
    op.execute("CREATE INDEX ix_posts_search_published_on ON posts (published_on NULLS FIRST, id)")
    op.execute("DROP INDEX ix_posts_search_published_on_owner")

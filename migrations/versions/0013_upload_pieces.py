"""upload pieces: an uploaded file kept as 1 MB rows

Revision ID: 0013
Revises: 0012

A 50 MB file in one `uploads.data` value cost SQLite the whole row in memory on every
insert and update of that row (its blob is not the row's last column): storing an
upload peaked at three times the file. In pieces, storing and reading it take one
piece at a time. `uploads.data` stays for files stored before this migration, which
are still read from there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "upload_pieces",
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.id"],
            name=op.f("fk_upload_pieces_upload_id_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "n", name=op.f("pk_upload_pieces")),
    )


def downgrade():
    op.drop_table("upload_pieces")

"""sessions with a lifetime, two-factor sign-in

Revision ID: 0010
Revises: 0009

Login sessions learn when they were last used, from where, whether "remember me" was
ticked and when they end for good (app/auth/sessions.py). Accounts get a TOTP secret,
when two-factor sign-in was turned on, the last time step used and the hashes of their
recovery codes (app/auth/twofactor.py).

Sessions that exist at upgrade time count as "remember me" sessions last seen when
they were made: the ones unused for SESSION_IDLE_DAYS end at once, the others run on
under the new limits (nobody knows which of them were browser-only sessions).

`users` only gets plain ADD COLUMNs; `login_sessions`, a small table without triggers,
is rebuilt on SQLite to make its new timestamps NOT NULL after they are filled in.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("totp_secret", sa.String(length=64), nullable=True))
    op.add_column("users", sa.Column("two_factor_since", sa.DateTime(), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "users", sa.Column("recovery_codes", sa.Text(), nullable=False, server_default="")
    )

    op.add_column("login_sessions", sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    op.add_column("login_sessions", sa.Column("expires_at", sa.DateTime(), nullable=True))
    op.add_column(
        "login_sessions",
        sa.Column("remember", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "login_sessions",
        sa.Column("ip", sa.String(length=45), nullable=False, server_default=""),
    )
    if op.get_bind().dialect.name == "sqlite":
        a_year_later = "datetime(created_at, '+365 days')"
    else:
        a_year_later = "created_at + interval '365 days'"
    login_sessions = sa.table(
        "login_sessions",
        sa.column("created_at", sa.DateTime()),
        sa.column("last_seen_at", sa.DateTime()),
        sa.column("expires_at", sa.DateTime()),
        sa.column("remember", sa.Boolean()),
    )
    op.execute(
        login_sessions.update().values(
            last_seen_at=login_sessions.c.created_at,
            expires_at=sa.literal_column(a_year_later),
            remember=sa.true(),
        )
    )
    with op.batch_alter_table("login_sessions") as batch_op:
        batch_op.alter_column("last_seen_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table("login_sessions") as batch_op:
        batch_op.drop_column("ip")
        batch_op.drop_column("remember")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("last_seen_at")
    op.drop_column("users", "recovery_codes")
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "two_factor_since")
    op.drop_column("users", "totp_secret")

"""list summaries: each reader's entries per state and minutes left, kept by triggers

Revision ID: 0014
Revises: 0013

The list page's header (entries per tab, time left on what isn't done) and the
header's badge (open entries) were counted over all of a reader's entries on every
view. `list_summaries` holds them per (reader, state), and triggers keep them exact
in the same transaction as every write that moves them, whoever makes it: the app,
an import job, `dogear` commands, cascades.

- `entries`: how many of the reader's entries are in that state.
- `minutes_left_x100`: the sum over those entries of the post's reading minutes times
  the percent not yet read; the page shows ceil(sum / 100) over the open states.

What moves them: an entry added, removed, or changing state, progress or post; a
post's reading minutes changing (a page fetched again). Deleting a post first deletes
its entries (a BEFORE trigger), so their minutes are still there to subtract; the
foreign key's cascade then finds nothing left to do. Deleting a reader cascades to
their rows.

Not a model: app.db.include_in_autogenerate leaves it alone, and `dogear
copy-database` doesn't copy it: the triggers fill it as the entries are copied.
"""

# ruff: noqa: S608 - DDL assembled from the constants below; nothing comes from input.

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# One entry's share of minutes_left_x100, as of now ({e} is new or old).
SHARE = (
    "coalesce((SELECT reading_minutes FROM posts WHERE id = {e}.post_id), 0)"
    " * (100 - {e}.progress)"
)
ADD = (
    "INSERT INTO list_summaries (user_id, state, entries, minutes_left_x100)"
    " VALUES (new.user_id, new.state, 1, {share})"
    " ON CONFLICT (user_id, state) DO UPDATE SET entries = list_summaries.entries + 1,"
    " minutes_left_x100 = list_summaries.minutes_left_x100 + excluded.minutes_left_x100"
).format(share=SHARE.format(e="new"))
SUBTRACT = (
    "UPDATE list_summaries SET entries = entries - 1,"
    " minutes_left_x100 = minutes_left_x100 - {share}"
    " WHERE user_id = old.user_id AND state = old.state"
).format(share=SHARE.format(e="old"))
# A post's minutes changed: each (reader, state) holding it moves by the difference
# times the percent left on their entries for it.
REWEIGH = """UPDATE list_summaries SET minutes_left_x100 = minutes_left_x100
        + (coalesce(new.reading_minutes, 0) - coalesce(old.reading_minutes, 0)) * (
            SELECT sum(100 - e.progress) FROM entries AS e WHERE e.post_id = new.id
            AND e.user_id = list_summaries.user_id AND e.state = list_summaries.state)
    WHERE (user_id, state) IN (SELECT user_id, state FROM entries WHERE post_id = new.id)"""
BACKFILL = """INSERT INTO list_summaries (user_id, state, entries, minutes_left_x100)
    SELECT e.user_id, e.state, count(*), coalesce(sum(coalesce(p.reading_minutes, 0)
        * (100 - e.progress)), 0)
    FROM entries AS e LEFT JOIN posts AS p ON p.id = e.post_id
    GROUP BY e.user_id, e.state"""
TABLE = """CREATE TABLE list_summaries (
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        state VARCHAR(10) NOT NULL,
        entries INTEGER NOT NULL,
        minutes_left_x100 BIGINT NOT NULL,
        PRIMARY KEY (user_id, state)
    )"""

DDL = [
    TABLE + " WITHOUT ROWID",
    f"CREATE TRIGGER list_summaries_entry_insert AFTER INSERT ON entries BEGIN {ADD}; END",
    f"CREATE TRIGGER list_summaries_entry_delete AFTER DELETE ON entries BEGIN {SUBTRACT}; END",
    "CREATE TRIGGER list_summaries_entry_update"
    " AFTER UPDATE OF user_id, post_id, state, progress ON entries"
    f" BEGIN {SUBTRACT}; {ADD}; END",
    "CREATE TRIGGER list_summaries_post_minutes AFTER UPDATE OF reading_minutes ON posts"
    f" WHEN old.reading_minutes IS NOT new.reading_minutes BEGIN {REWEIGH}; END",
    "CREATE TRIGGER list_summaries_post_delete BEFORE DELETE ON posts"
    " BEGIN DELETE FROM entries WHERE post_id = old.id; END",
    BACKFILL,
]
NAMES = [
    "list_summaries_post_delete",
    "list_summaries_post_minutes",
    "list_summaries_entry_update",
    "list_summaries_entry_delete",
    "list_summaries_entry_insert",
]

POSTGRES_DDL = [
    TABLE,
    f"""CREATE FUNCTION dogear_list_summary_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN {SUBTRACT}; END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN {ADD}; END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION dogear_list_summary_post() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM entries WHERE post_id = OLD.id;
            RETURN OLD;
        END IF;
        IF OLD.reading_minutes IS DISTINCT FROM NEW.reading_minutes THEN {REWEIGH}; END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER list_summaries_entries AFTER INSERT OR DELETE"
    " OR UPDATE OF user_id, post_id, state, progress ON entries"
    " FOR EACH ROW EXECUTE FUNCTION dogear_list_summary_entry()",
    "CREATE TRIGGER list_summaries_post_minutes AFTER UPDATE OF reading_minutes ON posts"
    " FOR EACH ROW WHEN (OLD.reading_minutes IS DISTINCT FROM NEW.reading_minutes)"
    " EXECUTE FUNCTION dogear_list_summary_post()",
    "CREATE TRIGGER list_summaries_post_delete BEFORE DELETE ON posts"
    " FOR EACH ROW EXECUTE FUNCTION dogear_list_summary_post()",
    BACKFILL,
]


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in DDL if dialect == "sqlite" else POSTGRES_DDL:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS list_summaries_entries ON entries")
        op.execute("DROP TRIGGER IF EXISTS list_summaries_post_minutes ON posts")
        op.execute("DROP TRIGGER IF EXISTS list_summaries_post_delete ON posts")
        op.execute("DROP FUNCTION IF EXISTS dogear_list_summary_entry()")
        op.execute("DROP FUNCTION IF EXISTS dogear_list_summary_post()")
    else:
        for name in NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS list_summaries")

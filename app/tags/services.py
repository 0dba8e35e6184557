"""Writes and reads of a reader's tags. Each function takes the acting reader; a tag or
entry of anyone else is a 404, as if it didn't exist."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import abort
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from app import access
from app.db import write_transaction
from app.extensions import db
from app.models import Entry, Tag, entry_tags, utcnow

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

TAG_MAX = 60
TAGS_AT_ONCE = 20


class TagError(ValueError):
    """What is wrong with a tag a reader typed, in words they understand."""


def clean_tag_name(raw: str) -> str:
    """A tag name as Dogear keeps it: lower-cased, trimmed, inner whitespace collapsed,
    no commas (they separate tags), at most 60 characters. "" when nothing is left.

    Lenient on purpose: imports repair what other apps allowed instead of refusing."""
    name = " ".join(raw.replace(",", " ").split()).lower()
    return name[:TAG_MAX].strip()


def parse_tag_input(text: str) -> list[str]:
    """The tags a reader typed, comma-separated; TagError for one that can't be a tag."""
    names: dict[str, None] = {}
    for part in (text or "").split(","):
        name = " ".join(part.split()).lower()
        if not name:
            continue
        if len(name) > TAG_MAX:
            raise TagError(
                f"A tag can have at most {TAG_MAX} characters (“{name[:20]}…” has more)."
            )
        names.setdefault(name, None)
    if not names:
        raise TagError("Type a tag to add (separate several with commas).")
    if len(names) > TAGS_AT_ONCE:
        raise TagError(f"Add at most {TAGS_AT_ONCE} tags at once.")
    return list(names)


def parse_tag_name(text: str) -> str:
    """One tag name (renaming): TagError when it is empty, too long or has a comma."""
    if "," in (text or ""):
        raise TagError("A tag name can't contain a comma.")
    names = parse_tag_input(text)
    return names[0]


def own_tag(user: Reader, tag_id: int) -> Tag:
    """The reader's own tag, or 404 (another reader's tag looks like no tag)."""
    tag = db.session.scalar(select(Tag).where(Tag.id == tag_id, Tag.user_id == user.id))
    if tag is None:
        abort(404)
    return tag


def ensure_tags(
    user_id: int, names: Iterable[str], created: list[int] | None = None
) -> dict[str, int]:
    """Ids of the reader's tags with these names, creating the missing ones (in the
    caller's transaction; a name another request just created is simply reused).
    The ids of the tags it created are appended to `created`."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    found = _tag_ids(user_id, wanted)
    missing = [name for name in wanted if name not in found]
    if missing:
        now = utcnow()
        db.session.execute(
            insert_ignoring(Tag.__table__, "user_id", "name"),
            [{"user_id": user_id, "name": name, "created_at": now} for name in missing],
        )
        made = _tag_ids(user_id, missing)
        found.update(made)
        if created is not None:
            created.extend(made.values())
    return found


def _tag_ids(user_id: int, names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(names), 500):
        rows = db.session.execute(
            select(Tag.name, Tag.id).where(
                Tag.user_id == user_id, Tag.name.in_(names[start : start + 500])
            )
        )
        found.update({name: tag_id for name, tag_id in rows})
    return found


def insert_ignoring(table: Any, *keys: str) -> Any:
    """A many-rows `INSERT … ON CONFLICT (keys) DO NOTHING` for the current dialect."""
    module = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=list(keys))


def link_tags(pairs: Iterable[tuple[int, int]]) -> None:
    """Put tags on entries, (entry_id, tag_id) pairs; pairs already there are kept."""
    rows = [{"entry_id": entry_id, "tag_id": tag_id} for entry_id, tag_id in pairs]
    if rows:
        db.session.execute(insert_ignoring(entry_tags, "entry_id", "tag_id"), rows)


def add_tags(user: Reader, entry_id: int, names: list[str]) -> Entry:
    """Tag one of the reader's entries (404 for anyone else's)."""
    names = [name for name in (clean_tag_name(raw) for raw in names) if name]
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        ids = ensure_tags(user.id, names)
        link_tags((entry.id, tag_id) for tag_id in ids.values())
    db.session.refresh(entry)
    return entry


def remove_tag(user: Reader, entry_id: int, tag_id: int) -> tuple[Entry, str]:
    """Take a tag off one entry; the tag stays for the reader's other entries."""
    with write_transaction():
        entry = access.own_entry(user, entry_id, for_update=True)
        tag = own_tag(user, tag_id)
        name = tag.name
        db.session.execute(
            delete(entry_tags).where(
                entry_tags.c.entry_id == entry.id, entry_tags.c.tag_id == tag.id
            )
        )
    db.session.refresh(entry)
    return entry, name


@dataclass(frozen=True)
class Renamed:
    old: str
    new: str
    merged: bool  # the reader had a tag with the new name: the two are one now


def rename_tag(user: Reader, tag_id: int, new_name: str) -> Renamed:
    """Rename a tag; renaming it to another of the reader's tags merges the two."""
    with write_transaction():
        tag = own_tag(user, tag_id)
        old = tag.name
        other = db.session.scalar(
            select(Tag).where(Tag.user_id == user.id, Tag.name == new_name, Tag.id != tag.id)
        )
        if other is None:
            tag.name = new_name
            return Renamed(old, new_name, merged=False)
        moved = select(entry_tags.c.entry_id).where(entry_tags.c.tag_id == tag.id)
        link_tags((entry_id, other.id) for entry_id in db.session.scalars(moved))
        db.session.execute(delete(Tag).where(Tag.id == tag.id))
    return Renamed(old, new_name, merged=True)


def delete_tag(user: Reader, tag_id: int) -> str:
    """Delete a tag from the reader's entries and their tags; returns its name."""
    with write_transaction():
        tag = own_tag(user, tag_id)
        name = tag.name
        db.session.execute(delete(entry_tags).where(entry_tags.c.tag_id == tag.id))
        db.session.execute(delete(Tag).where(Tag.id == tag.id))
    return name


@dataclass(frozen=True)
class TagCount:
    id: int
    name: str
    entries: int


def tags_with_counts(user: Reader) -> list[TagCount]:
    """The reader's tags by name, each with how many of their entries carry it."""
    rows = db.session.execute(
        select(Tag.id, Tag.name, func.count(entry_tags.c.entry_id))
        .outerjoin(entry_tags, entry_tags.c.tag_id == Tag.id)
        .where(Tag.user_id == user.id)
        .group_by(Tag.id, Tag.name)
        .order_by(Tag.name)
    )
    return [TagCount(tag_id, name, count) for tag_id, name, count in rows]


def tag_named(user: Reader, name: str) -> Tag | None:
    return db.session.scalar(select(Tag).where(Tag.user_id == user.id, Tag.name == name))

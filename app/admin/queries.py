"""Reads for the admin pages: accounts with their reading numbers, open invites and
the audit log. Filters are small value objects that round-trip the URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import (
    AuditEvent,
    Entry,
    EntryState,
    Invite,
    LoginSession,
    Post,
    User,
    utcnow,
)
from app.pagination import Page, page_number

MAX_QUERY = 254

# --- accounts ------------------------------------------------------------------------

USER_SORTS: dict[str, str] = {
    "email": "Email, A to Z",
    "-email": "Email, Z to A",
    "-created": "Newest accounts",
    "created": "Oldest accounts",
    "-last_sign_in": "Signed in most recently",
    "last_sign_in": "Signed in longest ago",
}
ROLES = {"admin": "Admins", "reader": "Readers"}
STATUSES = {"active": "Active", "disabled": "Disabled"}


@dataclass(frozen=True)
class UserFilters:
    """What the users page shows: search, role, status, order and page."""

    q: str = ""
    role: str = ""
    status: str = ""
    sort: str = "email"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> UserFilters:
        """Read the query string; anything unknown falls back to its default."""
        role = args.get("role", "")
        status = args.get("status", "")
        sort = args.get("sort", "email")
        return cls(
            q=" ".join(args.get("q", "").split())[:MAX_QUERY],
            role=role if role in ROLES else "",
            status=status if status in STATUSES else "",
            sort=sort if sort in USER_SORTS else "email",
            page=page_number(args.get("page")),
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.role or self.status)

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments for a link (defaults left out; a change resets the page)."""
        changed = replace(self, **({"page": 1} | changes))
        args = {
            "q": changed.q,
            "role": changed.role,
            "status": changed.status,
            "sort": "" if changed.sort == "email" else changed.sort,
            "page": changed.page if changed.page > 1 else "",
        }
        return {key: value for key, value in args.items() if value}

    def sort_link_args(self, column: str) -> dict[str, Any]:
        """Clicking a column heading sorts by it, and a second click reverses it."""
        ascending_first = column == "email"
        first = column if ascending_first else f"-{column}"
        second = f"-{column}" if ascending_first else column
        return self.to_args(sort=second if self.sort == first else first)

    def sorted_by(self, column: str) -> str | None:
        """`ascending`/`descending` for aria-sort when the list is sorted by `column`."""
        if self.sort == column:
            return "ascending"
        if self.sort == f"-{column}":
            return "descending"
        return None


@dataclass(frozen=True)
class UserRow:
    """An account as the users page lists it, with its reading numbers."""

    user: User
    list_size: int
    finished: int


def _list_size(done_only: bool = False) -> Any:
    stmt = select(func.count()).select_from(Entry).where(Entry.user_id == User.id)
    if done_only:
        stmt = stmt.where(Entry.state == EntryState.DONE.value)
    return stmt.correlate(User).scalar_subquery()


def _user_order(sort: str) -> tuple[Any, ...]:
    return {
        "email": (User.email.asc(),),
        "-email": (User.email.desc(),),
        "created": (User.created_at.asc(), User.id.asc()),
        "-created": (User.created_at.desc(), User.id.desc()),
        "last_sign_in": (User.last_login_at.asc().nulls_first(), User.id.asc()),
        "-last_sign_in": (User.last_login_at.desc().nulls_last(), User.id.desc()),
    }[sort]


def users_select(filters: UserFilters) -> Select[Any]:
    """Accounts matching the filters, each with its list size and finished posts:
    one statement for the whole page (the counts are correlated subqueries that walk
    the entries index of each listed account only)."""
    stmt = select(User, _list_size().label("list_size"), _list_size(True).label("finished"))
    conditions: list[ColumnElement[bool]] = []
    if filters.q:
        conditions.append(User.email.contains(filters.q.lower(), autoescape=True))
    if filters.role:
        conditions.append(User.is_admin.is_(filters.role == "admin"))
    if filters.status:
        conditions.append(User.is_disabled.is_(filters.status == "disabled"))
    return stmt.where(*conditions).order_by(*_user_order(filters.sort))


def users_page(filters: UserFilters, per_page: int) -> Page[UserRow]:
    rows = db.session.execute(
        users_select(filters).limit(per_page + 1).offset((filters.page - 1) * per_page)
    ).all()
    items = [UserRow(user=row[0], list_size=row[1], finished=row[2]) for row in rows]
    return Page(items=items[:per_page], number=filters.page, has_next=len(items) > per_page)


@dataclass(frozen=True)
class UserSummary:
    """One account's page: the numbers an admin wants before changing it."""

    user: User
    list_size: int
    finished: int
    sessions: int
    private_posts: int


def user_summary(user_id: int) -> UserSummary | None:
    sessions = (
        select(func.count())
        .select_from(LoginSession)
        .where(LoginSession.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    private_posts = (
        select(func.count())
        .select_from(Post)
        .where(Post.owner_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    row = db.session.execute(
        select(User, _list_size(), _list_size(True), sessions, private_posts).where(
            User.id == user_id
        )
    ).first()
    if row is None:
        return None
    return UserSummary(
        user=row[0], list_size=row[1], finished=row[2], sessions=row[3], private_posts=row[4]
    )


def active_admin_count() -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.is_admin.is_(True), User.is_disabled.is_(False))
        )
        or 0
    )


# --- invites -------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenInvite:
    invite: Invite
    created_by: str  # the admin's address, "" when that account is gone


def open_invites(now: datetime | None = None) -> list[OpenInvite]:
    """Invites that still work, newest first, with the address of the admin who made them."""
    now = now or utcnow()
    creator = aliased(User)
    rows = db.session.execute(
        select(Invite, creator.email)
        .outerjoin(creator, creator.id == Invite.created_by_id)
        .where(Invite.used_at.is_(None), Invite.revoked_at.is_(None), Invite.expires_at > now)
        .order_by(Invite.created_at.desc(), Invite.id.desc())
    ).all()
    return [OpenInvite(invite=row[0], created_by=row[1] or "") for row in rows]


# --- the audit log -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """What the audit log shows: who, which action, which days (UTC), which page.

    Dates that don't parse are kept as typed, with a message in `errors`, so the form
    can say what is wrong (422) instead of silently showing everything."""

    actor: str = ""
    action: str = ""
    start: date | None = None
    end: date | None = None
    page: int = 1
    raw_start: str = ""
    raw_end: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> AuditFilters:
        errors: dict[str, str] = {}
        raw_start = args.get("start", "").strip()[:20]
        raw_end = args.get("end", "").strip()[:20]
        start = _parse_day(raw_start, "start", errors)
        end = _parse_day(raw_end, "end", errors)
        if start and end and end < start:
            errors["end"] = "The last day is before the first day."
        return cls(
            actor=" ".join(args.get("actor", "").split())[:MAX_QUERY],
            action=args.get("action", "").strip()[:60],
            start=start,
            end=end,
            page=page_number(args.get("page")),
            raw_start=raw_start,
            raw_end=raw_end,
            errors=errors,
        )

    @property
    def active(self) -> bool:
        return bool(self.actor or self.action or self.raw_start or self.raw_end)

    def to_args(self, **changes: Any) -> dict[str, Any]:
        changed = replace(self, **({"page": 1} | changes))
        args = {
            "actor": changed.actor,
            "action": changed.action,
            "start": changed.raw_start,
            "end": changed.raw_end,
            "page": changed.page if changed.page > 1 else "",
        }
        return {key: value for key, value in args.items() if value}


def _parse_day(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date like 2026-05-31."
        return None
    if day.year < 2000 or day.year > 9998:
        errors[name] = "Enter a date between 2000 and 9998."
        return None
    return day


def audit_select(filters: AuditFilters) -> Select[tuple[AuditEvent]]:
    """Events matching the filters, newest first."""
    stmt = select(AuditEvent)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor_email.contains(filters.actor.lower(), autoescape=True))
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.start:
        stmt = stmt.where(AuditEvent.at >= datetime.combine(filters.start, time.min))
    if filters.end:
        stmt = stmt.where(
            AuditEvent.at < datetime.combine(filters.end + timedelta(days=1), time.min)
        )
    return stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def audit_actions() -> list[str]:
    """Every action the log holds, for the filter (whatever features record)."""
    return list(
        db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    )


def latest_audit_events(count: int) -> list[AuditEvent]:
    """The newest `count` events, oldest first (for `dogear audit tail`)."""
    rows = db.session.scalars(
        select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(count)
    )
    return list(reversed(list(rows)))

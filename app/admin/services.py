"""Admin writes on accounts and site settings. Each takes the acting admin, writes
its audit event in the same transaction, and refuses what would lock everyone out.

The last-admin rule holds under concurrency. Every change that can take an active
admin away (demote, disable, delete) first locks the rows of all active admins, then
counts them: on PostgreSQL `SELECT … FOR UPDATE` makes a second admin's change wait
for the first and then see its result; on SQLite `BEGIN IMMEDIATE` (app/db.py)
already lets one writer in at a time. A count without the lock would let two admins
demote each other at the same instant, each seeing the other still an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from werkzeug.security import generate_password_hash

from app.audit import record
from app.auth.services import (
    REGISTRATION_KEY,
    REGISTRATION_MODES,
    AccountError,
    ResetLink,
    add_user,
    create_reset_link,
    delete_login_sessions,
    normalize_email,
    registration_mode,
)
from app.db import write_transaction
from app.extensions import db
from app.models import AuditEvent, Entry, Post, Setting, User, utcnow

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

LAST_ADMIN = "Dogear needs at least one active admin; make someone else an admin first."


class ConfirmationMismatch(AccountError):
    """The address typed to confirm a deletion isn't the account's."""


def _lock_active_admins() -> list[int]:
    """Lock and return the ids of every active admin (in id order, so two
    transactions never lock them in opposite orders)."""
    return list(
        db.session.scalars(
            select(User.id)
            .where(User.is_admin.is_(True), User.is_disabled.is_(False))
            .order_by(User.id)
            .with_for_update()
        )
    )


def _require_admin(actor_id: int, admins: list[int]) -> None:
    """The acting admin may have lost the role (or the account) a moment ago: another
    admin's change that committed while this request waited for the lock."""
    if actor_id not in admins:
        raise AccountError("You are no longer an active admin of this Dogear.")


def _user(user_id: int) -> User:
    user = db.session.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None:
        raise LookupError(user_id)
    return user


def _would_orphan(user: User, admins: list[int]) -> bool:
    """Whether taking `user` away from the active admins leaves none."""
    return user.id in admins and len(admins) <= 1


def create_account(actor: Reader, email: str, password: str, *, is_admin: bool) -> User:
    password_hash = generate_password_hash(password)
    with write_transaction():
        user = add_user(email, password_hash, is_admin=is_admin)
        record(
            "user.create",
            actor=actor,
            target=user.email,
            detail="admin" if is_admin else "reader",
        )
    return user


def set_admin(actor: Reader, user_id: int, is_admin: bool) -> User:
    """Make or unmake an admin; never the last active one."""
    actor_id = actor.id  # read before the transaction: `actor` may be gone after it starts
    with write_transaction():
        admins = _lock_active_admins()
        _require_admin(actor_id, admins)
        user = _user(user_id)
        if user.is_admin == is_admin:
            return user
        if not is_admin and _would_orphan(user, admins):
            raise AccountError(LAST_ADMIN)
        user.is_admin = is_admin
        record(
            "user.role",
            actor=actor,
            target=user.email,
            detail="reader → admin" if is_admin else "admin → reader",
        )
    return user


def set_disabled(actor: Reader, user_id: int, disabled: bool) -> User:
    """Disable an account (signed out everywhere at once) or enable it again."""
    actor_id = actor.id  # read before the transaction: `actor` may be gone after it starts
    with write_transaction():
        admins = _lock_active_admins()
        _require_admin(actor_id, admins)
        user = _user(user_id)
        if disabled and user.id == actor_id:
            raise AccountError("You can't disable your own account.")
        if user.is_disabled == disabled:
            return user
        if disabled and _would_orphan(user, admins):
            raise AccountError(LAST_ADMIN)
        user.is_disabled = disabled
        if disabled:
            delete_login_sessions(user.id)
        record("user.disable" if disabled else "user.enable", actor=actor, target=user.email)
    return user


@dataclass(frozen=True)
class DeletedUser:
    email: str
    entries: int
    posts_deleted: int
    posts_kept: int


def delete_user(actor: Reader, user_id: int, confirm_email: str) -> DeletedUser:
    """Delete an account and everything that is only theirs.

    Goes: the account, its list entries, reading activity, login sessions and reset
    links (by the schema's ON DELETE CASCADE), and the private posts it added that no
    other reader saved. Stays: a private post another reader saved too, handed to
    the reader who saved it first (posts.owner_id would cascade otherwise); invites
    the account made (creator set to NULL); its audit events (address kept).
    """
    actor_id = actor.id  # read before the transaction: `actor` may be gone after it starts
    with write_transaction():
        admins = _lock_active_admins()
        _require_admin(actor_id, admins)
        user = _user(user_id)
        if user.id == actor_id:
            raise AccountError("You can't delete your own account here.")
        if normalize_email(confirm_email) != user.email:
            raise ConfirmationMismatch(
                f"That isn't the address of this account: type {user.email} exactly."
            )
        if _would_orphan(user, admins):
            raise AccountError(LAST_ADMIN)
        result = _erase(user, actor)
    return result


def delete_own_account(user: User, confirm_email: str) -> DeletedUser:
    """A reader leaves: the same erasure as an admin's delete, confirmed by typing
    their own address; the last active admin can't leave."""
    with write_transaction():
        admins = _lock_active_admins()
        if normalize_email(confirm_email) != user.email:
            raise ConfirmationMismatch(f"Type your address, {user.email}, exactly.")
        if _would_orphan(user, admins):
            raise AccountError(LAST_ADMIN)
        result = _erase(user, user, action="user.delete_self")
    return result


def _erase(user: User, actor: Reader, action: str = "user.delete") -> DeletedUser:
    """Delete the account and what is only theirs, in the caller's transaction: its
    entries, activity, sessions and reset links (ON DELETE CASCADE), and the private
    posts it added that no other reader saved; a private post another reader saved is
    handed to the first of them."""
    email = user.email
    entries = (
        db.session.scalar(select(func.count()).select_from(Entry).where(Entry.user_id == user.id))
        or 0
    )
    heir = (
        select(Entry.user_id)
        .where(Entry.post_id == Post.id, Entry.user_id != user.id)
        .order_by(Entry.added_at, Entry.id)
        .limit(1)
        .correlate(Post)
        .scalar_subquery()
    )
    kept = db.session.execute(
        update(Post)
        .where(Post.owner_id == user.id, heir.is_not(None))
        .values(owner_id=heir)
        .execution_options(synchronize_session=False)
    ).rowcount
    deleted = db.session.execute(
        delete(Post).where(Post.owner_id == user.id).execution_options(synchronize_session=False)
    ).rowcount
    db.session.execute(
        delete(User).where(User.id == user.id).execution_options(synchronize_session=False)
    )
    db.session.expunge(user)
    own = actor is user  # the account is gone: the event keeps only its address
    record(
        action,
        actor=None if own else actor,
        actor_email=email if own else None,
        signed_in=not own,
        target=email,
        detail=(
            f"{entries} list entr{'y' if entries == 1 else 'ies'}, "
            f"{deleted} private post{'' if deleted == 1 else 's'} deleted; "
            f"{kept} shared private post{'' if kept == 1 else 's'} handed on"
        ),
    )
    return DeletedUser(email=email, entries=entries, posts_deleted=deleted, posts_kept=kept)


def make_reset_link(actor: Reader, user_id: int) -> ResetLink:
    """A one-time password link for an account, for the admin to pass on."""
    return create_reset_link(user_id, actor=actor, detail="made by an admin")


def set_registration_mode(actor: Reader, mode: str) -> None:
    if mode not in REGISTRATION_MODES:
        raise AccountError("Choose who can create an account.")
    before = registration_mode()
    if before == mode:
        return
    with write_transaction():
        db.session.merge(Setting(key=REGISTRATION_KEY, value=mode))
        record(
            "settings.registration",
            actor=actor,
            target="registration",
            detail=f"{before} → {mode}",
        )


def prune_audit_events(keep_days: int, *, now: datetime | None = None) -> int:
    """Delete audit events older than `keep_days` days; returns how many went."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    with write_transaction():
        return db.session.execute(
            delete(AuditEvent)
            .where(AuditEvent.at < cutoff)
            .execution_options(synchronize_session=False)
        ).rowcount

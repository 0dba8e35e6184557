"""Admin writes on accounts. Each takes the acting admin and refuses what would lock
everyone out (no admin left, an admin disabling themself)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.auth.services import AccountError, end_all_login_sessions, set_setting
from app.db import write_transaction
from app.extensions import db
from app.models import User


def list_users(query: str = "") -> list[User]:
    stmt = select(User).order_by(User.email)
    if query:
        stmt = stmt.where(User.email.contains(query.strip().lower(), autoescape=True))
    return list(db.session.scalars(stmt))


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(user_id)
    return user


def _active_admins() -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.is_admin, User.is_disabled.is_(False))
        )
        or 0
    )


def set_admin(actor: User, user_id: int, is_admin: bool) -> User:
    with write_transaction():
        user = _user(user_id)
        if user.is_admin and not is_admin and not user.is_disabled and _active_admins() <= 1:
            raise AccountError("Dogear needs at least one admin; make someone else admin first.")
        user.is_admin = is_admin
    return user


def set_disabled(actor: User, user_id: int, disabled: bool) -> User:
    """Disable (signs the user out everywhere at once) or enable an account."""
    with write_transaction():
        user = _user(user_id)
        if disabled and user.id == actor.id:
            raise AccountError("You can't disable your own account.")
        if disabled and user.is_admin and not user.is_disabled and _active_admins() <= 1:
            raise AccountError("Dogear needs at least one active admin.")
        user.is_disabled = disabled
    if disabled:
        end_all_login_sessions(user.id)
    return user


def set_registration_mode(mode: str) -> None:
    set_setting("registration", mode)

"""Who is asking: the signed-in reader as plain values, not an ORM entity.

Every request with a session cookie runs one statement (`services._signed_in`) and
makes a `SignedIn` of its row. Views and services read the id, the address and the
role of whoever is asking; none of them need the account's entity for that, and
making one (identity map, instance state, every column) was a fixed cost of every
page. The few views that change the account itself (password, two-factor, leaving)
ask for `account()`, which loads the entity then.

Nothing of it outlives the request: revocation stays immediate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask_login import current_user

from app.extensions import db
from app.models import User


class Reader(Protocol):
    """What services read of whoever is asking: a `SignedIn` row, or a `User` (the
    sign-in request itself, jobs, the command line)."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def two_factor_enabled(self) -> bool: ...


@dataclass(slots=True, eq=False)
class SignedIn:
    id: int
    email: str
    is_admin: bool
    two_factor_since: datetime | None
    two_factor_enabled: bool
    session_token: str  # what Flask-Login keeps in the cookies (see `get_id`)
    login_session_id: int  # this browser's session row
    open_entries: int  # the header's count, from the same statement

    # Flask-Login's interface: only active accounts get here (the statement skips
    # disabled ones).
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """The login session's token, not the user id: ending that session revokes
        the session and remember cookies both."""
        return self.session_token

    def account(self) -> User:
        """The account as an ORM entity, for the views that change it."""
        user = db.session.get(User, self.id)
        if user is None:  # deleted since this request's first statement
            raise LookupError(f"user {self.id} is gone")
        user.session_token = self.session_token
        user.login_session_id = self.login_session_id
        user.open_entries = self.open_entries
        return user


def current_account() -> User:
    """The signed-in reader's account as an ORM entity (see `SignedIn.account`)."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    return user if isinstance(user, User) else user.account()

"""The audit log: every admin action, sign-in, failed sign-in, password change, reset
and invite use, with who, what, the target, when and from which address.

`record` adds the event to the caller's transaction, so the event and the action it
describes commit (or roll back) together. `record_now` writes an event on its own,
for things that have no transaction of their own (a failed sign-in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import has_request_context, request
from flask_login import current_user

from app.db import write_transaction
from app.extensions import db
from app.models import AuditEvent

if TYPE_CHECKING:
    from app.auth.signed_in import Reader


def record(
    action: str,
    *,
    target: str = "",
    detail: str = "",
    actor: Reader | None = None,
    actor_email: str | None = None,
    signed_in: bool = True,
) -> AuditEvent:
    """Add an event (e.g. `record("user.disable", target=user.email)`) to the session.

    The actor defaults to the signed-in user; `actor_email` names someone who is not
    signed in (a failed sign-in's address).
    """
    if signed_in and actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()  # type: ignore[attr-defined]
    event = AuditEvent(
        action=action[:60],
        target=target[:300],
        detail=detail,
        actor_id=actor.id if actor is not None else None,
        actor_email=(actor.email if actor is not None else actor_email or "")[:254],
        ip=(request.remote_addr or "")[:45] if has_request_context() else "",
    )
    db.session.add(event)
    return event


def record_now(action: str, **fields: object) -> None:
    """Write one event in a short transaction of its own."""
    with write_transaction():
        record(action, **fields)  # type: ignore[arg-type]

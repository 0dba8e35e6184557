"""Admin pages: accounts, invites, registration and the audit log. Every route is for
admins only (readers get 403).

Destructive actions confirm first: their buttons are links to a confirmation (a page
of its own without JavaScript; the same form swapped in place with htmx), and only
the confirmation's POST changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from app import access
from app.admin import queries, services
from app.admin.forms import CreateUserForm, DeleteUserForm, InviteForm, RegistrationForm
from app.auth import services as auth_services
from app.auth import twofactor
from app.auth.services import AccountError, registration_mode
from app.auth.signed_in import Reader
from app.auth.twofactor_forms import AdminTwoFactorForm
from app.models import User
from app.pagination import Page, paginate
from app.templating import hx_redirect, redirect_back, render, render_fragment, wants_fragment

bp = Blueprint("admin", __name__, url_prefix="/admin")


bp.before_request(access.require_admin)

DEFAULT_PER_PAGE = 50


def _per_page() -> int:
    return int(current_app.config.get("ADMIN_PER_PAGE", DEFAULT_PER_PAGE))


def _actor() -> Reader:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


# --- links shown once ----------------------------------------------------------------

_ONE_TIME = "admin_one_time_link"


@dataclass(frozen=True)
class NewLink:
    """An invite or reset link just made: the only time its token is ever shown."""

    kind: str  # "invite" or "reset"
    url: str
    expires_at: datetime
    subject: int  # the invite's or the user's id


def _keep_for_next_page(link: NewLink) -> None:
    """After a plain POST the link rides the redirect in the (signed) session cookie
    and is removed from it on the page that shows it."""
    session[_ONE_TIME] = {
        "kind": link.kind,
        "url": link.url,
        "expires_at": link.expires_at.isoformat(),
        "subject": link.subject,
    }


def _take_kept(kind: str, subject: int | None = None) -> NewLink | None:
    kept = session.get(_ONE_TIME)
    if not isinstance(kept, dict) or kept.get("kind") != kind:
        return None
    if subject is not None and kept.get("subject") != subject:
        return None
    session.pop(_ONE_TIME, None)
    try:
        return NewLink(
            kind=kind,
            url=str(kept["url"]),
            expires_at=datetime.fromisoformat(kept["expires_at"]),
            subject=int(kept["subject"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


# --- the users page -----------------------------------------------------------------


@bp.get("")
def index() -> ResponseReturnValue:
    return redirect(url_for("admin.users"))


def _rows_context(filters: queries.UserFilters) -> dict[str, Any]:
    page = queries.users_page(filters, _per_page())
    return {
        "filters": filters,
        "page": page,
        "rows": page.items,
        "sorts": queries.USER_SORTS,
        "roles": queries.ROLES,
        "statuses": queries.STATUSES,
    }


def _invites_context(
    form: InviteForm | None = None,
    *,
    new_link: NewLink | None = None,
    confirm_revoke: int | None = None,
) -> dict[str, Any]:
    return {
        "invite_form": form or InviteForm(formdata=None),
        "invites": queries.open_invites(),
        "new_invite": new_link or _take_kept("invite"),
        "confirm_revoke": confirm_revoke,
    }


def _users_page(
    status: int = 200,
    *,
    form: CreateUserForm | None = None,
    invite_form: InviteForm | None = None,
    confirm_revoke: int | None = None,
) -> ResponseReturnValue:
    filters = queries.UserFilters.from_args(request.args)
    context = _rows_context(filters)
    if not wants_fragment():
        context |= _invites_context(invite_form, confirm_revoke=confirm_revoke)
        context |= {
            "form": form or CreateUserForm(formdata=None),
            "registration": RegistrationForm(mode=registration_mode()),
            "two_factor_policy": AdminTwoFactorForm(
                required=twofactor.admin_two_factor_required()
            ),
        }
    response = render("admin/users.html", "admin/partials/user_rows.html", status, **context)
    if wants_fragment() and request.method == "GET":
        # The address bar shows the filters without empty fields (q=&role=&…).
        response.headers["HX-Push-Url"] = url_for(
            "admin.users", **filters.to_args(page=filters.page)
        )
    return response


@bp.get("/users")
def users() -> ResponseReturnValue:
    """Accounts (search, filters, order, pages), invites, a create form and the
    registration setting."""
    return _users_page()


@bp.post("/users")
def create() -> ResponseReturnValue:
    """Create an account for a reader (or another admin)."""
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            user = services.create_account(
                _actor(),
                form.email.data or "",
                form.password.data or "",
                is_admin=bool(form.is_admin.data),
            )
        except AccountError as error:
            form.email.errors.append(str(error))
        else:
            flash(f"Account created for {user.email}.", "success")
            return redirect(url_for("admin.users"), code=303)
    return _users_page(422, form=form)


# --- invites -------------------------------------------------------------------------


@bp.post("/invites")
def create_invite() -> ResponseReturnValue:
    """Make a single-use sign-up link; it is shown once, here."""
    form = InviteForm()
    if not form.validate_on_submit():
        if wants_fragment():
            return render_fragment("admin/partials/invites.html", 422, **_invites_context(form))
        return _users_page(422, invite_form=form)
    invite, token = auth_services.create_invite(
        _actor(),
        is_admin=bool(form.is_admin.data),
        note=form.note.data or "",
        days=int(form.days.data or current_app.config["INVITE_DAYS"]),
    )
    link = NewLink(
        kind="invite",
        url=url_for("auth.invite", token=token, _external=True),
        expires_at=invite.expires_at,
        subject=invite.id,
    )
    if wants_fragment():
        return render_fragment("admin/partials/invites.html", **_invites_context(new_link=link))
    _keep_for_next_page(link)
    return redirect(url_for("admin.users", _anchor="invites"), code=303)


@bp.get("/invites")
def invites() -> ResponseReturnValue:
    """The invites card (htmx: after "Keep it"); the users page shows it otherwise."""
    if wants_fragment():
        return render_fragment("admin/partials/invites.html", **_invites_context())
    response = redirect(url_for("admin.users", _anchor="invites"))
    response.vary.add("HX-Request")
    return response


def _open_invite(invite_id: int) -> queries.OpenInvite | None:
    return next((item for item in queries.open_invites() if item.invite.id == invite_id), None)


@bp.get("/invites/<int:invite_id>/revoke")
def confirm_revoke(invite_id: int) -> ResponseReturnValue:
    """Ask before revoking an invite: a page of its own, or in place with htmx."""
    item = _open_invite(invite_id)
    if item is None:
        flash("That invite is no longer open: it was used, revoked or it expired.", "info")
        if wants_fragment():
            return render_fragment("admin/partials/invites.html", **_invites_context())
        return redirect(url_for("admin.users", _anchor="invites"), code=303)
    return render(
        "admin/confirm_revoke.html",
        "admin/partials/invites.html",
        item=item,
        **_invites_context(confirm_revoke=invite_id),
    )


@bp.post("/invites/<int:invite_id>/revoke")
def revoke_invite(invite_id: int) -> ResponseReturnValue:
    """Revoke an open invite: its link stops working at once."""
    try:
        auth_services.revoke_invite(_actor(), invite_id)
    except LookupError:
        abort(404)
    except AccountError as error:
        flash(str(error), "error")
    else:
        flash("Invite revoked: its link no longer works.", "success")
    if wants_fragment():
        return render_fragment("admin/partials/invites.html", **_invites_context())
    return redirect(url_for("admin.users", _anchor="invites"), code=303)


# --- one account ---------------------------------------------------------------------


def _user_page(
    user_id: int,
    status: int = 200,
    *,
    confirm: str | None = None,
    delete_form: DeleteUserForm | None = None,
    error: str | None = None,
    new_link: NewLink | None = None,
) -> ResponseReturnValue:
    summary = queries.user_summary(user_id)
    if summary is None:
        abort(404)
    return render(
        "admin/user.html",
        "admin/partials/user_panel.html",
        status,
        summary=summary,
        user=summary.user,
        confirm=confirm,
        delete_form=delete_form or DeleteUserForm(formdata=None),
        error=error,
        new_reset=new_link or _take_kept("reset", user_id),
        active_admins=queries.active_admin_count(),
    )


@bp.get("/users/<int:user_id>")
def user(user_id: int) -> ResponseReturnValue:
    """One account: its numbers, role, access, password link and deletion."""
    return _user_page(user_id)


@bp.get("/users/<int:user_id>/disable")
def confirm_disable(user_id: int) -> ResponseReturnValue:
    """Ask before disabling an account."""
    return _user_page(user_id, confirm="disable")


@bp.get("/users/<int:user_id>/delete")
def confirm_delete(user_id: int) -> ResponseReturnValue:
    """Ask before deleting an account: the admin types its address."""
    return _user_page(user_id, confirm="delete")


def _change(user_id: int, action: Callable[[], User], message: str) -> ResponseReturnValue:
    """Run an account change: the panel again for htmx, else back with a flash."""
    try:
        user = action()
    except LookupError:
        abort(404)
    except AccountError as error:
        if wants_fragment():
            return _user_page(user_id, 409, error=str(error))
        flash(str(error), "error")
        return redirect_back("admin.user", user_id=user_id)
    flash(message.format(user.email), "success")
    if user.id == current_user.id and not user.is_admin:  # demoted themself: no admin area
        target = url_for("browse.index")
        return hx_redirect(target) if wants_fragment() else redirect(target, code=303)
    if wants_fragment():
        return _user_page(user_id)
    return redirect_back("admin.user", user_id=user_id)


@bp.post("/users/<int:user_id>/admin")
def set_admin(user_id: int) -> ResponseReturnValue:
    """Make or unmake an admin (never the last one)."""
    make_admin = request.form.get("is_admin") == "1"
    return _change(
        user_id,
        lambda: services.set_admin(_actor(), user_id, make_admin),
        "{} is now an admin." if make_admin else "{} is no longer an admin.",
    )


@bp.post("/users/<int:user_id>/disabled")
def set_disabled(user_id: int) -> ResponseReturnValue:
    """Disable an account (signed out at once) or enable it again."""
    disable = request.form.get("disabled") == "1"
    return _change(
        user_id,
        lambda: services.set_disabled(_actor(), user_id, disable),
        "{} is disabled and was signed out everywhere." if disable else "{} can sign in again.",
    )


@bp.post("/users/<int:user_id>/reset-link")
def reset_link(user_id: int) -> ResponseReturnValue:
    """Make a one-time password link for the account; it is shown once, here."""
    try:
        made = services.make_reset_link(_actor(), user_id)
    except LookupError:
        abort(404)
    link = NewLink(
        kind="reset",
        url=url_for("auth.reset", token=made.token, _external=True),
        expires_at=made.expires_at,
        subject=user_id,
    )
    if wants_fragment():
        return _user_page(user_id, new_link=link)
    _keep_for_next_page(link)
    return redirect(url_for("admin.user", user_id=user_id, _anchor="password"), code=303)


@bp.post("/users/<int:user_id>/delete")
def delete(user_id: int) -> ResponseReturnValue:
    """Delete an account and its data, once the admin typed its address."""
    form = DeleteUserForm()
    if form.validate_on_submit():
        try:
            deleted = services.delete_user(_actor(), user_id, form.confirm_email.data or "")
        except LookupError:
            abort(404)
        except services.ConfirmationMismatch as error:
            form.confirm_email.errors.append(str(error))
        except AccountError as error:
            if wants_fragment():
                return _user_page(user_id, 409, error=str(error))
            flash(str(error), "error")
            return redirect(url_for("admin.user", user_id=user_id), code=303)
        else:
            flash(_deleted_message(deleted), "success")
            target = url_for("admin.users")
            return hx_redirect(target) if wants_fragment() else redirect(target, code=303)
    return _user_page(user_id, 422, confirm="delete", delete_form=form)


def _deleted_message(deleted: services.DeletedUser) -> str:
    message = f"Deleted {deleted.email} and their list ({deleted.entries} entries)."
    if deleted.posts_kept:
        message += (
            f" {deleted.posts_kept} page{'s' if deleted.posts_kept != 1 else ''} they added "
            "stay{} for the other readers who saved {}.".format(
                "s" if deleted.posts_kept == 1 else "",
                "it" if deleted.posts_kept == 1 else "them",
            )
        )
    return message


# --- settings ------------------------------------------------------------------------


@bp.post("/settings/registration")
def registration() -> ResponseReturnValue:
    """Open or close self-registration."""
    form = RegistrationForm()
    if form.validate_on_submit():
        services.set_registration_mode(_actor(), form.mode.data)
        label = {choice.value: choice.label for choice in form.mode.choices}[form.mode.data]
        flash(f"Registration: {label}.", "success")
    else:
        flash("Choose who can create an account.", "error")
    return redirect(url_for("admin.users", _anchor="registration"), code=303)


@bp.post("/settings/two-factor")
def two_factor_policy() -> ResponseReturnValue:
    """Require two-factor sign-in for admin accounts, or leave it to each admin."""
    form = AdminTwoFactorForm()
    if form.validate_on_submit():
        required = bool(form.required.data)
        twofactor.set_admin_two_factor(_actor(), required)
        if required:
            flash("Admins now need two-factor sign-in.", "success")
        else:
            flash("Two-factor sign-in is optional for admins.", "success")
    else:
        flash("That setting could not be saved; reload the page and try again.", "error")
    return redirect(url_for("admin.users", _anchor="two-factor-policy"), code=303)


# --- the audit log -------------------------------------------------------------------


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    """What happened: admin actions, sign-ins and account changes, newest first."""
    filters = queries.AuditFilters.from_args(request.args)
    if filters.errors:
        page: Page[Any] = Page(items=[], number=1, has_next=False)
        status = 422
    else:
        page = paginate(queries.audit_select(filters), filters.page, _per_page())
        status = 200
    actions = queries.audit_actions()
    if filters.action and filters.action not in actions:
        actions.append(filters.action)
    response = render(
        "admin/audit.html",
        "admin/partials/audit_results.html",
        status,
        filters=filters,
        page=page,
        events=page.items,
        actions=actions,
    )
    if wants_fragment():
        response.headers["HX-Push-Url"] = url_for(
            "admin.audit", **filters.to_args(page=filters.page)
        )
    return response

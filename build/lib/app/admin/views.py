"""Admin pages: the users list and site settings. Every route is for admins only."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app.admin import services
from app.admin.forms import CreateUserForm, RegistrationForm
from app.auth.services import AccountError, create_user, registration_mode
from app.models import User
from app.templating import render

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def require_admin() -> None:
    if not current_user.is_admin:
        abort(403)


@bp.get("")
def index() -> ResponseReturnValue:
    return redirect(url_for("admin.users"))


def _users_page(form: CreateUserForm, status: int = 200) -> ResponseReturnValue:
    query = request.args.get("q", "")
    return render(
        "admin/users.html",
        "admin/partials/user_rows.html",
        status,
        form=form,
        users=services.list_users(query),
        query=query,
        registration=RegistrationForm(mode=registration_mode()),
    )


@bp.get("/users")
def users() -> ResponseReturnValue:
    """Accounts with their role and status, a search box and a create form."""
    return _users_page(CreateUserForm())


@bp.post("/users")
def create() -> ResponseReturnValue:
    """Create an account for a reader (or another admin)."""
    form = CreateUserForm()
    if form.validate_on_submit():
        try:
            user = create_user(
                form.email.data or "", form.password.data or "", is_admin=bool(form.is_admin.data)
            )
        except AccountError as error:
            form.email.errors.append(str(error))
        else:
            flash(f"Account created for {user.email}.", "success")
            return redirect(url_for("admin.users"), code=303)
    return _users_page(form, 422)


@bp.post("/users/<int:user_id>/admin")
def set_admin(user_id: int) -> ResponseReturnValue:
    """Make or unmake an admin (never the last one)."""
    make_admin = request.form.get("is_admin") == "1"
    return _change(
        lambda: services.set_admin(current_user, user_id, make_admin),
        "{} is now an admin." if make_admin else "{} is no longer an admin.",
    )


@bp.post("/users/<int:user_id>/disabled")
def set_disabled(user_id: int) -> ResponseReturnValue:
    """Disable an account (signed out at once) or enable it again."""
    disable = request.form.get("disabled") == "1"
    return _change(
        lambda: services.set_disabled(current_user, user_id, disable),
        "{} is disabled and was signed out everywhere." if disable else "{} can sign in again.",
    )


def _change(action: Callable[[], User], message: str) -> ResponseReturnValue:
    try:
        user = action()
    except LookupError:
        abort(404)
    except AccountError as error:
        flash(str(error), "error")
    else:
        flash(message.format(user.email), "success")
    return redirect(url_for("admin.users"), code=303)


@bp.post("/settings/registration")
def registration() -> ResponseReturnValue:
    """Open or close self-registration."""
    form = RegistrationForm()
    if form.validate_on_submit():
        services.set_registration_mode(form.mode.data)
        flash("Registration setting saved.", "success")
    else:
        flash("Choose who can create an account.", "error")
    return redirect(url_for("admin.users"), code=303)

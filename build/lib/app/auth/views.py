"""Sign in, sign out, register, first-run set-up and the account page."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import services
from app.auth.forms import AccountForm, LoginForm, PasswordForm
from app.extensions import limiter
from app.models import User
from app.security import safe_next_url

bp = Blueprint("auth", __name__)


def _sign_in(user: User, remember: bool = False) -> None:
    """Start a fresh session (no pre-login state carries over) for `user`."""
    session.clear()
    services.start_login_session(user, request.headers.get("User-Agent", ""))
    login_user(user, remember=remember)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    """The sign-in form."""
    if current_user.is_authenticated:
        return redirect(url_for("browse.index"))
    form = LoginForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data or "", form.password.data or "")
        except services.AccountDisabled as error:
            form.email.errors.append(str(error))
        else:
            if user is not None:
                _sign_in(user, remember=bool(form.remember.data))
                target = safe_next_url(form.next.data) or url_for("browse.index")
                return redirect(target, code=303)
            form.password.errors.append("Email or password is not correct.")
        status = 422
    elif form.is_submitted():
        status = 422
    return render_template(
        "auth/login.html", form=form, registration_open=_registration_open()
    ), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this browser's session for real, then show the sign-in page."""
    if current_user.is_authenticated:
        services.end_login_session(current_user.session_token)
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"), code=303)


def _registration_open() -> bool:
    return services.registration_mode() == "open"


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def register() -> ResponseReturnValue:
    """Create an account, when the admins have opened registration."""
    if not _registration_open():
        return render_template("auth/register_closed.html"), 403
    form = AccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.create_user(form.email.data or "", form.password.data or "")
        except services.AccountError as error:
            form.email.errors.append(str(error))
        else:
            _sign_in(user)
            flash("Welcome to Dogear! Save a few posts to start your list.", "success")
            return redirect(url_for("browse.index"), code=303)
    if form.is_submitted():
        status = 422
    return render_template("auth/register.html", form=form), status


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str) -> ResponseReturnValue:
    """First run: the one-time link from the server log creates the first admin."""
    if not services.setup_token_is_valid(token):
        abort(404)
    form = AccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.complete_setup(token, form.email.data or "", form.password.data or "")
        except services.AccountError as error:
            form.email.errors.append(str(error))
        else:
            _sign_in(user)
            flash("Your admin account is ready. Create accounts for your readers here.", "success")
            return redirect(url_for("admin.users"), code=303)
    if form.is_submitted():
        status = 422
    return render_template("auth/setup.html", form=form, token=token), status


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> ResponseReturnValue:
    """The reader's account: change password."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            services.change_password(
                current_user, form.current.data or "", form.password.data or ""
            )
        except services.AccountError as error:
            form.current.errors.append(str(error))
        else:
            flash("Password changed. Your other devices were signed out.", "success")
            return redirect(url_for("auth.account"), code=303)
    if form.is_submitted():
        status = 422
    return render_template("auth/account.html", form=form), status

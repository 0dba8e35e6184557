"""Sign in, sign out, register, invites, password resets, first-run set-up and the
account page."""

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
from flask_login import current_user, login_required, logout_user

from app import mail
from app.admin.services import delete_own_account
from app.auth import services, session_views, sessions, signin, throttle, twofactor_views
from app.auth.forms import (
    AccountForm,
    DeleteAccountForm,
    ForgotForm,
    LoginForm,
    PasswordForm,
    ResetPasswordForm,
)
from app.auth.services import LinkProblem
from app.auth.signed_in import current_account
from app.errors import resends_expired_form
from app.extensions import limiter
from app.models import User
from app.security import safe_next_url

bp = Blueprint("auth", __name__)
session_views.register(bp)  # the Account page's sessions; expired sessions end here
twofactor_views.register(bp)  # the sign-in's code step, two-factor set-up


def _sign_in(user: User, remember: bool = False) -> None:
    """Start a fresh session (no pre-login state carries over) for `user`."""
    signin.sign_in(user, remember=remember)


def _leave_current_session() -> None:
    """Whoever was signed in on this browser is signed out (their session row ends)."""
    signin.leave_current_session()


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


@bp.route("/login", methods=["GET", "POST"])
@resends_expired_form
@throttle.sign_in_limits
def login() -> ResponseReturnValue:
    """The sign-in form."""
    if current_user.is_authenticated:
        return redirect(url_for("browse.index"))
    form = LoginForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit():
        email = form.email.data or ""
        try:
            user = services.authenticate(email, form.password.data or "")
        except services.AccountDisabled as error:
            services.record_failed_sign_in(email, "the account is disabled")
            form.email.errors.append(str(error))
        else:
            if user is not None:
                remember = bool(form.remember.data)
                target = safe_next_url(form.next.data) or url_for("browse.index")
                if user.two_factor_enabled:  # not signed in until the code is right
                    signin.begin_second_step(user, remember=remember, next_url=target)
                    return redirect(url_for("auth.two_factor_login"), code=303)
                _sign_in(user, remember=remember)
                return redirect(target, code=303)
            services.record_failed_sign_in(email, "wrong address or password")
            form.password.errors.append("Email or password is not correct.")
        status = 422
    elif form.is_submitted():
        status = 422
    return render_template(
        "auth/login.html", form=form, registration=services.registration_mode()
    ), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End this browser's session for real, then show the sign-in page."""
    if current_user.is_authenticated:
        services.end_login_session(
            current_user.session_token, actor=current_user._get_current_object()
        )
    logout_user()
    session.clear()
    signin.new_csrf_secret()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/register", methods=["GET", "POST"])
@resends_expired_form
@limiter.limit(_login_limit, methods=["POST"])
def register() -> ResponseReturnValue:
    """Create an account, when the admins have opened registration."""
    mode = services.registration_mode()
    if mode != "open":
        return render_template("auth/register_closed.html", mode=mode), 403
    form = AccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.register(form.email.data or "", form.password.data or "")
        except services.AccountError as error:
            form.email.errors.append(str(error))
        else:
            _sign_in(user)
            flash("Welcome to Dogear! Save a few posts to start your list.", "success")
            return redirect(url_for("browse.index"), code=303)
    if form.is_submitted():
        status = 422
    return render_template("auth/register.html", form=form), status


# --- one-time links ----------------------------------------------------------------

_GONE = {
    "invite": {
        LinkProblem.UNKNOWN: "This invite link isn't valid. Check that you copied all of it, "
        "or ask the admin who sent it for a new one.",
        LinkProblem.EXPIRED: "This invite link has expired. Ask the admin who sent it for a "
        "new one.",
        LinkProblem.USED: "This invite link was already used to create an account. If that "
        "was you, sign in; otherwise ask the admin who sent it for a new one.",
        LinkProblem.REVOKED: "This invite link was withdrawn by an admin. Ask them for a new "
        "one if you still need an account.",
    },
    "reset": {
        LinkProblem.UNKNOWN: "This reset link isn't valid. Check that you copied all of it, "
        "or ask for a new one.",
        LinkProblem.EXPIRED: "This reset link has expired. Ask for a new one.",
        LinkProblem.USED: "This reset link was already used. If you didn't use it yourself, "
        "ask an admin for a new one.",
        LinkProblem.SIGNED_IN: "This reset link stopped working because the account signed "
        "in after it was made. If you still need a new password, ask for a new link.",
    },
}


def _link_gone(kind: str, problem: LinkProblem) -> ResponseReturnValue:
    """A clear page for a link that doesn't work: 404 for one that never existed, 410
    (gone) for one that did."""
    status = 404 if problem is LinkProblem.UNKNOWN else 410
    message = _GONE[kind].get(problem, _GONE[kind][LinkProblem.UNKNOWN])
    return render_template(
        "auth/link_gone.html", kind=kind, problem=problem.value, message=message
    ), status


@bp.route("/invite/<token>", methods=["GET", "POST"])
@resends_expired_form
@limiter.limit(_login_limit, methods=["POST"])
def invite(token: str) -> ResponseReturnValue:
    """Sign up through an admin's invite link (whatever the registration mode)."""
    invite = services.find_invite(token)
    problem = services.invite_problem(invite)
    if problem is not None or invite is None:
        return _link_gone("invite", problem or LinkProblem.UNKNOWN)
    form = AccountForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.accept_invite(token, form.email.data or "", form.password.data or "")
        except services.LinkGone as gone:
            return _link_gone("invite", gone.problem)
        except services.AccountError as error:
            form.email.errors.append(str(error))
        else:
            _sign_in(user)
            if user.is_admin:
                flash("Welcome to Dogear! Your admin account is ready.", "success")
                return redirect(url_for("admin.users"), code=303)
            flash("Welcome to Dogear! Save a few posts to start your list.", "success")
            return redirect(url_for("browse.index"), code=303)
    if form.is_submitted():
        status = 422
    return render_template("auth/invite.html", form=form, invite=invite, token=token), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
@resends_expired_form
@limiter.limit(_login_limit, methods=["POST"])
def reset(token: str) -> ResponseReturnValue:
    """Choose a new password through a one-time reset link."""
    found = services.find_reset(token)
    problem = services.reset_problem(found)
    if problem is not None or found is None:
        return _link_gone("reset", problem or LinkProblem.UNKNOWN)
    form = ResetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.use_reset_link(token, form.password.data or "")
        except services.LinkGone as gone:
            return _link_gone("reset", gone.problem)
        _leave_current_session()  # whoever was signed in on this browser
        flash(
            f"The password of {user.email} is changed and every device was signed out. "
            "Sign in with the new password.",
            "success",
        )
        return redirect(url_for("auth.login"), code=303)
    if form.is_submitted():
        status = 422
    reset, user = found
    return render_template(
        "auth/reset.html", form=form, token=token, user=user, reset=reset
    ), status


@bp.route("/forgot", methods=["GET", "POST"])
@resends_expired_form
@limiter.limit(_login_limit, methods=["POST"])
def forgot() -> ResponseReturnValue:
    """'Forgot your password?': mail a reset link when this Dogear can send mail, else
    say who can help. The answer never tells whether the address has an account."""
    can_mail = mail.is_configured()
    form = ForgotForm()
    status = 200
    if can_mail and form.validate_on_submit():
        email = services.normalize_email(form.email.data or "")
        services.request_reset_mail(email)
        minutes = current_app.config["RESET_LINK_MINUTES"]
        flash(
            f"If {email} belongs to an account here, a link to choose a new password is "
            f"on its way to it. The link works once, for {minutes} minutes.",
            "success",
        )
        return redirect(url_for("auth.login"), code=303)
    if can_mail and form.is_submitted():
        status = 422
    return render_template("auth/forgot.html", form=form, can_mail=can_mail), status


# --- first run and the account page --------------------------------------------------


@bp.route("/setup/<token>", methods=["GET", "POST"])
@resends_expired_form
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
@resends_expired_form
@login_required
def account() -> ResponseReturnValue:
    """The reader's account: change password."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            services.change_password(
                current_account(), form.current.data or "", form.password.data or ""
            )
        except services.AccountError as error:
            form.current.errors.append(str(error))
        else:
            flash("Password changed. Your other devices were signed out.", "success")
            return redirect(url_for("auth.account"), code=303)
    if form.is_submitted():
        status = 422
    return render_template(
        "auth/account.html",
        form=form,
        sessions=sessions.session_rows(current_user._get_current_object()),
    ), status


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> ResponseReturnValue:
    """End every session of this account except the one on this device."""
    services.end_other_sessions(current_user._get_current_object())
    flash("You are signed out on every other device.", "success")
    return redirect(url_for("auth.account"), code=303)


@bp.route("/account/delete", methods=["GET", "POST"])
@resends_expired_form
@login_required
def delete_account() -> ResponseReturnValue:
    """Leave Dogear: the account and everything only it had, after typing the address."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        try:
            delete_own_account(current_account(), form.email.data or "")
        except services.AccountError as error:
            form.email.errors.append(str(error))
        else:
            logout_user()
            session.clear()
            signin.new_csrf_secret()
            flash("Your account and your reading list are deleted. Goodbye!", "success")
            return redirect(url_for("browse.index"), code=303)
    status = 422 if form.is_submitted() else 200
    return render_template("auth/delete_account.html", form=form), status

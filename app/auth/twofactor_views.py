"""Two-factor sign-in pages: the code step of signing in, set-up and management on the
Account page, recovery codes. Routes of the `auth` blueprint (`register` adds them),
plus the check that sends an admin who must use two-factor sign-in to set it up."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from app.auth import services, signin, throttle, twofactor
from app.auth.signed_in import current_account
from app.auth.twofactor_forms import CodeForm, DisableForm, EnableForm, RegenerateForm
from app.errors import resends_expired_form
from app.extensions import limiter
from app.models import User
from app.templating import hx_redirect

_SETUP = "two_factor_setup"  # the secret being set up, until the reader's app confirms it
_NEW_CODES = "two_factor_new_codes"  # recovery codes on their way to the page showing them

# What an admin who must set up two-factor sign-in can still reach.
_OPEN_TO_ADMINS_WITHOUT = {
    "auth.two_factor",
    "auth.two_factor_enable",
    "auth.recovery_codes",
    "auth.logout",
}
_OPEN_BLUEPRINTS = {"health", "pwa"}


def register(bp: Blueprint) -> None:
    bp.before_app_request(require_admin_two_factor)
    bp.add_url_rule("/login/code", view_func=two_factor_login, methods=["GET", "POST"])
    bp.add_url_rule("/account/two-factor", view_func=two_factor)
    bp.add_url_rule("/account/two-factor/enable", view_func=two_factor_enable, methods=["POST"])
    bp.add_url_rule("/account/two-factor/disable", view_func=two_factor_disable, methods=["POST"])
    bp.add_url_rule("/account/two-factor/recovery-codes", view_func=recovery_codes)
    bp.add_url_rule(
        "/account/two-factor/recovery-codes",
        endpoint="regenerate_recovery_codes",
        view_func=regenerate_recovery_codes,
        methods=["POST"],
    )


def _login_limit() -> str:
    return str(current_app.config["RATELIMIT_LOGIN"])


def _reader() -> User:
    return current_account()


# --- admins who must use it ------------------------------------------------------------


def require_admin_two_factor() -> ResponseReturnValue | None:
    """`before_app_request`: while the site requires two-factor sign-in for admins, an
    admin without it can do nothing but set it up (or sign out)."""
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static" or endpoint in _OPEN_TO_ADMINS_WITHOUT:
        return None
    if request.blueprint in _OPEN_BLUEPRINTS:
        return None
    if not current_user.is_authenticated or not twofactor.must_set_up(current_user):
        return None
    flash(
        "This Dogear requires two-factor sign-in for admins. Set it up to continue.",
        "info",
    )
    target = url_for("auth.two_factor")
    if request.headers.get("HX-Request"):
        return hx_redirect(target)
    return redirect(target, code=303 if request.method != "GET" else 302)


# --- signing in: the second step ---------------------------------------------------------


@resends_expired_form
@limiter.limit(
    _login_limit, methods=["POST"], key_func=throttle.address_key, deduct_when=throttle.failed
)
@limiter.limit(
    _login_limit,
    methods=["POST"],
    key_func=signin.pending_account_key,
    deduct_when=throttle.failed,
)
def two_factor_login() -> ResponseReturnValue:
    """After the right password: the code from the reader's app, or a recovery code."""
    started = signin.second_step_started()
    pending = signin.pending_second_step()
    user = signin.pending_user(pending) if pending is not None else None
    if pending is None or user is None:
        signin.drop_second_step()
        if started:
            flash("The time to enter the code ran out. Please sign in again.", "info")
        return redirect(url_for("auth.login"), code=303)
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        used = twofactor.check_second_factor(user, form.code.data)
        if used is not None:
            signin.drop_second_step()
            signin.sign_in(user, remember=pending.remember)
            if used is twofactor.SecondFactor.RECOVERY:
                left = twofactor.recovery_codes_left(user)
                flash(
                    f"You signed in with a recovery code; it won't work again. {left} "
                    f"recovery code{'s' if left != 1 else ''} left: make new ones under "
                    "Account if you are running out.",
                    "info",
                )
            return redirect(pending.next_url or url_for("browse.index"), code=303)
        services.record_failed_sign_in(user.email, "wrong two-factor code")
        form.code.errors.append(
            "That code isn't right, or was already used. Enter the code your app shows "
            "now, or one of your recovery codes."
        )
        status = 422
    elif form.is_submitted():
        status = 422
    return render_template(
        "auth/two_factor_login.html", form=form, minutes=signin.pending_minutes()
    ), status


# --- the Account page's two-factor page -------------------------------------------------


def _setup_secret(user: User) -> str:
    """The secret being set up on this browser (a new one if there is none yet)."""
    kept = session.get(_SETUP)
    if isinstance(kept, dict) and kept.get("user") == user.id and kept.get("secret"):
        return str(kept["secret"])
    secret = twofactor.new_secret()
    session[_SETUP] = {"user": user.id, "secret": secret}
    return secret


def _page(status: int = 200, **forms: Any) -> ResponseReturnValue:
    user = _reader()
    context: dict[str, Any] = {
        "required": user.is_admin and twofactor.admin_two_factor_required(),
    }
    if user.two_factor_enabled:
        context |= {
            "codes_left": twofactor.recovery_codes_left(user),
            "disable_form": forms.get("disable_form") or DisableForm(formdata=None),
            "regenerate_form": forms.get("regenerate_form") or RegenerateForm(formdata=None),
        }
    else:
        secret = _setup_secret(user)
        context |= {
            "secret": twofactor.grouped(secret),
            "qr": twofactor.qr_svg(twofactor.provisioning_uri(user.email, secret)),
            "enable_form": forms.get("enable_form") or EnableForm(formdata=None),
        }
    return render_template("auth/two_factor.html", **context), status


@login_required
def two_factor() -> ResponseReturnValue:
    """Set up two-factor sign-in (QR code, secret, confirm with a code), or manage it."""
    return _page()


@resends_expired_form
@login_required
def two_factor_enable() -> ResponseReturnValue:
    """Turn two-factor sign-in on once a code from the reader's app is right."""
    user = _reader()
    if user.two_factor_enabled:
        return redirect(url_for("auth.two_factor"), code=303)
    form = EnableForm()
    if form.validate_on_submit():
        try:
            codes = twofactor.enable(user, _setup_secret(user), form.code.data)
        except twofactor.TwoFactorError as error:
            form.code.errors.append(str(error))
        else:
            session.pop(_SETUP, None)
            session[_NEW_CODES] = codes
            flash("Two-factor sign-in is on.", "success")
            return redirect(url_for("auth.recovery_codes"), code=303)
    return _page(422, enable_form=form)


@login_required
def recovery_codes() -> ResponseReturnValue:
    """The recovery codes just made, shown this once."""
    codes = session.pop(_NEW_CODES, None)
    if not isinstance(codes, list) or not codes:
        flash(
            "Recovery codes are shown only once, when they are made. "
            "Make new ones here if you lost yours.",
            "info",
        )
        return redirect(url_for("auth.two_factor"), code=303)
    return render_template("auth/recovery_codes.html", codes=codes)


@resends_expired_form
@login_required
@limiter.limit(_login_limit, deduct_when=throttle.failed)
def regenerate_recovery_codes() -> ResponseReturnValue:
    """New recovery codes (the password or a code first); the old ones stop working."""
    form = RegenerateForm()
    if form.validate_on_submit():
        try:
            codes = twofactor.regenerate_recovery_codes(
                _reader(), form.password.data, form.code.data
            )
        except twofactor.TwoFactorError as error:
            form.password.errors = [*form.password.errors, str(error)]
        else:
            session[_NEW_CODES] = codes
            flash("New recovery codes are ready; the old ones no longer work.", "success")
            return redirect(url_for("auth.recovery_codes"), code=303)
    if not current_user.two_factor_enabled:
        return redirect(url_for("auth.two_factor"), code=303)
    return _page(422, regenerate_form=form)


@resends_expired_form
@login_required
@limiter.limit(_login_limit, deduct_when=throttle.failed)
def two_factor_disable() -> ResponseReturnValue:
    """Turn two-factor sign-in off (the password or a code first)."""
    form = DisableForm()
    if not current_user.two_factor_enabled:
        return redirect(url_for("auth.two_factor"), code=303)
    if form.validate_on_submit():
        try:
            twofactor.disable(_reader(), form.password.data, form.code.data)
        except twofactor.TwoFactorError as error:
            form.password.errors = [*form.password.errors, str(error)]
        else:
            flash("Two-factor sign-in is off. Your password alone signs you in now.", "success")
            return redirect(url_for("auth.account"), code=303)
    return _page(422, disable_form=form)

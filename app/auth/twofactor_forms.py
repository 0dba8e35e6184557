"""Forms of two-factor sign-in and its admin setting. Flask-WTF adds the CSRF token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

from app.auth.forms import MAX_PASSWORD


class CodeForm(FlaskForm):
    """The sign-in's second step: the app's code, or a recovery code."""

    code = StringField(
        "Code",
        validators=[DataRequired("Enter the code from your app."), Length(max=40)],
    )


class EnableForm(FlaskForm):
    """Set-up: the code the app shows for the new secret."""

    code = StringField(
        "Code from your app",
        id="enable-code",
        validators=[DataRequired("Enter the 6-digit code your app shows."), Length(max=40)],
    )


class _ConfirmForm(FlaskForm):
    """The password, or a code: either proves it is the reader."""

    password: PasswordField
    code: StringField

    def validate(self, extra_validators: object = None) -> bool:
        if not super().validate(extra_validators):  # type: ignore[arg-type]
            return False
        if not (self.password.data or (self.code.data or "").strip()):
            self.password.errors = ["Enter your password, or a current code from your app."]
            return False
        return True


def _confirm_form(prefix: str) -> type[_ConfirmForm]:
    """A confirm form whose fields have ids of their own: two are on one page."""

    class Form(_ConfirmForm):
        password = PasswordField(
            "Password", id=f"{prefix}-password", validators=[Optional(), Length(max=MAX_PASSWORD)]
        )
        code = StringField(
            "or a code from your app (or a recovery code)",
            id=f"{prefix}-code",
            validators=[Optional(), Length(max=40)],
        )

    Form.__name__ = f"{prefix.title()}Form"
    return Form


DisableForm = _confirm_form("disable")
RegenerateForm = _confirm_form("regenerate")


class AdminTwoFactorForm(FlaskForm):
    """The admin page's site setting."""

    required = BooleanField("Require two-factor sign-in for admin accounts")

"""Account forms. Flask-WTF adds the CSRF token and validates on the server."""

from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Field, Form, HiddenField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

MIN_PASSWORD = 8
MAX_PASSWORD = 256


def _at_most(limit: int) -> Callable[[Form, Field], None]:
    """A length limit checked on the server only. WTForms' Length would also render
    `maxlength`, and a browser then silently cuts a pasted password short."""

    def check(form: Form, field: Field) -> None:
        if field.data and len(field.data) > limit:
            raise ValidationError(f"Use at most {limit} characters.")

    return check


def _new_password(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD, message=f"Use at least {MIN_PASSWORD} characters."),
            _at_most(MAX_PASSWORD),
        ],
    )


MAX_EMAIL = 254
_EMAIL_MESSAGE = "Enter an email address like name@example.com."


def _email_validators() -> list[Callable[[Form, Field], None]]:
    """What every form (and `dogear users create`) asks of an address."""
    return [
        DataRequired(),
        Length(max=MAX_EMAIL),
        Email(message=_EMAIL_MESSAGE, check_deliverability=False),
    ]


def email_problem(email: str) -> str | None:
    """Why `email` isn't an address the sign-up forms would take, or None."""
    form = _AddressForm(data={"email": email.strip()})
    if form.validate():
        return None
    return " ".join(form.email.errors)


def _email() -> EmailField:
    return EmailField("Email", validators=_email_validators())


class _AddressForm(Form):
    """Just the address, checked outside a request (the command line)."""

    email = EmailField("Email", validators=_email_validators())


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), _at_most(MAX_PASSWORD)])
    remember = BooleanField("Keep me signed in on this device")
    next = HiddenField()


class AccountForm(FlaskForm):
    """A new account: registration, first-run set-up."""

    email = _email()
    password = _new_password()
    confirm = PasswordField(
        "Repeat password",
        validators=[DataRequired(), EqualTo("password", "The passwords differ.")],
    )


class PasswordForm(FlaskForm):
    current = PasswordField(
        "Current password", validators=[DataRequired(), _at_most(MAX_PASSWORD)]
    )
    password = _new_password("New password")
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", "The passwords differ.")],
    )


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class ForgotForm(FlaskForm):
    """'Forgot your password?': the address to mail a reset link to."""

    email = EmailField(
        "Email",
        filters=[_strip],
        validators=_email_validators(),
    )


class ResetPasswordForm(FlaskForm):
    """A new password, set through a one-time reset link."""

    password = _new_password("New password")
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", "The passwords differ.")],
    )


class DeleteAccountForm(FlaskForm):
    """Leaving Dogear: the reader confirms by typing their own address."""

    email = EmailField(
        "Type your email address to confirm",
        validators=[DataRequired("Type your email address to confirm.")],
    )

"""Admin forms, validated on the server."""

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from app.auth.forms import AccountForm

MAX_INVITE_DAYS = 90


class CreateUserForm(AccountForm):
    is_admin = BooleanField("Admin")


class RegistrationForm(FlaskForm):
    mode = RadioField(
        "Who can create an account",
        choices=[
            SelectChoice("open", "Anyone can register"),
            SelectChoice("invite", "By invitation: admins create accounts or send invite links"),
            SelectChoice("closed", "Closed: no new readers (invite links already sent work)"),
        ],
    )


def _invite_days() -> int:
    return int(current_app.config["INVITE_DAYS"])


class InviteForm(FlaskForm):
    note = StringField(
        "Note for admins",
        validators=[Length(max=200, message="Keep the note under 200 characters.")],
        description="Who the link is for, e.g. “Ada from the book club”. Only admins see it.",
    )
    days = IntegerField(
        "Link works for (days)",
        default=_invite_days,
        validators=[
            InputRequired("Say for how many days the link works."),
            NumberRange(1, MAX_INVITE_DAYS, f"Choose 1 to {MAX_INVITE_DAYS} days."),
        ],
    )
    is_admin = BooleanField("Make them an admin")


class DeleteUserForm(FlaskForm):
    confirm_email = StringField(
        "Type the account's email address to confirm",
        validators=[DataRequired("Type the address to confirm."), Length(max=254)],
    )

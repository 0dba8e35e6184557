"""Admin forms, validated on the server."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField
from wtforms.fields.choices import SelectChoice

from app.auth.forms import AccountForm


class CreateUserForm(AccountForm):
    is_admin = BooleanField("Admin")


class RegistrationForm(FlaskForm):
    mode = RadioField(
        "Who can create an account",
        choices=[
            SelectChoice("invite", "Only admins create accounts"),
            SelectChoice("open", "Anyone can register"),
        ],
    )

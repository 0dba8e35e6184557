"""The import forms (CSRF is checked app-wide, for forms and htmx alike)."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired


class UploadForm(FlaskForm):
    class Meta:
        csrf = False

    file = FileField(
        "Export file", validators=[FileRequired("Choose the file your other app exported.")]
    )


class ConfirmForm(FlaskForm):
    """The go-ahead after the preview, with what to do about pages already listed."""

    class Meta:
        csrf = False

    existing = RadioField(
        "Pages already on your list",
        choices=[
            SelectChoice("skip", "Leave them as they are"),
            SelectChoice("update", "Update them to match the file"),
        ],
        default="skip",
        validators=[InputRequired("Choose what to do with pages already on your list.")],
        validate_choice=True,
    )

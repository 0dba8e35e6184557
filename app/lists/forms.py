"""Server-side validation of the list controls (CSRF is checked app-wide)."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, URLField, ValidationError
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from app.urls import MAX_URL_LENGTH, InvalidURL, normalize_url


class ProgressForm(FlaskForm):
    class Meta:
        csrf = False  # CSRFProtect already guards every POST, forms and htmx alike

    progress = IntegerField(
        "Progress",
        validators=[
            InputRequired("Give a progress between 0 and 100."),
            NumberRange(0, 100, "Progress goes from 0 to 100 %%."),
        ],
    )


class AddForm(FlaskForm):
    """Save a page by its address (the form, the bookmarklet and the share target)."""

    class Meta:
        csrf = False  # CSRFProtect guards the POST

    url = URLField(
        "Address",
        validators=[
            InputRequired("Enter the address of a page."),
            Length(max=MAX_URL_LENGTH, message="That address is too long."),
        ],
    )
    title = StringField(
        "Title (optional)",
        validators=[Optional(), Length(max=500, message="Keep the title under 500 characters.")],
    )

    def validate_url(self, field: StringField) -> None:
        try:
            field.data = normalize_url(field.data or "")
        except InvalidURL as error:
            raise ValidationError(str(error)) from error


class PositionForm(FlaskForm):
    """The reader view's report of how far the reader got (0–1000 of the article)."""

    class Meta:
        csrf = False  # CSRFProtect checks the token (header, or the beacon's body)

    position = IntegerField(
        "Position",
        validators=[
            InputRequired("Give a position between 0 and 1000."),
            NumberRange(0, 1000, "A position goes from 0 to 1000."),
        ],
    )

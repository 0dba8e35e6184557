"""Server-side validation of the list controls (CSRF is checked app-wide)."""

from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange


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

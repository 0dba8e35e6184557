"""Forms of the sources page, validated on the server (CSRFProtect guards every POST)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectMultipleField, StringField, URLField
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.models import Topic
from app.urls import MAX_URL_LENGTH


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SourceForm(FlaskForm):
    """Add a source by its address."""

    class Meta:
        csrf = False  # CSRFProtect checks the token, forms and htmx alike

    url = URLField(
        "Address",
        validators=[
            InputRequired("Enter the address of a feed, or of a page that names one."),
            Length(max=MAX_URL_LENGTH, message="That address is too long."),
        ],
    )
    name = StringField(
        "Name (optional)",
        validators=[Optional(), Length(max=200, message="Keep the name under 200 characters.")],
    )
    topics = CheckboxesField("Topics for its posts", coerce=int)
    fetch_full_articles = BooleanField("Fetch each entry’s full article")

    def with_topics(self, topics: list[Topic]) -> SourceForm:
        self.topics.choices = [(topic.id, topic.name) for topic in topics]
        return self


class EditSourceForm(SourceForm):
    """Change a source: its name is required, its address only for feeds and listings
    read from the web."""

    url = URLField(
        "Address",
        validators=[
            Optional(),
            Length(max=MAX_URL_LENGTH, message="That address is too long."),
        ],
    )
    name = StringField(
        "Name",
        validators=[
            InputRequired("Give the source a name."),
            Length(max=200, message="Keep the name under 200 characters."),
        ],
    )


class OpmlForm(FlaskForm):
    """Upload an OPML file of feeds."""

    class Meta:
        csrf = False

    file = FileField("OPML file", validators=[FileRequired("Choose an OPML file.")])

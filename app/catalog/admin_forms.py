"""The catalog admin's forms and the posts list's filter state, validated on the server."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import DateField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.catalog.topics import compile_keywords, keyword_lines
from app.pagination import page_number
from app.urls import InvalidURL, normalize_url

CONTENT_CHOICES = {"yes": "With content", "no": "Without content"}
MAX_QUERY = 200
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_KEYWORDS = 200
MAX_KEYWORD_LENGTH = 300


@dataclass(frozen=True)
class PostFilters:
    """What the posts list shows, as it round-trips through the URL. `source` and
    `topic` also take "none" (posts without a source, without topics)."""

    q: str = ""
    source: str = ""
    topic: str = ""
    content: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> PostFilters:
        source = args.get("source", "").strip()
        if source != "none" and not source.isdigit():
            source = ""
        topic = args.get("topic", "").strip()[:40]
        content = args.get("content", "")
        return cls(
            q=" ".join(args.get("q", "").split())[:MAX_QUERY],
            source=source[:19],
            topic=topic if topic == "none" or SLUG.match(topic) else "",
            content=content if content in CONTENT_CHOICES else "",
            page=page_number(args.get("page")),
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.source or self.topic or self.content)

    def to_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "q": self.q,
            "source": self.source,
            "topic": self.topic,
            "content": self.content,
        }
        if self.page > 1:
            args["page"] = self.page
        return {key: value for key, value in args.items() if value}

    def with_changes(self, **changes: Any) -> PostFilters:
        return replace(self, **{"page": 1, **changes})


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _one_line(value: str | None) -> str | None:
    return " ".join(value.split()) if isinstance(value, str) else value


class DateInput(DateField):
    """A date field that says what it wants when it can't read the date."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            raise ValueError("Enter a date like 2026-05-01.") from error


class MultiCheckboxField(SelectMultipleField):
    """Several choices as checkboxes (the topics of a post)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PostForm(FlaskForm):
    """A catalog post's editable fields. The URL is normalised like readers' saves;
    whether another post has it is checked by the service, inside its transaction."""

    title = StringField(
        "Title",
        validators=[DataRequired("A post needs a title."), Length(max=500)],
        filters=[_one_line],
    )
    summary = TextAreaField(
        "Summary", validators=[Length(max=10_000)], filters=[_strip], render_kw={"rows": 5}
    )
    author = StringField("Author", validators=[Length(max=200)], filters=[_one_line])
    published_on = DateInput("Publication date", validators=[Optional()], format="%Y-%m-%d")
    url = StringField(
        "Address (URL)",
        validators=[Length(max=2048)],
        filters=[_strip],
        render_kw={"inputmode": "url", "spellcheck": "false", "autocomplete": "off"},
    )
    topics = MultiCheckboxField("Topics", coerce=int, validate_choice=True)

    normalized_url: str | None = None

    def validate_url(self, field: StringField) -> None:
        if not field.data:
            self.normalized_url = None
            return
        try:
            self.normalized_url = normalize_url(field.data)
        except InvalidURL as error:
            raise ValidationError(str(error)) from error

    def validate_published_on(self, field: DateField) -> None:
        if field.data is not None and not 1900 <= field.data.year <= 2200:
            raise ValidationError("Enter a year between 1900 and 2200.")


class TopicForm(FlaskForm):
    """A topic: its name, its slug (in URLs and `topic:` searches) and its keywords."""

    name = StringField(
        "Name",
        validators=[DataRequired("A topic needs a name."), Length(max=60)],
        filters=[_one_line],
    )
    slug = StringField(
        "Slug",
        validators=[DataRequired("A topic needs a slug."), Length(max=40)],
        filters=[lambda value: value.strip().lower() if isinstance(value, str) else value],
        render_kw={"spellcheck": "false", "autocomplete": "off", "autocapitalize": "none"},
    )
    keywords = TextAreaField(
        "Keywords",
        filters=[lambda value: "\n".join(keyword_lines(value)) if value else ""],
        render_kw={"rows": 10, "spellcheck": "false", "autocapitalize": "none"},
    )

    def validate_slug(self, field: StringField) -> None:
        if not SLUG.match(field.data or ""):
            raise ValidationError(
                "Use lower-case letters a–z, digits and single hyphens between them "
                "(like “web-dev”)."
            )

    def validate_keywords(self, field: TextAreaField) -> None:
        error = keywords_error(field.data or "")
        if error:
            raise ValidationError(error)


def keywords_error(text: str) -> str | None:
    """Why a topic's keywords can't be used, naming the first bad line; None if fine.

    Each line is a regular expression, matched case-insensitively as a whole word, so
    it must compile on its own and together with the others, and must never match
    nothing at all (that would put the topic on every post).
    """
    lines = keyword_lines(text)
    if len(lines) > MAX_KEYWORDS:
        return f"Keep it to {MAX_KEYWORDS} keywords or fewer (there are {len(lines)})."
    for number, line in enumerate(lines, start=1):
        where = f"Line {number} (“{_shorten(line)}”)"
        if len(line) > MAX_KEYWORD_LENGTH:
            return f"{where} is longer than {MAX_KEYWORD_LENGTH} characters."
        try:
            re.compile(line, re.IGNORECASE)
        except (re.error, RecursionError, OverflowError) as error:
            return f"{where} is not a valid pattern: {_regex_reason(error, position=True)}."
        try:  # as the tagger wraps it; e.g. a global flag like (?i) only fails here
            pattern = re.compile(f"(?:{line})", re.IGNORECASE)
        except (re.error, RecursionError, OverflowError) as error:
            return f"{where} can't be used as a keyword: {_regex_reason(error)}."
        if pattern.fullmatch("") is not None:
            return f"{where} matches empty text, so it would put the topic on every post."
    try:
        compile_keywords(tuple(lines))
    except (re.error, RecursionError, OverflowError) as error:
        return f"These keywords don't work together: {_regex_reason(error)}."
    return None


def _regex_reason(error: BaseException, *, position: bool = False) -> str:
    """The regex error in words, with the character of the line where it is."""
    if isinstance(error, re.error):
        reason = error.msg
        if position and error.pos is not None:
            reason += f" at character {error.pos + 1}"
        return reason
    return "it is too complex"


def _shorten(line: str, limit: int = 40) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"

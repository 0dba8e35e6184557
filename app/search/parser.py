"""The search box's query language, parsed into a structure no engine has seen yet.

    asyncio "event loop" -django pyth* flask OR fastapi
    topic:python author:"Jane Doe" source:weekly year:2026 length:short
    before:2026-05-01 after:2025 min:5 max:10 is:saved is:reading is:done is:unread

- Words match stemmed and accent-insensitive ("running" finds "run", "cafe" finds
  "café"); all of them must match. `"a phrase"` matches those words in a row.
- `-word`, `-"a phrase"` and `-field:value` exclude; `NOT word` is the same as `-word`.
- `word*` matches words starting with it (at least 2 letters).
- `a OR b` matches either; OR binds tighter than the implicit AND, so
  `flask OR django tutorial` means (flask or django) and tutorial.
- `before:D` is strictly before D; `after:D` is on or after D. D is `2026-05-01`,
  `2026-05` or `2026`.
- `min:`/`max:` bound the reading minutes (inclusive); `length:` is short (< 5 min),
  medium (5-10) or long (> 10).
- `is:` filters by the signed-in reader's own list: saved (up next), reading, done,
  archived, unread (not started yet: no entry, or one at 0 % that isn't done). For a
  reader who isn't signed in, `is:` filters are ignored and the page says so.
- Several values of one field: topics must all match; for the other fields any of
  the values may (`year:2025 year:2026` is either year).

Never raises on user input: unknown fields (`foo:bar`) are words, malformed values
and stray operators are dropped, each with a note the page can show. The input is
cut at MAX_LENGTH characters and MAX_TERMS terms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date

MAX_LENGTH = 1000
MAX_TERMS = 24
MAX_FILTERS = 16
MIN_PREFIX = 2

TEXT_FIELDS = ("topic", "author", "source")
FIELDS = (*TEXT_FIELDS, "year", "before", "after", "min", "max", "length", "is")
STATES = ("saved", "reading", "done", "archived", "unread")
LENGTHS = ("short", "medium", "long")
# Range filters can't be negated: "-before:2020" would just be "after:2020".
NEGATABLE = (*TEXT_FIELDS, "year", "length", "is")

_FIELD_RE = re.compile(r"([A-Za-z]+):(.*)", re.DOTALL)
_DATE_RE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_WORD_CHAR = re.compile(r"\w")


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase, as typed (minus quotes, `-` and a trailing `*`)."""

    text: str
    phrase: bool = False
    prefix: bool = False

    def __str__(self) -> str:
        body = f'"{self.text}"' if self.phrase else self.text
        return body + ("*" if self.prefix else "")


@dataclass(frozen=True)
class Filter:
    """`field:value`. `value` is normalized: a str, an int (year, min, max) or a date."""

    field: str
    value: str | int | date
    negated: bool = False

    @property
    def value_text(self) -> str:
        if isinstance(self.value, date):
            return self.value.isoformat()
        return str(self.value)

    def __str__(self) -> str:
        text = self.value_text
        if _needs_quotes(text):
            text = f'"{text}"'
        return f"{'-' if self.negated else ''}{self.field}:{text}"


@dataclass(frozen=True)
class Query:
    """What to look for. Every group must match (a group matches when any of its
    terms does); no excluded term may match; every filter must hold."""

    groups: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    filters: tuple[Filter, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def terms(self) -> tuple[Term, ...]:
        """The positive terms in order (for highlighting and exact-title matching)."""
        return tuple(term for group in self.groups for term in group)

    @property
    def is_empty(self) -> bool:
        """Nothing to search for (excluded terms alone still make a query)."""
        return not (self.groups or self.excluded or self.filters)

    def filters_for(self, name: str, *, negated: bool = False) -> list[Filter]:
        return [f for f in self.filters if f.field == name and f.negated == negated]

    def has_filter(self, name: str, value: str | int | date) -> bool:
        return any(f.field == name and f.value == value and not f.negated for f in self.filters)

    def with_filter(self, name: str, value: str | int | date) -> Query:
        """This query narrowed by one more filter (no-op when it is there already)."""
        if self.has_filter(name, value):
            return self
        return replace(self, filters=(*self.filters, Filter(name, value)))

    def without_filter(self, name: str, value: str | int | date) -> Query:
        kept = tuple(f for f in self.filters if not (f.field == name and f.value == value))
        return replace(self, filters=kept)

    def without_states(self) -> Query:
        """The query minus `is:` filters (for readers who aren't signed in)."""
        return replace(self, filters=tuple(f for f in self.filters if f.field != "is"))

    def __str__(self) -> str:
        """The canonical text of the query; parse(str(q)) == q."""
        parts = [" OR ".join(str(t) for t in group) for group in self.groups]
        parts += [f"-{t}" for t in self.excluded]
        parts += [str(f) for f in self.filters]
        return " ".join(parts)


def _needs_quotes(text: str) -> bool:
    return (
        not text
        or any(c.isspace() or c in '"*' for c in text)
        or text.startswith("-")
        or text in ("OR", "AND", "NOT")
        or bool(_FIELD_RE.fullmatch(text))
    )


def has_word_chars(text: str) -> bool:
    """True when the text holds something the search index would see as a word."""
    return bool(_WORD_CHAR.search(text.replace("_", " ")))


@dataclass
class _Token:
    text: str
    quoted: bool
    negated: bool = False
    prefix: bool = False
    field: str | None = None


def _scan(text: str) -> list[_Token]:
    """Split the input into tokens: words, "phrases" and field:values, each maybe
    negated. An unclosed quote runs to the end of the input."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        while i < n and text[i] in "-+":
            negated = negated or text[i] == "-"
            i += 1
        if i >= n or text[i].isspace():
            continue  # a lone "-" or "+"
        field_name = None
        if text[i] == '"':
            value, i = _read_quoted(text, i)
            quoted = True
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] != '"':
                i += 1
            value, quoted = text[start:i], False
            match = _FIELD_RE.fullmatch(value)
            if match and match.group(1).lower() in FIELDS:
                field_name = match.group(1).lower()
                value = match.group(2)
                if not value and i < n and text[i] == '"':
                    value, i = _read_quoted(text, i)
                    quoted = True
        prefix = False
        if i < n and text[i] == "*" and quoted:  # "a phrase"*
            prefix = True
            i += 1
        if not quoted and field_name is None:
            stripped = value.rstrip("*")
            prefix = len(stripped) < len(value)
            value = stripped
        tokens.append(_Token(value, quoted, negated, prefix, field_name))
    return tokens


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """The text between the quote at i and the next one (or the end); the index after."""
    end = text.find('"', i + 1)
    if end == -1:
        return text[i + 1 :], len(text)
    return text[i + 1 : end], end + 1


_LAST_WORD = re.compile(r"(?:^|\s)-?(\w+)$")


def as_typed(text: str) -> str:
    """The query with its last word, still being typed, made a prefix (`kube` →
    `kube*`), for search as you type. Left alone: a query ending in a space, a quote,
    a `*`, a field (`topic:pyth`), an operator or a word shorter than MIN_PREFIX."""
    if text.count('"') % 2:
        return text
    match = _LAST_WORD.search(text)
    if not match:
        return text
    word = match.group(1)
    if len(word) < MIN_PREFIX or word in ("OR", "NOT", "AND"):
        return text
    return text + "*"


def parse(text: str | None) -> Query:
    """Parse the search box. Never raises; see the module docstring for the syntax."""
    notes: list[str] = []
    text = text or ""
    if len(text) > MAX_LENGTH:
        text = text[:MAX_LENGTH]
        notes.append(f"Only the first {MAX_LENGTH:,} characters were searched.")
    # Control characters and lone surrogates are spaces: NUL would end the engine's
    # string early, a surrogate can't even be encoded.
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    filters: list[Filter] = []
    after_term = False  # the previous token was a positive term (OR may join it)
    join_next = False  # ... and then came OR
    negate_next = False  # the previous token was NOT
    count = 0
    dropped = False
    for token in _scan(text):
        if not token.quoted and token.field is None and not token.negated and not token.prefix:
            if token.text == "OR":
                join_next, after_term = after_term, False
                continue
            if token.text in ("AND", "NOT"):
                negate_next = token.text == "NOT"
                join_next = after_term = False
                continue
        negated = token.negated or negate_next
        negate_next = False
        if token.field is not None:
            join_next = after_term = False
            parsed = _parse_filter(token.field, token.text.strip(), negated, notes)
            if parsed is not None and parsed not in filters:
                if len(filters) >= MAX_FILTERS:
                    dropped = True
                else:
                    filters.append(parsed)
            continue
        term = _make_term(token, notes)
        if term is None:
            continue
        if count >= MAX_TERMS:
            dropped = True
            continue
        count += 1
        if negated:
            excluded.append(term)
            join_next = after_term = False
        elif join_next:
            groups[-1].append(term)
            join_next, after_term = False, True
        else:
            groups.append([term])
            after_term = True
    if dropped:
        notes.append(f"Only the first {MAX_TERMS} words and {MAX_FILTERS} filters were used.")
    return Query(
        groups=tuple(dict.fromkeys(tuple(dict.fromkeys(g)) for g in groups)),
        excluded=tuple(dict.fromkeys(excluded)),
        filters=tuple(filters),
        notes=tuple(dict.fromkeys(notes)),
    )


def _make_term(token: _Token, notes: list[str]) -> Term | None:
    text = " ".join(token.text.split())
    if not has_word_chars(text):
        return None
    prefix = token.prefix
    if prefix:
        last = re.findall(r"[^\W_]+", text)[-1]
        if len(last) < MIN_PREFIX:
            notes.append(f"“{text}*” is too short to search by prefix; searched “{text}”.")
            prefix = False
    # A word that would read differently unquoted ("foo:bar", "a*b") is kept as a
    # phrase, so the canonical text of a query parses back to the same query.
    return Term(text=text, phrase=token.quoted or _needs_quotes(text), prefix=prefix)


def _parse_filter(name: str, raw: str, negated: bool, notes: list[str]) -> Filter | None:
    """A filter with its value normalized, or None (with a note) if the value is bad."""
    if negated and name not in NEGATABLE:
        notes.append(f"“-{name}:” isn't supported; use the opposite filter instead.")
        return None
    if not raw:
        notes.append(f"“{name}:” needs a value, like {_EXAMPLES[name]}.")
        return None
    value: str | int | date | None
    if name in TEXT_FIELDS:
        text = " ".join(raw.split())
        value = text.lower() if name == "topic" else text
        value = value if has_word_chars(text) else None
    elif name == "year":
        value = int(raw) if raw.isdigit() and len(raw) == 4 else None
    elif name in ("min", "max"):
        value = int(raw) if raw.isdigit() and len(raw) <= 4 else None
    elif name in ("before", "after"):
        value = _parse_date(raw)
    elif name == "length":
        value = raw.lower() if raw.lower() in LENGTHS else None
    else:  # is
        value = raw.lower() if raw.lower() in STATES else None
    if value is None:
        notes.append(f"Ignored “{name}:{raw}”: use {_EXAMPLES[name]}.")
        return None
    return Filter(name, value, negated)


def _parse_date(raw: str) -> date | None:
    """`2026-05-01`, `2026-05` or `2026` (the first day of that month or year)."""
    match = _DATE_RE.fullmatch(raw)
    if not match:
        return None
    year, month, day = match.group(1), match.group(2) or "1", match.group(3) or "1"
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


_EXAMPLES = {
    "topic": "topic:python",
    "author": 'author:"Jane Doe"',
    "source": "source:weekly",
    "year": "year:2026",
    "before": "before:2026-05-01",
    "after": "after:2026-05-01",
    "min": "min:5 (minutes)",
    "max": "max:10 (minutes)",
    "length": "length:short, length:medium or length:long",
    "is": "is:saved, is:reading, is:done, is:archived or is:unread",
}

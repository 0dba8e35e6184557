"""Facets: counts per topic, author, year and length for a set of results.

Engines hand over plain rows; this module counts them and turns the counts into
values a template can link (each value knows the query that narrows to it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.search.parser import Query

LENGTH_LABELS = {
    "short": "Short (< 5 min)",
    "medium": "Medium (5–10 min)",
    "long": "Long (> 10 min)",
}
MAX_TOPICS = 8
MAX_AUTHORS = 6
MAX_YEARS = 8


def length_bucket(minutes: int | None) -> str:
    minutes = minutes or 0
    if minutes < 5:
        return "short"
    return "medium" if minutes <= 10 else "long"


@dataclass(frozen=True)
class FacetValue:
    """One clickable count: `field:value` narrows the query to it."""

    field: str
    value: str | int
    label: str
    count: int
    active: bool = False


@dataclass(frozen=True)
class Facets:
    topics: list[FacetValue] = field(default_factory=list)
    authors: list[FacetValue] = field(default_factory=list)
    years: list[FacetValue] = field(default_factory=list)
    lengths: list[FacetValue] = field(default_factory=list)
    # When the results outnumber what was counted: how many were counted.
    sample: int | None = None

    @property
    def groups(self) -> list[tuple[str, list[FacetValue]]]:
        groups = [
            ("Topic", self.topics),
            ("Author", self.authors),
            ("Year", self.years),
            ("Length", self.lengths),
        ]
        return [(title, values) for title, values in groups if values]


@dataclass
class FacetCounter:
    """Collects rows of the counted results, then builds the Facets."""

    query: Query
    topics: Counter[str] = field(default_factory=Counter)
    topic_names: dict[str, str] = field(default_factory=dict)
    authors: Counter[str] = field(default_factory=Counter)
    years: Counter[int] = field(default_factory=Counter)
    lengths: Counter[str] = field(default_factory=Counter)

    def add_post(self, author: str, published_on: date | int | None, minutes: int | None) -> None:
        """Count one post; `published_on` may be a date or a yyyymmdd number."""
        if author:
            self.authors[author] += 1
        if published_on:
            year = published_on.year if isinstance(published_on, date) else published_on // 10000
            self.years[year] += 1
        self.lengths[length_bucket(minutes)] += 1

    def add_counts(self, rows: Iterable[Sequence[Any]]) -> None:
        """Counts aggregated by the database: (field, value, label, count) rows."""
        counters: dict[str, Counter] = {
            "author": self.authors,
            "year": self.years,
            "length": self.lengths,
            "topic": self.topics,
        }
        for name, value, label, count in rows:
            counters[name][value] += count
            if name == "topic":
                self.topic_names[value] = label

    def add_topics(self, rows: Iterable[tuple[str, str, int]]) -> None:
        for slug, name, count in rows:
            self.topics[slug] += count
            self.topic_names[slug] = name

    def build(self, sample: int | None) -> Facets:
        q = self.query
        topics = [
            FacetValue("topic", slug, self.topic_names[slug], n, q.has_filter("topic", slug))
            for slug, n in _top(self.topics, MAX_TOPICS)
        ]
        authors = [
            FacetValue("author", name, name, n, q.has_filter("author", name))
            for name, n in _top(self.authors, MAX_AUTHORS)
        ]
        years = sorted(_top(self.years, MAX_YEARS), reverse=True)
        return Facets(
            topics=topics,
            authors=authors,
            years=[FacetValue("year", y, str(y), n, q.has_filter("year", y)) for y, n in years],
            lengths=[
                FacetValue("length", key, label, self.lengths[key], q.has_filter("length", key))
                for key, label in LENGTH_LABELS.items()
                if self.lengths[key]
            ],
            sample=sample,
        )


def _top(counter: Counter, n: int) -> list[tuple]:
    """The n most common values, ties by value, so the order is stable."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:n]

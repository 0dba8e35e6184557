"""The keyword vocabulary that puts topics on posts at import.

Rules, in short:

- Each topic has regex fragments matched case-insensitively as whole words: a fragment
  never matches inside a longer word ("rust" not in "trust", "sql" not in "PostgreSQL").
- "Go" is the exception: only the capitalised word "Go" counts (plus "Golang",
  "goroutine", "gofmt"), and not in verb phrases like "Go ahead" or "go-to".
- A match in the title or the summary is enough. The full content of a post mentions
  many things in passing, so a topic found only there needs several mentions.
- Some topics bring others along (IMPLIED): Flask, Django, FastAPI, asyncio and Celery
  posts are Python posts; PostgreSQL and SQLite posts are database posts.
- asyncio means *Python's* async: Rust's Tokio or async JavaScript don't get it unless
  they talk about asyncio itself.
- pytest is a testing keyword (and implies Python); uv, Ruff, pip, Poetry, mypy,
  pre-commit and git are tooling.

Where the keywords live: VOCABULARY below is the built-in vocabulary. The first import
(or the first change an admin makes to topics) copies it into the database
(`Topic.keywords`, one pattern per line) and from then on the database is the
vocabulary: admins edit keywords, add and rename topics. Until then the built-in one
is used as it is, so a new or test database tags exactly as before.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from flask import has_app_context
from sqlalchemy import select

from app.extensions import db
from app.models import Setting, Topic

# slug -> (display name, keyword regex fragments)
VOCABULARY: dict[str, tuple[str, tuple[str, ...]]] = {
    "python": (
        "Python",
        (
            r"python3?",
            r"pythonic",
            r"pythonistas?",
            r"cpython",
            r"pypy",
            r"pypi",
            r"pytest",
            r"pydantic",
            r"sqlalchemy",
            r"mypy",
            r"py-spy",
            r"pyenv",
        ),
    ),
    "asyncio": (
        "asyncio",
        (
            r"asyncio",
            r"async\s*/\s*await",
            r"anyio",
            r"taskgroups?",
            r"uvloop",
            r"aio(?:http|sqlite|mysql|pg|files|redis)",
            r"asyncpg",
            r"async_to_sync",
            r"sync_to_async",
            r"async\s+python",
            r"python\s+async",
            r"async\s+(?:django|flask|sqlalchemy|orm|views?)",
        ),
    ),
    "rust": (
        "Rust",
        (
            r"rust",
            r"rustc",
            r"rustup",
            r"rustaceans?",
            r"tokio",
            r"axum",
            r"actix(?:-web)?",
            r"serde",
            r"crates\.io",
        ),
    ),
    "go": (
        "Go",
        (
            # Case-sensitive "Go", but not "Go ahead", "Go back"… nor "Go-to".
            r"(?-i:Go)(?!-to(?!\w))"
            r"(?!\s+(?:ahead|away|back|beyond|deeper|forth|further|live|viral|wrong)(?!\w))",
            r"golang",
            r"goroutines?",
            r"gofmt",
        ),
    ),
    "javascript": (
        "JavaScript",
        (
            r"javascript",
            r"typescript",
            r"ecmascript",
            r"es20\d\d",
            r"node\.?js",
            r"deno",
            r"npm",
            r"webpack",
            r"esbuild",
            r"(?-i:React)",
            r"(?-i:Vue)",
            r"(?-i:Angular)",
            r"svelte",
        ),
    ),
    "flask": ("Flask", (r"flask", r"werkzeug")),
    "fastapi": ("FastAPI", (r"fastapi", r"starlette")),
    "django": ("Django", (r"django", r"drf", r"django rest framework")),
    "htmx": ("htmx", (r"htmx", r"hypermedia")),
    "celery": ("Celery", (r"celery",)),
    "postgres": (
        "PostgreSQL",
        (
            r"postgres",
            r"postgresql",
            r"psycopg\d?",
            r"asyncpg",
            r"pgbouncer",
            r"psql",
            r"pg_dump",
            r"autovacuum",
        ),
    ),
    "sqlite": (
        "SQLite",
        (r"sqlite3?", r"aiosqlite", r"litestream", r"libsql", r"turso", r"fts5"),
    ),
    "redis": ("Redis", (r"redis", r"valkey")),
    "databases": (
        "Databases",
        (
            r"sql",
            r"orms?",
            r"mysql",
            r"mariadb",
            r"sqlalchemy",
            r"alembic",
            r"sqlx",
            r"mongodb",
            r"duckdb",
            r"database (?:drivers?|schemas?|migrations?|indexes|design)",
            r"query plans?",
            r"explain analyze",
        ),
    ),
    "docker": (
        "Docker",
        (
            r"docker",
            r"dockerfiles?",
            r"docker-compose",
            r"podman",
            r"container images?",
            r"multi-stage builds?",
            r"buildkit",
        ),
    ),
    "kubernetes": (
        "Kubernetes",
        (
            r"kubernetes",
            r"k8s",
            r"kubectl",
            r"kubelet",
            r"helm charts?",
            r"readiness probes?",
            r"liveness probes?",
        ),
    ),
    "testing": (
        "Testing",
        (
            r"testing",
            r"tests",
            r"unit[- ]tests?",
            r"integration tests?",
            r"test (?:suites?|client|cases?|coverage)",
            r"pytest",
            r"unittest",
            r"tdd",
            r"property[- ]based",
            r"mock(?:s|ing)?",
            r"fixtures?",
            r"playwright",
            r"selenium",
            r"end[- ]to[- ]end",
        ),
    ),
    "security": (
        "Security",
        (
            r"security",
            r"secure",
            r"insecure",
            r"owasp",
            r"csrf",
            r"xss",
            r"sql injection",
            r"vulnerabilit(?:y|ies)",
            r"cves?",
            r"secrets",
            r"secret managers?",
            r"password hashing",
            r"argon2",
            r"bcrypt",
            r"scrypt",
            r"encryption",
            r"threat model(?:s|ing)?",
        ),
    ),
    "performance": (
        "Performance",
        (
            r"performance",
            r"profil(?:er|ers|ing)",
            r"flame ?graphs?",
            r"benchmarks?",
            r"benchmark(?:ed|ing)",
            r"latency",
            r"throughput",
            r"n\+1",
            r"slow (?:quer(?:y|ies)|pages?|endpoints?)",
            r"speed(?:ing)? up",
            r"memory leaks?",
        ),
    ),
    "tooling": (
        "Tooling",
        (
            r"tooling",
            r"toolchains?",
            r"uv",
            r"ruff",
            r"pip",
            r"pipx",
            r"poetry",
            r"pdm",
            r"pre-commit",
            r"mypy",
            r"pyenv",
            r"venv",
            r"virtualenv",
            r"flake8",
            r"isort",
            r"pyupgrade",
            r"linters?",
            r"linting",
            r"formatters?",
            r"type checkers?",
            r"lockfiles?",
            r"requirements\.txt",
            r"packaging",
            r"git",
        ),
    ),
}

# A post with the key topic also gets these.
IMPLIED: dict[str, tuple[str, ...]] = {
    "flask": ("python",),
    "django": ("python",),
    "fastapi": ("python",),
    "asyncio": ("python",),
    "celery": ("python",),
    "postgres": ("databases",),
    "sqlite": ("databases",),
}

# A topic found only in a post's content needs this many mentions there.
CONTENT_MIN_MENTIONS = 3

# The setting that says the database holds the vocabulary (see `seed_vocabulary`).
SEEDED_KEY = "topics.vocabulary_seeded"

_TAG = re.compile(r"<[^>]*>")


def keyword_lines(text: str) -> list[str]:
    """The keyword patterns in a topic's `keywords` text: one per non-blank line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@lru_cache(maxsize=512)
def compile_keywords(fragments: tuple[str, ...]) -> re.Pattern[str] | None:
    """One topic's fragments as the tagger matches them: case-insensitive, whole words.
    None for no fragments (a topic assigned by hand only). Raises `re.error`."""
    if not fragments:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(fragments) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Vocabulary:
    """The topics the tagger knows: slug -> pattern (topics without keywords have no
    pattern, but implied topics can still land on them)."""

    patterns: dict[str, re.Pattern[str]]
    slugs: frozenset[str]

    @classmethod
    def from_keywords(cls, keywords: Iterable[tuple[str, Iterable[str]]]) -> Vocabulary:
        patterns: dict[str, re.Pattern[str]] = {}
        slugs: set[str] = set()
        for slug, fragments in keywords:
            slugs.add(slug)
            pattern = compile_keywords(tuple(fragments))
            if pattern is not None:
                patterns[slug] = pattern
        return cls(patterns=patterns, slugs=frozenset(slugs))


BUILTIN = Vocabulary.from_keywords(
    (slug, fragments) for slug, (_name, fragments) in VOCABULARY.items()
)


def vocabulary_seeded() -> bool:
    """Whether the database holds the vocabulary yet."""
    return db.session.get(Setting, SEEDED_KEY) is not None


def load_vocabulary() -> Vocabulary:
    """The vocabulary in use: the database's once seeded, else the built-in one (also
    outside an app context). One small query; compiled patterns are cached."""
    if not has_app_context() or not vocabulary_seeded():
        return BUILTIN
    rows = db.session.execute(select(Topic.slug, Topic.keywords)).all()
    patterns: dict[str, re.Pattern[str]] = {}
    for slug, keywords in rows:
        try:
            pattern = compile_keywords(tuple(keyword_lines(keywords)))
        except re.error:  # admins' input is checked when saved; never stop an import
            continue
        if pattern is not None:
            patterns[slug] = pattern
    return Vocabulary(patterns=patterns, slugs=frozenset(slug for slug, _ in rows))


def builtin_keywords(slug: str) -> str:
    """The built-in keywords of a vocabulary topic, one per line ("" for others)."""
    return "\n".join(VOCABULARY[slug][1]) if slug in VOCABULARY else ""


def seed_vocabulary() -> bool:
    """Copy the built-in vocabulary into the database, once: create its missing topics
    and fill in the keywords of those that have none. Call inside a write transaction.
    True when it seeded now; afterwards admins' changes (a merged-away or emptied
    topic) are never undone by it."""
    if vocabulary_seeded():
        return False
    existing = {topic.slug: topic for topic in db.session.scalars(select(Topic))}
    for slug, (name, fragments) in VOCABULARY.items():
        topic = existing.get(slug)
        if topic is None:
            db.session.add(Topic(slug=slug, name=name, keywords="\n".join(fragments)))
        elif not keyword_lines(topic.keywords):
            topic.keywords = "\n".join(fragments)
    db.session.add(Setting(key=SEEDED_KEY, value="1"))
    db.session.flush()
    return True


def assign_topics(
    title: str, summary: str, content: str = "", vocabulary: Vocabulary | None = None
) -> list[str]:
    """The sorted slugs of the topics a post is about. `content` may be HTML.

    `vocabulary` defaults to the one in use (`load_vocabulary()`); pass it when tagging
    many posts so it is read once.
    """
    vocabulary = vocabulary or load_vocabulary()
    text = f"{title}\n{summary}"
    body = html.unescape(_TAG.sub(" ", content)) if content else ""
    found = {
        slug
        for slug, pattern in vocabulary.patterns.items()
        if pattern.search(text) or (body and len(pattern.findall(body)) >= CONTENT_MIN_MENTIONS)
    }
    for slug in list(found):
        found.update(s for s in IMPLIED.get(slug, ()) if s in vocabulary.slugs)
    return sorted(found)

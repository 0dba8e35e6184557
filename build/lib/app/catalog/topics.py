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
"""

from __future__ import annotations

import html
import re

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

_PATTERNS: dict[str, re.Pattern[str]] = {
    slug: re.compile(r"(?<!\w)(?:" + "|".join(fragments) + r")(?!\w)", re.IGNORECASE)
    for slug, (_name, fragments) in VOCABULARY.items()
}
_TAG = re.compile(r"<[^>]*>")


def assign_topics(title: str, summary: str, content: str = "") -> list[str]:
    """The sorted slugs of the topics a post is about. `content` may be HTML."""
    text = f"{title}\n{summary}"
    body = html.unescape(_TAG.sub(" ", content)) if content else ""
    found = {
        slug
        for slug, pattern in _PATTERNS.items()
        if pattern.search(text) or (body and len(pattern.findall(body)) >= CONTENT_MIN_MENTIONS)
    }
    for slug in list(found):
        found.update(IMPLIED.get(slug, ()))
    return sorted(found)

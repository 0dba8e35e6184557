"""A deterministic synthetic catalog for the benchmark.

The schema comes from the real migrations (`dogear db upgrade`); the rows are bulk
inserted with `executemany` while the search triggers are dropped, then the index is
rebuilt in one statement and the triggers put back, exactly as the migration defines
them. The same `--posts` and seed always give the same database.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SEED = 20261121
GENERATOR_VERSION = 3  # bump when the generated rows change
PASSWORD = "bench-reader-password"  # noqa: S105 - a throwaway benchmark account
READER_EMAIL = "bench-reader@bench.example"

# Topic slug -> display name (the app's import vocabulary, see app/catalog/topics.py).
TOPICS = {
    "python": "Python",
    "asyncio": "asyncio",
    "rust": "Rust",
    "go": "Go",
    "javascript": "JavaScript",
    "flask": "Flask",
    "fastapi": "FastAPI",
    "django": "Django",
    "htmx": "htmx",
    "celery": "Celery",
    "postgres": "PostgreSQL",
    "sqlite": "SQLite",
    "redis": "Redis",
    "databases": "Databases",
    "docker": "Docker",
    "kubernetes": "Kubernetes",
    "testing": "Testing",
    "security": "Security",
    "performance": "Performance",
    "tooling": "Tooling",
}

# Frequent words first (Zipf ranks 1..n); the tail is made of synthetic words.
COMMON = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "for",
    "with",
    "how",
    "is",
    "on",
    "your",
    "from",
    "why",
    "what",
    "it",
    "you",
    "we",
    "building",
    "guide",
    "using",
    "modern",
    "practical",
    "production",
    "with",
    "without",
    "into",
    "beyond",
    "at",
    "by",
    "python",
    "data",
    "web",
    "code",
    "app",
    "apps",
    "api",
    "fast",
    "simple",
    "better",
    "real",
    "first",
    "new",
    "deep",
    "dive",
    "notes",
    "lessons",
    "patterns",
    "guide",
    "tutorial",
    "introduction",
    "part",
    "series",
    "review",
    "design",
    "testing",
    "performance",
    "security",
    "scaling",
    "debugging",
    "deploying",
    "understanding",
    "server",
    "client",
    "database",
    "query",
    "queries",
    "cache",
    "caching",
    "async",
    "concurrency",
    "threads",
    "errors",
    "types",
    "type",
    "typed",
    "tooling",
    "tools",
    "library",
    "libraries",
    "framework",
    "frameworks",
    "memory",
    "speed",
    "systems",
    "system",
    "service",
    "services",
    "microservices",
    "architecture",
    "backend",
    "frontend",
    "release",
    "releases",
    "version",
    "upgrade",
    "migration",
    "migrations",
    "model",
    "models",
    "search",
    "index",
    "indexes",
    "storage",
    "files",
    "file",
    "stream",
    "streams",
    "network",
    "http",
    "json",
    "workflow",
    "workers",
    "worker",
    "jobs",
    "queue",
    "queues",
    "tasks",
    "task",
    "events",
    "event",
    "logs",
    "logging",
    "metrics",
    "monitoring",
    "observability",
    "config",
    "configuration",
    "containers",
    "container",
    "cloud",
    "functions",
    "function",
    "classes",
    "class",
    "objects",
    "object",
    "modules",
    "module",
    "packages",
    "package",
    "benchmarks",
    "benchmark",
    "profiling",
    "profile",
    "tips",
    "tricks",
    "mistakes",
    "myths",
    "questions",
    "answers",
    "checklist",
    "handbook",
    "recipes",
    "examples",
    "example",
    "explained",
    "practice",
    "practices",
]

TECH = [
    "python",
    "asyncio",
    "rust",
    "golang",
    "javascript",
    "typescript",
    "flask",
    "fastapi",
    "django",
    "htmx",
    "celery",
    "postgresql",
    "postgres",
    "sqlite",
    "redis",
    "docker",
    "kubernetes",
    "pytest",
    "ruff",
    "mypy",
    "uv",
    "pydantic",
    "sqlalchemy",
    "alembic",
    "gunicorn",
    "uvicorn",
    "nginx",
    "linux",
    "tokio",
    "axum",
    "serde",
    "react",
    "node",
    "deno",
    "bun",
    "polars",
    "pandas",
    "numpy",
    "jupyter",
    "kafka",
    "rabbitmq",
    "graphql",
    "grpc",
    "websocket",
    "oauth",
    "jwt",
    "tls",
    "csrf",
    "xss",
    "wasm",
    "webassembly",
    "llvm",
    "cpython",
    "pypy",
    "cython",
]

PHRASES = [
    "event loop",
    "connection pool",
    "type hints",
    "memory leak",
    "query planner",
    "structured concurrency",
    "background jobs",
    "full text search",
]

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Guido",
    "Barbara",
    "Ken",
    "Dennis",
    "Margaret",
    "Frances",
    "Edsger",
    "Donald",
    "Niklaus",
    "John",
    "Radia",
    "Shafi",
    "Leslie",
    "Tim",
    "Vint",
    "Bjarne",
    "James",
    "Anders",
    "Yukihiro",
    "Rasmus",
    "Brendan",
    "Larry",
    "Jean",
    "Hedy",
    "Katherine",
    "Dorothy",
    "Mary",
    "Sophie",
    "Karen",
    "Joan",
    "Annie",
    "Evelyn",
    "Lynn",
    "Adele",
    "Manvendra",
    "Priya",
    "Chen",
    "Mateo",
    "Lucía",
    "Zoë",
    "Søren",
    "Björn",
    "Émile",
    "François",
    "Jürgen",
    "Łukasz",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Rossum",
    "Liskov",
    "Thompson",
    "Ritchie",
    "Hamilton",
    "Allen",
    "Dijkstra",
    "Knuth",
    "Wirth",
    "McCarthy",
    "Perlman",
    "Goldwasser",
    "Lamport",
    "Berners-Lee",
    "Cerf",
    "Stroustrup",
    "Gosling",
    "Hejlsberg",
    "Matsumoto",
    "Lerdorf",
    "Eich",
    "Wall",
    "Sammet",
    "Lamarr",
    "Johnson",
    "Vaughan",
    "Keller",
    "Wilson",
    "Spärck",
    "Clarke",
    "Easley",
    "Berezin",
    "Conway",
    "Goldberg",
    "Rajpoot",
    "Sharma",
    "Wang",
    "García",
    "Núñez",
    "Müller",
    "Kowalski",
    "Dubois",
    "Nørgaard",
    "Öberg",
]


@dataclass
class CatalogInfo:
    """What the benchmark needs to know about a built catalog."""

    path: str
    posts: int
    readers: int
    reader_email: str
    password: str
    common_word: str
    common_df: float
    rare_word: str
    rare_df: int
    phrase: str
    phrase_topic: str
    entry_ids: list[int]
    build_seconds: float
    more_common_words: list[str] = field(default_factory=list)  # for ranking quality


def _migration_module():
    path = ROOT / "migrations" / "versions" / "0002_search_index.py"
    spec = importlib.util.spec_from_file_location("dogear_search_migration", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cache_key(posts: int, readers: int) -> str:
    digest = hashlib.sha256(f"{GENERATOR_VERSION}|{posts}|{readers}|{SEED}".encode())
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def _zipf_cumulative(n: int, s: float = 1.0, q: float = 2.7) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights for ranks 1..n."""
    return list(itertools.accumulate(1.0 / (rank + q) ** s for rank in range(1, n + 1)))


def _synthetic_words(rng: random.Random, count: int) -> list[str]:
    onsets = [
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "j",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "br",
        "cr",
        "dr",
        "fl",
        "gr",
        "pl",
        "pr",
        "st",
        "tr",
        "ch",
        "sh",
        "th",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "x", "nd", "rt", "st", "ng"]
    words: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        syllables = rng.choice((2, 2, 3, 3, 4))
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
        word += rng.choice(codas)
        if word not in words:
            words.add(word)
            out.append(word)
    return out


def _vocabulary(rng: random.Random) -> list[str]:
    """~20,000 words ordered by rank: common English and tech words, then a long tail."""
    head = list(dict.fromkeys(COMMON))
    tech = [w for w in dict.fromkeys(TECH) if w not in head]
    # Interleave tech words into the upper-middle ranks so some are in 10 %+ of posts.
    vocab = head[:40] + tech[:10] + head[40:] + tech[10:]
    seen = set(vocab)
    vocab += [w for w in _synthetic_words(rng, 20_000) if w not in seen]
    return vocab


def _sentence(rng, vocab, cum, total, n) -> list[str]:
    return [vocab[bisect_left(cum, rng.random() * total)] for _ in range(n)]


def generate_posts(n: int, readers: int, rng: random.Random):
    """Yield (post row, topic slugs) for n posts."""
    vocab = _vocabulary(rng)
    cum = _zipf_cumulative(len(vocab))
    total = cum[-1]
    authors = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(authors)
    authors = authors[:2000]
    author_cum = _zipf_cumulative(len(authors), s=1.1, q=5)
    topic_slugs = list(TOPICS)
    topic_cum = _zipf_cumulative(len(topic_slugs), s=0.9, q=1)
    start = date(2012, 1, 1)
    span = (date(2026, 11, 20) - start).days
    ids = list(range(1, n + 1))
    for post_id in ids:
        topics = set()
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            topics.add(topic_slugs[bisect_left(topic_cum, rng.random() * topic_cum[-1])])
        topic_words = [TOPICS[t] for t in sorted(topics)]
        title_words = _sentence(rng, vocab, cum, total, rng.randint(4, 10))
        if topic_words and rng.random() < 0.6:
            title_words.insert(rng.randrange(len(title_words) + 1), rng.choice(topic_words))
        title = " ".join(title_words)
        title = title[0].upper() + title[1:]
        if rng.random() < 0.2:
            title += f" in {2012 + rng.randrange(15)}"
        summary_words = _sentence(rng, vocab, cum, total, rng.randint(22, 42))
        if rng.random() < 0.08:
            phrase = rng.choice(PHRASES).split()
            at = rng.randrange(len(summary_words))
            summary_words[at:at] = phrase
        for word in topic_words:
            if rng.random() < 0.5:
                summary_words.insert(rng.randrange(len(summary_words) + 1), word)
        summary = " ".join(summary_words)
        summary = summary[0].upper() + summary[1:] + "."
        # Recent years are busier.
        day = start + timedelta(days=int(span * math.sqrt(rng.random())))
        minutes = max(1, min(60, int(rng.lognormvariate(1.7, 0.6))))
        owner = rng.randint(2, readers + 1) if rng.random() < 0.01 else None
        created = datetime(2026, 1, 1) + timedelta(seconds=post_id)
        row = (
            post_id,
            title,
            summary,
            f"https://blog{post_id % 997}.example/posts/{post_id}",
            authors[bisect_left(author_cum, rng.random() * author_cum[-1])],
            day.isoformat(),
            minutes,
            minutes * 220 + rng.randrange(200),
            None,
            f"bench-{post_id}",
            1 + post_id % 40,
            owner,
            created.isoformat(" "),
            created.isoformat(" "),
        )
        yield row, sorted(topics)


def _run_migrations(db_path: Path, *args: str) -> None:
    """`dogear db upgrade` (or another `dogear` command) against the catalog."""
    args = args or ("db", "upgrade")
    env = dict(os.environ)
    env.update(
        DOGEAR_DATABASE_URL=f"sqlite:///{db_path}",
        DOGEAR_INSTANCE_PATH=str(DATA),
        DOGEAR_DEMO="false",
    )
    dogear = Path(sys.executable).with_name("dogear")
    command = [str(dogear), *args] if dogear.exists() else None
    if command is None:
        command = [sys.executable, "-m", "flask", "--app", "app:create_app", *args]
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)


def build(posts: int, readers: int = 1000, *, force: bool = False, log=print) -> CatalogInfo:
    """Build (or reuse) the pristine catalog for these sizes; returns what was built."""
    DATA.mkdir(parents=True, exist_ok=True)
    key = _cache_key(posts, readers)
    db_path = DATA / f"catalog-{posts}-{readers}.db"
    info_path = DATA / f"catalog-{posts}-{readers}.json"
    if not force and db_path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.pop("key", None) == key:
            return CatalogInfo(**info)
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    log(f"building a catalog of {posts:,} posts and {readers:,} readers…")
    _run_migrations(db_path)
    rng = random.Random(SEED)
    migration = _migration_module()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -200000")
    conn.execute("BEGIN")
    for name in migration.TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM posts_fts")
    conn.execute("DELETE FROM post_title_fts")
    _insert_rows(conn, posts, readers, rng)
    conn.execute(migration.BACKFILL)
    conn.execute(migration.BACKFILL_TITLE_KEYS)
    for ddl in migration.TRIGGERS.values():
        conn.execute(ddl)
    conn.execute("COMMIT")
    conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('optimize')")
    info = _describe(conn, db_path, posts, readers)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # Search's lists of each frequent word's best posts, as on a real instance.
    _run_migrations(db_path, "search", "rebuild")
    info.build_seconds = round(time.perf_counter() - started, 1)
    info_path.write_text(json.dumps({**asdict(info), "key": key}))
    log(f"built in {info.build_seconds} s")
    return info


def _insert_rows(conn: sqlite3.Connection, posts: int, readers: int, rng: random.Random) -> None:
    for table, columns, rows in generate_tables(posts, readers, rng):
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )


Batch = tuple[str, tuple[str, ...], list[tuple]]  # table, its columns, rows


def generate_tables(posts: int, readers: int, rng: random.Random) -> Iterator[Batch]:
    """Every row of the catalog, in batches, parents before children; each database's
    builder inserts them its own way (SQLite: executemany, PostgreSQL: COPY)."""
    from werkzeug.security import generate_password_hash

    now = "2026-11-20 12:00:00.000000"
    yield (
        "sources",
        ("id", "name", "kind", "url", "created_at", "status", "last_error"),
        [
            (i, f"Source {i:02d} Weekly", "feed", f"https://source{i}.example/feed.xml", now)
            + ("ok", "")
            for i in range(1, 41)
        ],
    )
    yield (
        "topics",
        ("id", "slug", "name"),
        [(i, slug, name) for i, (slug, name) in enumerate(TOPICS.items(), start=1)],
    )
    topic_ids = {slug: i for i, slug in enumerate(TOPICS, start=1)}
    # One hash for everyone: scrypt per account would take minutes.
    password_hash = generate_password_hash(PASSWORD)
    users = [(1, READER_EMAIL, password_hash, False, False, now)]
    users += [
        (i, f"reader{i}@bench.example", password_hash, False, False, now)
        for i in range(2, readers + 1)
    ]
    yield "users", ("id", "email", "password_hash", "is_admin", "is_disabled", "created_at"), users

    post_rows = []
    topic_rows = []
    public_ids = []
    for row, slugs in generate_posts(posts, readers, rng):
        post_rows.append(row)
        topic_rows.extend((row[0], topic_ids[slug]) for slug in slugs)
        if row[11] is None:
            public_ids.append(row[0])
        if len(post_rows) >= 10_000:
            yield from _post_batches(post_rows, topic_rows)
            post_rows, topic_rows = [], []
    yield from _post_batches(post_rows, topic_rows)

    entries = []
    entry_id = itertools.count(1)
    chosen = rng.sample(public_ids, min(1000, len(public_ids)))
    for position, post_id in enumerate(chosen, start=1):
        roll = rng.random()
        if roll < 0.6:
            state, progress = "saved", 0
        elif roll < 0.75:
            state, progress = "reading", rng.randint(5, 95)
        elif roll < 0.95:
            state, progress = "done", 100
        else:
            state, progress = "archived", rng.choice((0, 30, 100))
        entries.append((next(entry_id), 1, post_id, state, progress, position, "", now, now))
    for user_id in range(2, readers + 1):
        for position, post_id in enumerate(
            rng.sample(public_ids, min(rng.randint(0, 30), len(public_ids))), start=1
        ):
            entries.append((next(entry_id), user_id, post_id, "saved", 0, position, "", now, now))
    yield (
        "entries",
        ("id", "user_id", "post_id", "state", "progress", "position", "note", "added_at")
        + ("touched_at",),
        entries,
    )


POST_COLUMNS = (
    "id",
    "title",
    "summary",
    "url",
    "author",
    "published_on",
    "reading_minutes",
    "word_count",
    "content",
    "dedupe_key",
    "source_id",
    "owner_id",
    "created_at",
    "updated_at",
)


def _post_batches(post_rows, topic_rows) -> Iterator[Batch]:
    yield "posts", POST_COLUMNS, post_rows
    yield "post_topics", ("post_id", "topic_id"), topic_rows


def _describe(conn: sqlite3.Connection, db_path: Path, posts: int, readers: int) -> CatalogInfo:
    """Pick the benchmark's search words from the index itself."""
    conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, posts_fts, row)")
    total = conn.execute("SELECT count(*) FROM posts_fts").fetchone()[0]
    # A content word (not a stop word) in 10-25 % of posts.
    stop = set(COMMON[:12])
    common = None
    for word in TECH + COMMON:
        if word in stop:
            continue
        row = conn.execute("SELECT doc FROM temp.vocab WHERE term = ?", (word,)).fetchone()
        if row and 0.10 * total <= row[0] <= 0.25 * total:
            common = (word, row[0] / total)
            break
    assert common, "no word in 10-25 % of posts"
    # Five more in 5-25 %, for the ranking-quality rows: four alone, one pair.
    more = [
        word
        for word in TECH + COMMON
        if word not in stop and word != common[0]
        for row in [conn.execute("SELECT doc FROM temp.vocab WHERE term = ?", (word,)).fetchone()]
        if row and 0.05 * total <= row[0] <= 0.25 * total
    ]
    more = list(dict.fromkeys(more))[:5]
    rare = conn.execute(
        "SELECT term, doc FROM temp.vocab WHERE doc BETWEEN 3 AND 8 AND term GLOB '[a-z]*' "
        "AND term NOT GLOB 'dgx*' ORDER BY term LIMIT 1"
    ).fetchone()
    if rare is None:
        rare = conn.execute(
            "SELECT term, doc FROM temp.vocab WHERE term NOT GLOB 'dgx*' AND term GLOB '[a-z]*' "
            "ORDER BY doc, term LIMIT 1"
        ).fetchone()
    entry_ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM entries WHERE user_id = 1 AND state IN ('saved', 'reading') "
            "ORDER BY id LIMIT 50"
        )
    ]
    return CatalogInfo(
        path=str(db_path),
        posts=posts,
        readers=readers,
        reader_email=READER_EMAIL,
        password=PASSWORD,
        common_word=common[0],
        common_df=round(common[1], 3),
        rare_word=rare[0],
        rare_df=rare[1],
        phrase="event loop",
        phrase_topic="python",
        entry_ids=entry_ids,
        build_seconds=0.0,
        more_common_words=more,
    )


def working_copy(info: CatalogInfo, name: str = "run.db") -> Path:
    """A fresh copy of the pristine catalog for one run (the run writes to it)."""
    target = DATA / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(info.path, target)
    return target


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(build(n, force="--force" in sys.argv))

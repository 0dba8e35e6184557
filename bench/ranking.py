"""Ranking quality beside speed: how many of a search page's 20 posts are the true top
20, found by brute force on the same catalog (every match scored by the database).

The brute force is written here, apart from the app's engines, from the documented
ranking: an exact title first, then weighted relevance (SQLite: bm25 with the
engine's column weights; PostgreSQL: the engine's ts_rank_cd expression), ties newest
first, over the posts the signed-in reader may see. Ties at the 20th place count as
equal: a page post scoring the same as the 20th true post is a hit.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

TOP = 20
# A result card's link to its post (templates/partials/post_card.html).
_POST_LINK = re.compile(r'class="post-title"[^>]*>\s*<a href="[^"]*/posts/(\d+)"')


@dataclass(frozen=True)
class RankedQuery:
    """A search the bench sends, in pieces the brute force can use."""

    words: list[str] = field(default_factory=list)  # every one must match
    phrase: str | None = None
    topic: str | None = None

    @property
    def q(self) -> str:
        parts = list(self.words)
        if self.phrase:
            parts.append(f'"{self.phrase}"')
        if self.topic:
            parts.append(f"topic:{self.topic}")
        return " ".join(parts)


def page_ids(html: str) -> list[int]:
    """The posts of a results page, in order."""
    return [int(post_id) for post_id in _POST_LINK.findall(html)]


def possible(truth: list[tuple[int, float]]) -> int:
    """The best overlap there can be: 20, or every match when there are fewer."""
    return min(TOP, len(truth))


def overlap(page: list[int], truth: list[tuple[int, float]]) -> int:
    """How many of the page's first 20 posts are in the true top 20 (`truth`: ids
    and scores, best first, at least 20 long when there are that many matches)."""
    top = {post_id for post_id, _ in truth[:TOP]}
    if len(truth) <= TOP:
        return len([post_id for post_id in page[:TOP] if post_id in top])
    last = truth[TOP - 1][1]
    tied = {post_id for post_id, score in truth if score == last}
    return len([post_id for post_id in page[:TOP] if post_id in top or post_id in tied])


def sqlite_truth(path: str, email: str, query: RankedQuery) -> list[tuple[int, float]]:
    """The true ranking on SQLite: every match scored with FTS5's bm25."""
    # The engine's column weights and visibility tokens (app/search/sqlite.py).
    weights = "10.0, 2.5, 2.5, 2.5, 1.0, 0.0"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (uid,) = conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        terms = [f'"{word}"' for word in query.words]
        if query.phrase:
            terms.append(f'"{query.phrase}"')
        match = "{title summary author topics content}: (" + " AND ".join(terms) + ")"
        if query.topic:
            match += f' AND {{meta}}: "dgxt{query.topic.replace("-", "")}"'
        match += f" NOT {{meta}}: (dgxprivate NOT dgxowner{int(uid)})"
        rows = conn.execute(
            f"SELECT p.id, bm25(posts_fts, {weights}) AS score,"  # noqa: S608 - constants
            " lower(p.title) = lower(:q) AS exact"
            " FROM posts_fts JOIN posts AS p ON p.id = posts_fts.rowid"
            " WHERE posts_fts MATCH :match"
            " ORDER BY exact DESC, score, p.published_on DESC, p.id DESC LIMIT :limit",
            {"match": match, "q": " ".join(query.words), "limit": TOP * 5},
        ).fetchall()
    finally:
        conn.close()
    return [(post_id, -1e9 if exact else score) for post_id, score, exact in rows]


def postgres_truth(url: str, email: str, query: RankedQuery) -> list[tuple[int, float]]:
    """The true ranking on PostgreSQL: every match scored with the engine's
    ts_rank_cd expression."""
    import psycopg

    operands = [f"'{word}'" for word in query.words]
    if query.phrase:
        operands.append("(" + " <-> ".join(f"'{w}'" for w in query.phrase.split()) + ")")
    rank = (
        "ts_rank_cd('{0, 0.25, 0.25, 1}', p.search_vector, q)"
        " + 0.2 * ts_rank_cd('{1, 0, 0, 0}', p.search_vector, q, 32)"
    )
    topic = ""
    if query.topic:
        topic = (
            " AND EXISTS (SELECT 1 FROM post_topics AS pt JOIN topics AS t"
            " ON t.id = pt.topic_id WHERE pt.post_id = p.id AND t.slug = %(topic)s)"
        )
    statement = (
        f"SELECT p.id, {rank} AS score, lower(p.title) = lower(%(plain)s) AS exact"  # noqa: S608
        " FROM posts AS p, to_tsquery('dogear', %(q)s) AS q"
        " WHERE p.search_vector @@ q AND (p.owner_id IS NULL OR p.owner_id = %(uid)s"
        " OR EXISTS (SELECT 1 FROM entries AS e WHERE e.post_id = p.id"
        f" AND e.user_id = %(uid)s)){topic}"
        " ORDER BY exact DESC, score DESC, p.published_on DESC NULLS LAST, p.id DESC"
        " LIMIT %(limit)s"
    )
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        (uid,) = conn.execute("SELECT id FROM users WHERE email = %s", (email,)).fetchone()
        rows = conn.execute(
            statement,
            {
                "q": " & ".join(operands),
                "plain": " ".join(query.words),
                "uid": uid,
                "topic": query.topic,
                "limit": TOP * 5,
            },
        ).fetchall()
    return [(post_id, 1e9 if exact else -score) for post_id, score, exact in rows]

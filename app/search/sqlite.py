"""Search with SQLite's FTS5: the tables and triggers of migrations 0002 and 0005.

How SQLite search stays fast at 100,000 posts (see bench/README.md for the numbers):

- Every filter that can be a token is one: topics, year, length bucket, source and
  "private to reader N" are words in the hidden `meta` column, so the full-text index
  alone decides what matches, who may see it, and how many there are.
- Relevance is bm25 with column weights over every match. When a query matches up to
  COUNT_CAP posts, all are scored; when it matches more, the impact-ordered lists of
  its words (app/search/impacts.py) give candidates and prove that their best are the
  top; when they can't, every match is scored.
- An exact title match is one lookup in `post_title_fts` and always comes first.
- Counts stop at COUNT_CAP ("2,000+ results"). Facets are counted over the POOL
  most recently added matches, and say so when there are more.
- Date and length sorts join the matches to `posts` when there are few of them, and
  walk the posts index in order, testing membership, when there are many.
- Date and minute ranges are checked on `posts` rows, after year and length tokens
  have narrowed the matches; a selective range becomes a small set to test against.
- The number of statements per page is fixed; none depends on the number of results.
"""

# ruff: noqa: S608 - statements here are assembled from this module's own fragments;
# every value from the user, the FTS5 expression included, is a bound parameter.

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from sqlalchemy import bindparam, text
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.pagination import Page
from app.search import engine, impacts
from app.search.engine import (
    MARK_CLOSE,
    MARK_OPEN,
    RELATED_MAX_DOCS,
    SNIPPET_TOKENS,
    Hit,
    RelatedPost,
    SearchResults,
    _distinctive_words,
    _empty,
    _marked,
    _Plan,
    _plan,
    related_rows,
)
from app.search.facets import MAX_AUTHORS, MAX_TOPICS, MAX_YEARS, FacetCounter, Facets
from app.search.parser import Query, Term

if TYPE_CHECKING:
    from app.auth.signed_in import Reader

log = logging.getLogger(__name__)

FEW_POSTS = 5000  # a range filter this selective is tested as set membership

# bm25 weights, in the column order of posts_fts: title >> summary, author, topics >
# content; meta carries filter tokens only.
WEIGHTS = "10.0, 2.5, 2.5, 2.5, 1.0, 0.0"
SEARCH_COLUMNS = "{title summary author topics content}"
RELATED_COLUMNS = "{title summary topics}"

# Mirrors KEY_SEPARATORS in migrations/versions/0002_search_index.py.
KEY_SEPARATORS = (
    "\t\n\r\u00a0\u2009\u202f\u3000"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2026\u2018\u2019\u201a\u201c\u201d\u201e"
    "\u00ab\u00bb\u2039\u203a\u00b7\u2022\u00a1\u00bf\u00a7\u00b6\u2020\u2021\u2032\u2033"
    "\u00a9\u00ae\u2122\u2190\u2192\u21d2\u00d7\u00f7"
)


def title_key(text: str) -> str:
    """The exact-title key, computed as the migration's SQL views compute it."""
    for char in KEY_SEPARATORS:
        text = text.replace(char, " ")
    for _ in range(6):
        text = text.replace("  ", " ")
    return text.strip(" ")


def _is_single_token(key: str) -> bool:
    """True when FTS5's unicode61 tokenizer (space being a token character) should
    read the whole key as one token; a phrase query would fail on the detail=none key
    table. unicode61 knows Unicode 6.1 only, so a newer letter can still split the
    key: the lookup treats that failure as "no exact match"."""
    return bool(key) and all(ch == " " or unicodedata.category(ch)[0] in "LN" for ch in key)


def _order_by(sort: str, *, walk_index: bool) -> str:
    """ORDER BY over posts aliased p.

    With `walk_index` SQLite may read an index in this order and stop at the LIMIT
    (right when most rows match). Without, the "+" hides the columns from the index,
    so the planner starts from the few matching rows and sorts them (right when they
    are few: without statistics SQLite can't tell the two apart).
    """
    plus = "" if walk_index else "+"
    column, direction = {
        "newest": ("published_on", "DESC"),
        "oldest": ("published_on", "ASC"),
        "shortest": ("reading_minutes", "ASC"),
        "longest": ("reading_minutes", "DESC"),
    }[sort]
    return f"{plus}p.{column} {direction}, {plus}p.id {direction}"


def _fts_string(text: str) -> str:
    """A string literal in FTS5 query syntax: the tokenizer, never the parser, reads it."""
    return '"' + text.replace('"', '""') + '"'


def _fts_term(term: Term) -> str:
    return _fts_string(term.text) + ("*" if term.prefix else "")


def _fts_text(query: Query) -> str | None:
    """The positive words: each group an OR, all groups ANDed, in the searched columns."""
    if not query.groups:
        return None
    groups = ["(" + " OR ".join(_fts_term(t) for t in group) + ")" for group in query.groups]
    return f"{SEARCH_COLUMNS}: (" + " AND ".join(groups) + ")"


def _meta(*tokens: str) -> str:
    """Any of these filter tokens (quoted: a slug may hold anything)."""
    return "{meta}: (" + " OR ".join(_fts_string(t) for t in tokens) + ")"


def _topic_token(slug: str) -> str:
    return "dgxt" + slug.replace("-", "")


def _year_tokens(
    after: date | None, before: date | None, catalog: tuple[int, int] | None
) -> list[str] | None:
    """Year tokens covering a date range within the catalog's years, when that is a
    short list, so the index narrows the matches before rows are read (else None).
    An empty list: the range is empty."""
    if catalog is None or (after is None and before is None):
        return None
    first = max(after.year, catalog[0]) if after else catalog[0]
    if before is None:
        last = catalog[1]
    else:
        last = min(
            before.year if (before.month, before.day) > (1, 1) else before.year - 1, catalog[1]
        )
    if last < first:
        return []
    if last - first > 5:
        return None
    return [f"dgxy{year}" for year in range(first, last + 1)]


@dataclass
class _Sql:
    """One planned query as SQL: where its rows come from and what they must satisfy.

    Rows come from the FTS index when there is anything for it to match (words, or
    filters that are tokens); a query of only range and `is:` filters reads `posts`
    directly, the way browse does.
    """

    match: str | None  # the FTS5 expression, None when the index isn't needed
    post_conditions: list[str]  # over posts aliased p
    id_conditions: list[str]  # over "{id}", with "{plus}" where an index must be skipped
    params: dict[str, Any]

    @property
    def joined(self) -> bool:
        return self.match is not None and bool(self.post_conditions)

    @property
    def source(self) -> str:
        if self.match is None:
            return "posts AS p"
        return "posts_fts" + (" JOIN posts AS p ON p.id = posts_fts.rowid" if self.joined else "")

    @property
    def id_column(self) -> str:
        return "p.id" if self.match is None else "posts_fts.rowid"

    @property
    def where(self) -> str:
        return self.where_joined(self.match is None or self.joined)

    def where_joined(self, with_posts: bool) -> str:
        """The conditions for `source` (joined to posts p when `with_posts`).

        Membership tests on the FTS side keep "+" (scan the matches, test each against
        a small set); on posts they drop it (let the small set drive).
        """
        plus = "+" if self.match is not None else ""
        parts = ["posts_fts MATCH :match"] if self.match is not None else []
        parts += [c.format(id=self.id_column, plus=plus) for c in self.id_conditions]
        if with_posts:
            parts += self.post_conditions
        return " AND ".join(parts) or "1"

    def posts_where(self) -> str:
        """The conditions over posts aliased p, the match set as a membership test."""
        parts = []
        plus = ""
        if self.match is not None:
            parts.append("+p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH :match)")
            plus = "+"
        parts += [c.format(id="p.id", plus=plus) for c in self.id_conditions]
        parts += self.post_conditions
        return " AND ".join(parts) or "1"


def _compile(plan: _Plan) -> _Sql:
    q = plan.query
    positive: list[str] = []
    negative: list[str] = []
    params: dict[str, Any] = {}
    post_conditions: list[str] = []
    id_conditions: list[str] = []
    text_expr = _fts_text(q)
    if text_expr:
        positive.append(text_expr)
    if q.excluded:
        negative.append(
            f"{SEARCH_COLUMNS}: (" + " OR ".join(_fts_term(t) for t in q.excluded) + ")"
        )
    positive += [_meta(_topic_token(slug)) for slug in plan.topic_slugs]
    if plan.excluded_topic_slugs:
        negative.append(_meta(*(_topic_token(s) for s in plan.excluded_topic_slugs)))
    for values, target in (
        (q.filters_for("author"), positive),
        (q.filters_for("author", negated=True), negative),
    ):
        if values:
            target.append(
                "{author}: (" + " OR ".join(_fts_string(str(f.value)) for f in values) + ")"
            )
    if plan.source_ids is not None:
        positive.append(_meta(*(f"dgxs{i}" for i in plan.source_ids)))
    if plan.excluded_source_ids:
        negative.append(_meta(*(f"dgxs{i}" for i in plan.excluded_source_ids)))
    for name, prefix in (("year", "dgxy"), ("length", "dgxl")):
        values = q.filters_for(name)
        if values:
            positive.append(_meta(*(f"{prefix}{f.value}" for f in values)))
        values = q.filters_for(name, negated=True)
        if values:
            negative.append(_meta(*(f"{prefix}{f.value}" for f in values)))

    # Dates and minutes are ranges: SQL over posts, narrowed by year tokens if cheap.
    after = max((f.value for f in q.filters_for("after")), default=None)
    before = min((f.value for f in q.filters_for("before")), default=None)
    if isinstance(after, date):
        post_conditions.append("p.published_on >= :after")
        params["after"] = after.isoformat()
    if isinstance(before, date):
        post_conditions.append("p.published_on < :before")
        params["before"] = before.isoformat()
    years = _year_tokens(
        after if isinstance(after, date) else None,
        before if isinstance(before, date) else None,
        plan.years,
    )
    if years == []:
        plan.impossible = True
    elif years and positive:  # (alone, dates read the posts index instead)
        positive.append(_meta(*years))
    low = max(
        (int(f.value) for f in q.filters_for("min") if isinstance(f.value, int)), default=None
    )
    high = min(
        (int(f.value) for f in q.filters_for("max") if isinstance(f.value, int)), default=None
    )
    buckets = [
        name
        for name, (first, last) in (("short", (0, 4)), ("medium", (5, 10)), ("long", (11, None)))
        if (high is None or first <= high) and (low is None or last is None or last >= low)
    ]
    if not buckets:
        plan.impossible = True
    elif len(buckets) < 3 and positive:  # the length tokens narrow the index's matches
        positive.append(_meta(*(f"dgxl{b}" for b in buckets)))
    if low is not None:
        post_conditions.append("p.reading_minutes >= :min_minutes")
        params["min_minutes"] = low
    if high is not None:
        post_conditions.append("p.reading_minutes <= :max_minutes")
        params["max_minutes"] = high

    if plan.user is not None:
        params["uid"] = plan.user.id
        id_conditions += _state_conditions(q, params)
    if not positive and not negative:
        # Nothing for the index to do: read posts, visibility checked on the row.
        owner = "coalesce(p.owner_id, 0)"
        post_conditions.append(
            f"({owner} IN (0, :uid) OR EXISTS (SELECT 1 FROM entries AS e"
            " WHERE e.post_id = p.id AND e.user_id = :uid))"
            if plan.user
            else f"{owner} = 0"
        )
        return _Sql(None, post_conditions, id_conditions, params)
    if plan.user is not None:
        visibility = f"{{meta}}: (dgxprivate NOT dgxowner{int(plan.user.id)})"
        base = f"{{meta}}: (dgxpublic OR dgxowner{int(plan.user.id)})"
    else:
        visibility, base = "{meta}: dgxprivate", "{meta}: dgxpublic"
    if positive:
        negative.append(visibility)
    else:
        positive.append(base)
    match = " AND ".join(f"({p})" for p in positive)
    if negative:
        match = f"({match}) NOT (" + " OR ".join(f"({n})" for n in negative) + ")"
    params["match"] = match
    return _Sql(match, post_conditions, id_conditions, params)


def _state_conditions(q: Query, params: dict[str, Any]) -> list[str]:
    """`is:` filters as membership in the reader's own entries (a small set)."""
    conditions = []
    started = "(progress > 0 OR state IN ('reading', 'done'))"
    mine = "SELECT post_id FROM entries WHERE user_id = :uid AND "
    states = [str(f.value) for f in q.filters_for("is")]
    if states:
        listed = [s for s in states if s != "unread"]
        alternatives = []
        if listed:
            params["states"] = listed
            alternatives.append(f"{{plus}}{{id}} IN ({mine}state IN :states)")
        if "unread" in states:
            alternatives.append(f"+{{id}} NOT IN ({mine}{started})")
        conditions.append("(" + " OR ".join(alternatives) + ")")
    for f in q.filters_for("is", negated=True):
        if f.value == "unread":
            conditions.append(f"{{plus}}{{id}} IN ({mine}{started})")
        else:
            key = f"not_state_{f.value}"
            params[key] = f.value
            conditions.append(f"+{{id}} NOT IN ({mine}state = :{key})")
    return conditions


# Facet counts over a set of post ids (a JSON array): (field, value, label, count).
FACETS_SQL = """
WITH pool AS MATERIALIZED (
    SELECT p.id, p.author, CAST(substr(p.published_on, 1, 4) AS INTEGER) AS year,
           CASE WHEN p.reading_minutes < 5 THEN 'short'
                WHEN p.reading_minutes <= 10 THEN 'medium' ELSE 'long' END AS length
    FROM posts AS p WHERE p.id IN (SELECT value FROM json_each(:ids))
)
SELECT * FROM (
    SELECT 'author', author, author, count(*) AS n FROM pool WHERE author != ''
    GROUP BY author ORDER BY n DESC, author LIMIT :authors)
UNION ALL SELECT * FROM (
    SELECT 'year', year, year, count(*) AS n FROM pool WHERE year IS NOT NULL
    GROUP BY year ORDER BY n DESC, year DESC LIMIT :years)
UNION ALL SELECT 'length', length, length, count(*) FROM pool GROUP BY length
UNION ALL SELECT * FROM (
    SELECT 'topic', t.slug, t.name, count(*) AS n FROM pool
    JOIN post_topics AS pt ON pt.post_id = pool.id JOIN topics AS t ON t.id = pt.topic_id
    GROUP BY t.id ORDER BY n DESC, t.slug LIMIT :topics)
"""


class SQLiteSearch:
    """Search with the FTS5 tables of migration 0002."""

    def search(
        self, query: Query, user: Reader | None, *, sort: str, page: int, per_page: int
    ) -> SearchResults:
        plan = _plan(query, user)
        if not plan.has_text and sort == "relevance":
            sort = "newest"
        sql = None if plan.impossible else _compile(plan)
        if sql is None or plan.impossible:
            return _empty(plan, sort, page)
        if sql.match is not None and sql.post_conditions:
            self._narrow_by_posts(sql)
        source, where, id_column = sql.source, sql.where, sql.id_column
        total = self._scalar(
            f"SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT :cap)",
            sql.params | {"cap": engine.COUNT_CAP + 1},
        )
        more = total > engine.COUNT_CAP
        total = min(total, engine.COUNT_CAP)
        ranked = plan.has_text and sort == "relevance"
        exact: set[int] = set()
        last_page = max(1, -(-total // per_page))
        page = min(page, last_page)
        start = (page - 1) * per_page
        if ranked:
            # Exact titles first, then the best by bm25 over every match.
            exact = self._exact_title_ids(plan, sql)
            top = self._top_ids(plan, sql, start + per_page + 1, many=more)
            ranked_ids = sorted(exact, reverse=True) + [i for i in top if i not in exact]
            page_ids = ranked_ids[start : start + per_page]
            has_next = len(ranked_ids) > start + per_page
        else:
            # Many matches: walk the posts index in order; few: sort them.
            order_by = _order_by(sort, walk_index=more)
            limits = {"limit": per_page + 1, "offset": start}
            if sql.match is None or more:
                statement = f"SELECT p.id FROM posts AS p WHERE {sql.posts_where()}"
            else:
                statement = (
                    "SELECT p.id FROM posts_fts JOIN posts AS p ON p.id = posts_fts.rowid"
                    f" WHERE {sql.where_joined(True)}"
                )
            rows = self._rows(
                f"{statement} ORDER BY {order_by} LIMIT :limit OFFSET :offset",
                sql.params | limits,
            )
            ids = [row[0] for row in rows]
            page_ids, has_next = ids[:per_page], len(ids) > per_page
        # Facets count POOL of the matches: the newest added ones from the index, or
        # the first ones in the page's order when reading posts directly.
        pool_order = f"{id_column} DESC" if sql.match else _order_by(sort, walk_index=more)
        pool_ids = self._ids(
            f"SELECT {id_column} FROM {source} WHERE {where} ORDER BY {pool_order} LIMIT :pool",
            sql.params | {"pool": engine.POOL},
        )
        facets = self._facets(
            plan.query, pool_ids, len(pool_ids) if total > len(pool_ids) else None
        )
        snippets = self._snippets(plan.query, page_ids)
        hits = [
            Hit(post_id=post_id, summary_html=snippets.get(post_id), exact_title=post_id in exact)
            for post_id in page_ids
        ]
        return SearchResults(
            query=plan.query,
            sort=sort,
            page=Page(items=hits, number=page, has_next=has_next),
            total=total,
            more=more,
            facets=facets,
            notes=tuple(plan.notes),
            last_page=last_page,
        )

    def _top_ids(self, plan: _Plan, sql: _Sql, limit: int, *, many: bool) -> list[int]:
        """The first `limit` matches by bm25, ties newest first: the true ranking.

        With many matches, the impact-ordered lists of the query's words supply
        candidates that are scored exactly; when they can't prove their answer is the
        top (see app/search/impacts.py), or with few matches, every match is scored.
        """
        ranked = (
            "SELECT pool.id, pool.score FROM (SELECT {id} AS id, bm25(posts_fts, {weights})"
            " AS score FROM {source} WHERE {where}) AS pool JOIN posts AS p ON p.id = pool.id"
            " ORDER BY pool.score, p.published_on DESC, p.id DESC LIMIT :limit"
        )
        terms = impacts.query_terms(plan.query) if many else None
        q = plan.query
        if (
            terms is not None
            and len(terms) == 1
            and not (q.excluded or q.filters or sql.id_conditions or sql.post_conditions)
        ):
            user_id = plan.user.id if plan.user is not None else None
            top = impacts.top_of_one_list(terms[0], limit, user_id)
            if top is not None:
                return top
        if terms is not None:
            # Several words: whole lists hold ~1,000 candidates each, and testing them
            # all costs about what scoring every match does; only the first read pays.
            depths = (impacts.FIRST_READ,) if len(set(terms)) > 1 else (impacts.FIRST_READ, None)
            for depth in depths:
                found = impacts.candidates(terms, depth)
                if found is None:
                    break
                rows = self._rows(
                    ranked.format(
                        id=sql.id_column,
                        weights=WEIGHTS,
                        source=sql.source,
                        where=sql.where
                        + f" AND +{sql.id_column} IN (SELECT value FROM json_each(:candidates))",
                    ),
                    sql.params | {"limit": limit, "candidates": json.dumps(found.ids)},
                )
                if len(rows) >= limit and rows[limit - 1][1] < found.bound:
                    return [row[0] for row in rows]
                if found.exhausted:
                    break
        rows = self._rows(
            ranked.format(id=sql.id_column, weights=WEIGHTS, source=sql.source, where=sql.where),
            sql.params | {"limit": limit},
        )
        return [row[0] for row in rows]

    def _narrow_by_posts(self, sql: _Sql) -> None:
        """Dates and minutes next to words: when few posts pass them, test the index's
        matches for membership in that small set instead of reading each match's row."""
        conditions = " AND ".join(sql.post_conditions)
        few = self._scalar(
            f"SELECT count(*) FROM (SELECT 1 FROM posts AS p WHERE {conditions} LIMIT :few)",
            sql.params | {"few": FEW_POSTS + 1},
        )
        if few <= FEW_POSTS:
            sql.id_conditions.append(
                f"{{plus}}{{id}} IN (SELECT p.id FROM posts AS p WHERE {conditions})"
            )
            sql.post_conditions = []

    def _exact_title_ids(self, plan: _Plan, sql: _Sql) -> set[int]:
        """Posts whose whole title is the searched words, if the query is plain words:
        one lookup in the title-key table, each hit checked against the query."""
        terms = plan.query.terms
        if any(len(group) > 1 for group in plan.query.groups) or any(t.prefix for t in terms):
            return set()
        key = title_key(" ".join(t.text for t in terms))
        if not _is_single_token(key):
            return set()
        rows = self._rows(
            "SELECT k.rowid FROM post_title_fts AS k WHERE post_title_fts MATCH :key"
            f" AND EXISTS (SELECT 1 FROM {sql.source} WHERE {sql.where}"
            f" AND {sql.id_column} = k.rowid) LIMIT 5",
            sql.params | {"key": _fts_string(key)},
            expect_errors=True,
        )
        return {row[0] for row in rows}

    def _snippets(self, query: Query, ids: list[int]) -> dict[int, Markup]:
        """Summaries with the matched words marked, for the posts on the page."""
        text_expr = _fts_text(query)
        if not text_expr or not ids:
            return {}
        # The summary's snippet when the summary matched; else the article's own text
        # around the match, so a post found by a word of its body shows why.
        rows = self._rows(
            "SELECT rowid, summary || ' ' || content,"
            " CASE WHEN instr(snippet(posts_fts, 1, :open, :close, '…', :tokens), :open) > 0"
            "   OR instr(snippet(posts_fts, 4, :open, :close, '…', :tokens), :open) = 0"
            " THEN snippet(posts_fts, 1, :open, :close, '…', :tokens)"
            " ELSE snippet(posts_fts, 4, :open, :close, '…', :tokens) END"
            " FROM posts_fts WHERE posts_fts MATCH :match"
            " AND rowid IN (SELECT value FROM json_each(:ids))",
            {
                "match": text_expr,
                "ids": json.dumps(ids),
                "open": MARK_OPEN,
                "close": MARK_CLOSE,
                "tokens": SNIPPET_TOKENS,
            },
        )
        return {
            rowid: _marked(fragment)
            for rowid, summary, fragment in rows
            # Text holding the marker characters itself is shown unmarked.
            if fragment and MARK_OPEN not in summary and MARK_CLOSE not in summary
        }

    def related_posts(
        self, post: engine.RelatedTo, user: Reader | None, limit: int
    ) -> list[RelatedPost]:
        """Rank posts by bm25 against the post's rarest shared words; fill up with
        posts sharing its topics."""
        words = _distinctive_words(f"{post.title} {post.summary}")[:24]
        visible = (
            f"{{meta}}: (dgxprivate NOT dgxowner{int(user.id)})" if user else "{meta}: dgxprivate"
        )
        found: list[int] = []
        chosen = engine.related_words(_related_words, post.id, words)
        if chosen:
            match = (
                f"({RELATED_COLUMNS}: ("
                + " OR ".join(_fts_string(w) for w in chosen)
                + f")) NOT ({visible})"
            )
            found = [
                row[0]
                for row in self._rows(
                    "SELECT rowid FROM (SELECT rowid, bm25(posts_fts, "
                    f"{WEIGHTS}) AS score FROM posts_fts WHERE posts_fts MATCH :match"
                    " AND rowid != :post ORDER BY rowid DESC LIMIT :pool)"
                    " ORDER BY score LIMIT :limit",
                    {"match": match, "post": post.id, "pool": engine.POOL, "limit": limit},
                )
            ]
        if len(found) < limit and post.topics:
            tokens = " AND ".join(_fts_string(_topic_token(t.slug)) for t in post.topics)
            match = f"({{meta}}: ({tokens})) NOT ({visible})"
            more = self._rows(
                "SELECT rowid FROM posts_fts WHERE posts_fts MATCH :match AND rowid != :post"
                " ORDER BY rowid DESC LIMIT :limit",
                {"match": match, "post": post.id, "limit": limit * 2},
            )
            found += [row[0] for row in more if row[0] not in found]
        return related_rows(found[:limit])

    @staticmethod
    def _rows(sql: str, params: dict[str, Any], *, expect_errors: bool = False) -> list[Any]:
        statement = text(sql)
        if "states" in params:
            statement = statement.bindparams(bindparam("states", expanding=True))
        try:
            return list(db.session.execute(statement, params).all())
        except OperationalError:
            # Our FTS5 strings are built, never passed through: log loudly if one
            # still fails so it gets fixed, and show no results rather than a 500.
            if not expect_errors:
                log.exception("search statement failed: %s %r", sql, params)
            return []

    def _ids(self, sql: str, params: dict[str, Any]) -> list[int]:
        return [row[0] for row in self._rows(sql, params)]

    def _facets(self, query: Query, ids: list[int], sample: int | None) -> Facets:
        """Facet counts over the posts with these ids, aggregated in one statement."""
        counter = FacetCounter(query)
        if ids:
            counter.add_counts(
                self._rows(
                    FACETS_SQL,
                    {
                        "ids": json.dumps(ids),
                        "authors": MAX_AUTHORS,
                        "years": MAX_YEARS,
                        "topics": MAX_TOPICS,
                    },
                )
            )
        return counter.build(sample)

    def _scalar(self, sql: str, params: dict[str, Any]) -> int:
        rows = self._rows(sql, params)
        return int(rows[0][0]) if rows else 0


def _related_words(words: Sequence[str]) -> list[str]:
    """The rarest of `words` shared with other posts (2 to RELATED_MAX_DOCS of them hold
    it in their title, summary or topics), rarest first, eight at most.

    Counting stops at RELATED_MAX_DOCS. A word the impact-ordered lists know to be in
    more posts than that (in their text, at least) isn't rare: it isn't counted."""
    terms = [impacts.index_terms(w) for w in words]
    common = impacts.frequent_terms((t[0] for t in terms if len(t) == 1), RELATED_MAX_DOCS)
    probed = [i for i, t in enumerate(terms) if not (len(t) == 1 and t[0] in common)]
    if not probed:
        return []
    # Numbered by slot, not by the word's place: one statement text per number of
    # words, so the compiled statements kept (SQLAlchemy's, SQLite's) stay few.
    counts = SQLiteSearch._rows(
        " UNION ALL ".join(
            f"SELECT {k}, (SELECT count(*) FROM (SELECT 1 FROM posts_fts"
            f" WHERE posts_fts MATCH :w{k} LIMIT {RELATED_MAX_DOCS + 1}))"
            for k in range(len(probed))
        ),
        {f"w{k}": f"{RELATED_COLUMNS}: {_fts_string(words[i])}" for k, i in enumerate(probed)},
    )
    shared = sorted((n, probed[k]) for k, n in counts if 2 <= n <= RELATED_MAX_DOCS)
    return [words[i] for _, i in shared[:8]]

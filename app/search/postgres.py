"""Search with PostgreSQL full-text search: the tsvector, GIN index and triggers of
migration 0008.

How the parsed query is answered:

- It becomes one tsquery, built here from the parser's terms (never handed to
  websearch_to_tsquery): the terms of a group are ORed (`|`), groups are ANDed (`&`),
  excluded terms are `& !(...)`, a phrase is `<->`, a prefix `:*`, and `author:` is
  a phrase restricted to weight C, which only the author's words carry. Each word is
  a quoted operand of `to_tsquery('dogear', ...)`, so it is unaccented and stemmed
  exactly as the index was; the words are split as `dogear_plain()` splits the
  indexed text (letters and digits), so an operand can never hold a quote.
- A phrase is asked for under each weight (`'a':A <-> 'b':A | 'a':B <-> 'b':B ...`):
  the vector lays out title, summary, author, topics and content so that neighbouring
  fields differ in weight, and a phrase can't run from one field into the next (as in
  SQLite, where a phrase is matched within a column).
- Filters, visibility and `is:` are plain SQL over `posts` (topics, sources, dates,
  minutes, the reader's entries), checked on the rows the GIN index found, or used
  to walk a btree index when there are no words. Nothing needs reindexing when a
  reader saves a private post.
- Relevance: an exact title (one lookup in the `dogear_title_key` index) first, then
  ts_rank_cd over every match, ties newest first, like the SQLite engine. A word in
  many posts has a list of its best posts (app/search/impacts.py): ts_rank_cd has no
  corpus statistics, so a stored score is the score until its post changes, and a
  one-word query is answered from the list (changed posts scored beside it). The
  score of several words is not the sum of each word's, so those score every match.
- Statements: one walk down the primary key finds the newest COUNT_CAP + 1 matches
  (their number is the count, the first POOL of them the pool whose facets are
  counted); when the pool holds every match, one more ranks it and counts its facets,
  reading each of its rows once; else one ranks every match and one counts facets.
- Snippets: ts_headline over the summary with private-use markers, then escaped and
  marked by `_marked()`. `<` is swapped for another private-use character first, so
  the parser never takes part of the summary for an HTML tag and drops it.

Where the answers can differ from SQLite's:

- Scores: bm25 (SQLite) weighs rare words above common ones and normalizes by field
  length; ts_rank_cd does neither. Here a title hit counts 1, a summary, author or
  topic hit 0.25, and content adds at most 0.2 however often the word appears there
  (`rank / (rank + 1)`). The ordering rules hold on both (exact title, title above
  summary above content, ties newest first); the order among partial matches of
  several words may differ.
- Stemming: Snowball English here, the original Porter stemmer in SQLite; a few
  words stem differently. unaccent folds a little more than unicode61 (ß → ss).
- Only the first 200,000 characters of an article's text are indexed here (a
  tsvector holds at most 1 MB); SQLite indexes all of it.
"""

# ruff: noqa: S608 - statements here are assembled from this module's own fragments;
# every value from the user, the tsquery text included, is a bound parameter.

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from sqlalchemy import text

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

CONFIG = "dogear"  # the text search configuration of migration 0008
FIELD_WEIGHTS = "ABCD"  # title; summary and topics; author; content
AUTHOR_WEIGHT = "C"
RELATED_WEIGHTS = "AB"  # title, summary, topics
_ONE_LEXEME = re.compile(r"^'([^']+)'(?::[A-D*]+)?$")  # a tsquery of one lexeme, as text
# A title hit counts 1, summary, topics and author 0.25 each; content adds up to 0.2,
# saturating (normalization 32), so a long article repeating a word can't outrank
# a post with the word in its title.
RANK = (
    "ts_rank_cd('{{0, 0.25, 0.25, 1}}', p.search_vector, {q})"
    " + 0.2 * ts_rank_cd('{{1, 0, 0, 0}}', p.search_vector, {q}, 32)"
)
LESS_THAN = "\ue002"  # stands in for "<" while ts_headline reads a summary
HEADLINE_OPTIONS = (
    f'StartSel="{MARK_OPEN}", StopSel="{MARK_CLOSE}",'
    f" MaxWords={SNIPPET_TOKENS}, MinWords={SNIPPET_TOKENS * 2 // 3}"
)
STARTED = "(e.progress > 0 OR e.state IN ('reading', 'done'))"
LENGTH_SQL = {
    "short": "p.reading_minutes < 5",
    "medium": "p.reading_minutes BETWEEN 5 AND 10",
    "long": "p.reading_minutes > 10",
}
ORDER_BY = {
    # Undated posts last when newest first and first when oldest first, as SQLite
    # sorts NULLs; migration 0008's (published_on NULLS FIRST, id) index walks both.
    "newest": "p.published_on DESC NULLS LAST, p.id DESC",
    "oldest": "p.published_on ASC NULLS FIRST, p.id ASC",
    "shortest": "p.reading_minutes ASC, p.id ASC",
    "longest": "p.reading_minutes DESC, p.id DESC",
}


# --- The query as tsquery text -------------------------------------------------------


def _words(text_: str) -> list[str]:
    """The words of a term as dogear_plain() splits indexed text: runs of letters and
    digits (no quote or backslash can be in one)."""
    return re.findall(r"[^\W_]+", text_)


def _operand(word: str, *, prefix: bool = False, weights: str = "") -> str:
    label = ("*" if prefix else "") + weights
    return f"'{word}'" + (f":{label}" if label else "")


def _term(term: Term, *, weights: str | None = None, within_field: bool = True) -> str | None:
    """A word, phrase or prefix as tsquery text.

    `weights`: only in fields with these weights (author: "C"). `within_field`: a
    phrase may not span two fields, so it is asked for once per weight.
    """
    words = _words(term.text)
    if not words:
        return None
    last = len(words) - 1

    def phrase(weight: str) -> str:
        return " <-> ".join(
            _operand(w, prefix=term.prefix and i == last, weights=weight)
            for i, w in enumerate(words)
        )

    if len(words) == 1:
        return phrase(weights or "")
    if weights is None and not within_field:
        return f"({phrase('')})"
    return "(" + " | ".join(f"({phrase(w)})" for w in (weights or FIELD_WEIGHTS)) + ")"


def ranked_text(word: str) -> str | None:
    """The tsquery text a one-word query is ranked by (app/search/impacts.py builds
    each word's list with it)."""
    parts = _positive(Query(groups=[[Term(word)]]), within_field=False)
    return " & ".join(f"({p})" for p in parts) or None


def _any(parts: list[str | None]) -> str | None:
    kept = [p for p in parts if p]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(" + " | ".join(kept) + ")"


def _positive(query: Query, *, within_field: bool) -> list[str]:
    """One tsquery part per group of words and one for `author:` (any of its values)."""
    parts = [_any([_term(t, within_field=within_field) for t in group]) for group in query.groups]
    if query.filters_for("author"):
        parts.append(
            _any(
                [
                    _term(Term(str(f.value)), weights=AUTHOR_WEIGHT)
                    for f in query.filters_for("author")
                ]
            )
        )
    return [p for p in parts if p]


def _negative(query: Query) -> str | None:
    return _any(
        [_term(t) for t in query.excluded]
        + [
            _term(Term(str(f.value)), weights=AUTHOR_WEIGHT)
            for f in query.filters_for("author", negated=True)
        ]
    )


# --- The query as SQL ----------------------------------------------------------------


@dataclass
class _Sql:
    """A planned query: conditions over posts aliased p, and the tsquery texts."""

    conditions: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    words: bool = False  # the full-text index is asked (words or author:)
    ranked: str | None = None  # the positive words, for ranking and highlighting

    @property
    def where(self) -> str:
        return " AND ".join(self.conditions) or "TRUE"


def _visible(user: Reader | None, params: dict[str, Any]) -> str:
    """Posts the reader may see: as app.access.visible_posts_clause, in SQL."""
    if user is None:
        return "p.owner_id IS NULL"
    params["uid"] = user.id
    return (
        "(p.owner_id IS NULL OR p.owner_id = :uid OR EXISTS"
        " (SELECT 1 FROM entries AS e WHERE e.post_id = p.id AND e.user_id = :uid))"
    )


def _compile(plan: _Plan) -> _Sql:
    q = plan.query
    sql = _Sql()
    conditions, params = sql.conditions, sql.params
    positive = _positive(q, within_field=True)
    negative = _negative(q)
    if positive:
        match = " & ".join(f"({p})" for p in positive)
        if negative:
            match += f" & !{negative}"
        conditions.append(f"p.search_vector @@ to_tsquery('{CONFIG}', :match)")
        params["match"] = match
        sql.words = True
    elif negative:
        conditions.append(f"NOT (p.search_vector @@ to_tsquery('{CONFIG}', :match))")
        params["match"] = negative
        sql.words = True
    ranked = _positive(Query(groups=q.groups), within_field=False)
    if ranked:
        sql.ranked = " & ".join(f"({p})" for p in ranked)
        params["ranked"] = sql.ranked
    conditions.append(_visible(plan.user, params))

    # Topic ids, not slugs: with the value known, the planner knows how common it is.
    topics = "SELECT 1 FROM post_topics AS pt WHERE pt.post_id = p.id AND pt.topic_id"
    for i, topic_id in enumerate(plan.topic_ids):
        conditions.append(f"EXISTS ({topics} = :topic{i})")
        params[f"topic{i}"] = topic_id
    if plan.excluded_topic_ids:
        conditions.append(f"NOT EXISTS ({topics} = ANY(:not_topics))")
        params["not_topics"] = plan.excluded_topic_ids
    if plan.source_ids is not None:
        conditions.append("p.source_id = ANY(:sources)")
        params["sources"] = plan.source_ids
    if plan.excluded_source_ids:
        # A post without a source is not from the excluded one: keep it.
        conditions.append("(p.source_id IS NULL OR p.source_id <> ALL(:not_sources))")
        params["not_sources"] = plan.excluded_source_ids

    for negated in (False, True):
        name = "not_year" if negated else "year"
        spans = []
        for i, f in enumerate(q.filters_for("year", negated=negated)):
            params[f"{name}{i}"] = date(int(f.value), 1, 1)
            params[f"{name}{i}_end"] = date(int(f.value) + 1, 1, 1)
            spans.append(f"p.published_on >= :{name}{i} AND p.published_on < :{name}{i}_end")
        if spans and not negated:  # any of the years
            conditions.append("(" + " OR ".join(spans) + ")")
        elif spans:  # an undated post is in none of them
            conditions.append("(p.published_on IS NULL OR NOT (" + " OR ".join(spans) + "))")
    lengths = [LENGTH_SQL[str(f.value)] for f in q.filters_for("length")]
    if lengths:
        conditions.append("(" + " OR ".join(lengths) + ")")
    lengths = [LENGTH_SQL[str(f.value)] for f in q.filters_for("length", negated=True)]
    if lengths:
        conditions.append("NOT (" + " OR ".join(lengths) + ")")

    after = max((f.value for f in q.filters_for("after")), default=None)
    before = min((f.value for f in q.filters_for("before")), default=None)
    if isinstance(after, date):
        conditions.append("p.published_on >= :after")
        params["after"] = after
    if isinstance(before, date):
        conditions.append("p.published_on < :before")
        params["before"] = before
    low = max((f.value for f in q.filters_for("min") if isinstance(f.value, int)), default=None)
    high = min((f.value for f in q.filters_for("max") if isinstance(f.value, int)), default=None)
    if low is not None:
        conditions.append("p.reading_minutes >= :min_minutes")
        params["min_minutes"] = low
    if high is not None:
        conditions.append("p.reading_minutes <= :max_minutes")
        params["max_minutes"] = high
    if plan.user is not None:
        conditions.extend(_state_conditions(q, params))
    return sql


def _state_conditions(q: Query, params: dict[str, Any]) -> list[str]:
    """`is:` filters: the reader's own entries."""
    entry = "SELECT 1 FROM entries AS e WHERE e.post_id = p.id AND e.user_id = :uid"
    conditions = []
    states = [str(f.value) for f in q.filters_for("is")]
    if states:
        alternatives = []
        listed = [s for s in states if s != "unread"]
        if listed:
            params["states"] = listed
            alternatives.append(f"EXISTS ({entry} AND e.state = ANY(:states))")
        if "unread" in states:
            alternatives.append(f"NOT EXISTS ({entry} AND {STARTED})")
        conditions.append("(" + " OR ".join(alternatives) + ")")
    for f in q.filters_for("is", negated=True):
        if f.value == "unread":
            conditions.append(f"EXISTS ({entry} AND {STARTED})")
        else:
            params[f"not_state_{f.value}"] = f.value
            conditions.append(f"NOT EXISTS ({entry} AND e.state = :not_state_{f.value})")
    return conditions


# Facet counts over a set of post ids: (field, value, label, count). `{ranking}` is ""
# or RANKING_SQL, which adds a row with the ids in relevance order, so that ranking the
# pool and counting its facets read its rows once.
FACETS_SQL = """
WITH pool AS MATERIALIZED (
    SELECT p.id, p.author, CAST(extract(year FROM p.published_on) AS integer) AS year,
           CASE WHEN p.reading_minutes < 5 THEN 'short'
                WHEN p.reading_minutes <= 10 THEN 'medium' ELSE 'long' END AS length,
           p.published_on, {score} AS score
    FROM posts AS p WHERE p.id = ANY(:ids)
)
{ranking}(SELECT 'author', author, author, count(*) AS n FROM pool WHERE author <> ''
 GROUP BY author ORDER BY n DESC, author LIMIT :authors)
UNION ALL (SELECT 'year', CAST(year AS text), '', count(*) AS n FROM pool
 WHERE year IS NOT NULL GROUP BY year ORDER BY n DESC, year DESC LIMIT :years)
UNION ALL (SELECT 'length', length, length, count(*) FROM pool GROUP BY length)
UNION ALL (SELECT 'topic', t.slug, t.name, count(*) AS n FROM pool
 JOIN post_topics AS pt ON pt.post_id = pool.id JOIN topics AS t ON t.id = pt.topic_id
 GROUP BY t.id ORDER BY n DESC, t.slug LIMIT :topics)
"""
# The pool's ids in relevance order, as one text value: exact titles first, then the
# score, then the most recently published.
RANKING_SQL = """(SELECT 'rank', string_agg(CAST(id AS text), ' '
    ORDER BY id = ANY(:exact) DESC, score DESC, published_on DESC NULLS LAST, id DESC), '', 0
 FROM pool)
UNION ALL """


class PostgresSearch:
    """Search with the tsvector, GIN index and title-key index of migration 0008."""

    def search(
        self, query: Query, user: Reader | None, *, sort: str, page: int, per_page: int
    ) -> SearchResults:
        plan = _plan(query, user)
        if not plan.has_text and sort == "relevance":
            sort = "newest"
        if plan.impossible:
            return _empty(plan, sort, page)
        sql = _compile(plan)
        where = sql.where
        cap = engine.COUNT_CAP
        # The newest matches, one past the cap, in one walk: how many there are is
        # the count (it stops at the cap), and when words matched, the first POOL of
        # them are the pool that relevance ranks and the facets count (the newest
        # added, as SQLite's index gives them). In id order, so that when many posts
        # match the planner walks the primary key and stops there, rather than
        # reading the table until it has found enough.
        found, newest = self._rows(
            "SELECT count(*), (array_agg(m.id ORDER BY m.id DESC))[1:CAST(:pool AS integer)]"
            f" FROM (SELECT p.id FROM posts AS p WHERE {where} ORDER BY p.id DESC LIMIT :cap)"
            " AS m",
            sql.params | {"cap": cap + 1, "pool": engine.POOL},
        )[0]
        more = found > cap
        total = min(found, cap)
        pool_ids = list(newest or [])
        sample = len(pool_ids) if total > len(pool_ids) else None
        exact: set[int] = set()
        if plan.has_text and sort == "relevance":
            # When the pool holds every match, one statement ranks it and counts its
            # facets (RANKING_SQL); else every match is scored for the page.
            exact = self._exact_title_ids(plan, sql)
            last_page = max(1, -(-total // per_page))
            page = min(page, last_page)
            start = (page - 1) * per_page
            if more or found > len(pool_ids):  # the pool doesn't hold every match
                _, facets = self._pool(plan.query, pool_ids, sample)
                limit = start + per_page + 1
                top = self._top_from_lists(plan, sql, limit)
                if top is None:
                    top = self._ids(
                        f"SELECT p.id FROM posts AS p, to_tsquery('{CONFIG}', :ranked) AS rq"
                        f" WHERE {where} ORDER BY {RANK.format(q='rq')} DESC,"
                        " p.published_on DESC NULLS LAST, p.id DESC LIMIT :limit",
                        sql.params | {"limit": limit},
                    )
            else:
                top, facets = self._pool(plan.query, pool_ids, sample, sql=sql, exact=exact)
            ranked_ids = sorted(exact, reverse=True) + [i for i in top if i not in exact]
            page_ids = ranked_ids[start : start + per_page]
            has_next = len(ranked_ids) > start + per_page
        else:
            last_page = max(1, -(-total // per_page))
            page = min(page, last_page)
            order_by = ORDER_BY[sort]
            ids = self._ids(
                f"SELECT p.id FROM posts AS p WHERE {where} ORDER BY {order_by}"
                " LIMIT :limit OFFSET :offset",
                sql.params | {"limit": per_page + 1, "offset": (page - 1) * per_page},
            )
            page_ids, has_next = ids[:per_page], len(ids) > per_page
            if not sql.words:
                # No words: the facets count the first POOL in this order instead.
                pool_ids = self._ids(
                    f"SELECT p.id FROM posts AS p WHERE {where} ORDER BY {order_by} LIMIT :pool",
                    sql.params | {"pool": engine.POOL},
                )
            _, facets = self._pool(plan.query, pool_ids, sample)
        snippets = self._snippets(sql, page_ids)
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

    def _top_from_lists(self, plan: _Plan, sql: _Sql, limit: int) -> list[int] | None:
        """A one-word query's first `limit` posts from the word's list of best posts
        (app/search/impacts.py), or None to score every match. ts_rank_cd has no
        corpus statistics, so a stored score is the score until its post changes:
        changed posts are scored afresh beside the list, and the answer is exact."""
        q = plan.query
        if (
            sql.ranked is None
            or len(q.groups) != 1
            or len(q.groups[0]) != 1
            or q.groups[0][0].prefix
            or q.filters_for("author")
        ):
            return None
        term = impacts.postgres_lexeme(sql.ranked)
        if term is None:
            return None
        if not (q.excluded or q.filters):
            user_id = plan.user.id if plan.user is not None else None
            top = impacts.top_of_one_list(term, limit, user_id)
            if top is not None:
                return top
        found = impacts.candidates([term], None)
        if found is None:
            return None
        rows = self._rows(
            f"SELECT p.id, -({RANK.format(q='rq')}) AS score"
            f" FROM posts AS p, to_tsquery('{CONFIG}', :ranked) AS rq"
            f" WHERE p.id = ANY(:candidates) AND {sql.where}"
            " ORDER BY score, p.published_on DESC NULLS LAST, p.id DESC LIMIT :limit",
            sql.params | {"candidates": found.ids, "limit": limit},
        )
        if len(rows) >= limit and rows[limit - 1][1] < found.bound:
            return [row[0] for row in rows]
        return None

    def _exact_title_ids(self, plan: _Plan, sql: _Sql) -> set[int]:
        """Posts whose whole title is the searched words, if the query is plain words:
        one lookup in the title-key index, each hit checked against the query."""
        terms = plan.query.terms
        if any(len(group) > 1 for group in plan.query.groups) or any(t.prefix for t in terms):
            return set()
        return set(
            self._ids(
                "SELECT p.id FROM posts AS p WHERE dogear_title_key(p.title)"
                f" = dogear_title_key(:key) AND {sql.where} LIMIT 5",
                sql.params | {"key": " ".join(t.text for t in terms)},
            )
        )

    def _snippets(self, sql: _Sql, ids: list[int]) -> dict[int, Markup]:
        """Summaries with the matched words marked, for the posts on the page; for a
        post whose summary didn't match, the article's own text around the match, so
        a post found by a word of its body shows why."""
        if sql.ranked is None or not ids:
            return {}
        rows = self._rows(
            "SELECT id, summary, summary_headline,"
            f" CASE WHEN strpos(summary_headline, :open) = 0 AND content_text IS NOT NULL"
            f" THEN ts_headline('{CONFIG}', replace(content_text, '<', :lt), q, :options) END"
            " FROM (SELECT p.id, p.summary, p.content_text, q,"
            f" ts_headline('{CONFIG}', replace(p.summary, '<', :lt), q, :options)"
            "   AS summary_headline"
            f" FROM posts AS p, to_tsquery('{CONFIG}', :ranked) AS q"
            " WHERE p.id = ANY(:ids)) AS page",
            {
                "ranked": sql.ranked,
                "ids": ids,
                "lt": LESS_THAN,
                "open": MARK_OPEN,
                "options": HEADLINE_OPTIONS,
            },
        )
        snippets = {}
        for post_id, summary, fragment, body_fragment in rows:
            snippet = _snippet(summary, fragment)
            if body_fragment and MARK_OPEN in body_fragment:
                snippet = _marked("…" + body_fragment.replace(LESS_THAN, "<").strip() + "…")
            if snippet is not None:
                snippets[post_id] = snippet
        return snippets

    def related_posts(
        self, post: engine.RelatedTo, user: Reader | None, limit: int
    ) -> list[RelatedPost]:
        """Rank posts by ts_rank_cd against the post's rarest shared words; fill up with
        posts sharing its topics."""
        words = _distinctive_words(f"{post.title} {post.summary}")[:24]
        params: dict[str, Any] = {"post": post.id}
        visible = _visible(user, params)
        found: list[int] = []
        chosen = engine.related_words(_related_words, post.id, words)
        if chosen:
            q = f"to_tsquery('{CONFIG}', :match)"
            found = self._ids(
                f"SELECT m.id FROM (SELECT p.id, {RANK.format(q=q)} AS score FROM posts AS p"
                f" WHERE p.search_vector @@ {q} AND p.id <> :post AND {visible}"
                " ORDER BY p.id DESC LIMIT :pool) AS m ORDER BY m.score DESC, m.id DESC"
                " LIMIT :limit",
                params | {"match": " | ".join(chosen), "pool": engine.POOL, "limit": limit},
            )
        if len(found) < limit and post.topics:
            topics = {f"topic{i}": topic.id for i, topic in enumerate(post.topics)}
            shares = " AND ".join(
                f"EXISTS (SELECT 1 FROM post_topics AS pt WHERE pt.post_id = p.id"
                f" AND pt.topic_id = :{name})"
                for name in topics
            )
            more = self._ids(
                f"SELECT p.id FROM posts AS p WHERE {shares} AND p.id <> :post AND {visible}"
                " ORDER BY p.id DESC LIMIT :limit",
                params | topics | {"limit": limit * 2},
            )
            found += [i for i in more if i not in found]
        return related_rows(found[:limit])

    def _pool(
        self,
        query: Query,
        ids: list[int],
        sample: int | None,
        *,
        sql: _Sql | None = None,
        exact: set[int] | frozenset[int] = frozenset(),
    ) -> tuple[list[int], Facets]:
        """Facet counts over the posts with these ids, aggregated in one statement.
        With `sql`, the same statement ranks them for relevance (see RANKING_SQL):
        the ids come back in that order, else as given."""
        counter = FacetCounter(query)
        params: dict[str, Any] = {
            "ids": ids,
            "authors": MAX_AUTHORS,
            "years": MAX_YEARS,
            "topics": MAX_TOPICS,
        }
        score, ranking = "NULL", ""
        if sql is not None:
            ranking = RANKING_SQL
            params["exact"] = sorted(exact)
            if sql.ranked is not None:
                score = RANK.format(q=f"to_tsquery('{CONFIG}', :ranked)")
                params["ranked"] = sql.ranked
        rows = self._rows(FACETS_SQL.format(score=score, ranking=ranking), params) if ids else []
        ordered = ids
        for name, value, _, _ in rows:
            if name == "rank":
                ordered = [int(i) for i in (value or "").split()]
        counter.add_counts(
            (name, int(value), label, n) if name == "year" else (name, value, label, n)
            for name, value, label, n in rows
            if name != "rank"
        )
        return ordered, counter.build(sample)

    @staticmethod
    def _rows(sql: str, params: dict[str, Any]) -> list[Any]:
        return list(db.session.execute(text(sql), params).all())

    def _ids(self, sql: str, params: dict[str, Any]) -> list[int]:
        return [row[0] for row in self._rows(sql, params)]


def _snippet(summary: str, fragment: str | None) -> Markup | None:
    """ts_headline's excerpt of a summary, escaped and marked, with "…" where it was
    cut; None when there is nothing to show, or when the summary holds our markers."""
    if not fragment or any(c in summary for c in (MARK_OPEN, MARK_CLOSE, LESS_THAN)):
        return None
    fragment = fragment.replace(LESS_THAN, "<").strip()
    plain = fragment.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")
    whole = summary.strip()
    start = whole.find(plain)
    if start > 0:
        fragment = "…" + fragment
    if start >= 0 and start + len(plain) < len(whole):
        fragment += "…"
    return _marked(fragment)


def _related_words(words: Sequence[str]) -> list[str]:
    """The rarest of `words` shared with other posts (2 to RELATED_MAX_DOCS of them hold
    it in their title, summary or topics), rarest first, eight at most, as tsquery
    operands weighted for related posts."""
    queries = [_operand(w, weights=RELATED_WEIGHTS) for w in words]
    probed = _uncommon(queries)
    if not probed:
        return []
    # How many posts hold each word, up to RELATED_MAX_DOCS + 1. The ORDER BY keeps a
    # common word from turning the LIMIT into a table scan. Numbered by slot, not by
    # the word's place: one statement text per number of words, so the compiled
    # statements SQLAlchemy keeps stay few.
    counts = PostgresSearch._rows(
        " UNION ALL ".join(
            f"SELECT {k}, (SELECT count(*) FROM (SELECT 1 FROM posts AS p"
            f" WHERE p.search_vector @@ to_tsquery('{CONFIG}', :w{k})"
            f" ORDER BY p.id DESC LIMIT {RELATED_MAX_DOCS + 1}) AS m)"
            for k in range(len(probed))
        ),
        {f"w{k}": queries[i] for k, i in enumerate(probed)},
    )
    shared = sorted((n, probed[k]) for k, n in counts if 2 <= n <= RELATED_MAX_DOCS)
    return [queries[i] for _, i in shared[:8]]


def _uncommon(queries: list[str]) -> list[int]:
    """The indexes of the words worth counting: not those the impact-ordered lists
    know to be in more than RELATED_MAX_DOCS posts. Counting one of those walked
    its posting list, and a post's two dozen words cost 30 ms."""
    if not queries:
        return []
    stemmed = PostgresSearch._rows(
        " UNION ALL ".join(
            f"SELECT {i}, CAST(to_tsquery('{CONFIG}', :w{i}) AS text)" for i in range(len(queries))
        ),
        {f"w{i}": q for i, q in enumerate(queries)},
    )
    lexemes = {i: match.group(1) for i, q in stemmed if (match := _ONE_LEXEME.match(q or ""))}
    common = impacts.frequent_terms(lexemes.values(), RELATED_MAX_DOCS)
    return [i for i in range(len(queries)) if lexemes.get(i) not in common]

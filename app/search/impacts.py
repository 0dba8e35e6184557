"""Impact-ordered lists: the true top 20 of a common-word search without scoring
every match (SQLite; migration 0012).

FTS5 computes bm25 for every row a query matches, so ranking the 25,000 posts that
hold a common word costs ~30 ms. Instead, for each index term in more than
`SEARCH_IMPACT_MIN_DOCS` posts, `rebuild()` stores its `SEARCH_IMPACT_DEPTH` best
posts by the term's own weighted bm25. A query's bm25 is the sum of its words' own
scores (filter tokens weigh nothing), so for a query made of such words:

- the candidates are the posts on the words' lists, plus every post changed since
  the lists were built (`search_changes`, filled by triggers);
- the candidates are scored exactly, by the query itself, in one pass over its
  matches (bm25 is computed for the candidates only);
- a post on no list scores no better than the sum of each list's last score (its
  `bound`), so when the 20th candidate is strictly better than that, the page is the
  true top 20 (Fagin's threshold algorithm, with one read of each list). Otherwise,
  or when a word has no list, the caller scores every match.

While nothing in the index changed since the lists were built, a one-word query
without filters needs no scoring at all: its list's stored scores are the scores,
and only who may see each post is checked (`top_of_one_list`).

The lists are rebuilt by a periodic job when posts changed (`app/search/tasks.py`)
and by `dogear search rebuild`, each term in its own short transaction. Between
rebuilds, the words' document counts drift a little from those the stored scores
were computed with; the candidates are always scored afresh, only the bound is
stale, and only by that drift.
"""

# ruff: noqa: S608 - statements assembled from this module's constants; values bound.

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, text

from app.extensions import db
from app.search.parser import Query

# Mirrors posts_fts's tokenizer (migrations 0002 and 0005).
TOKENIZE = "porter unicode61 remove_diacritics 2"
SEARCH_COLUMNS = "{title summary author topics content}"  # as app.search.sqlite
FIRST_READ = 200  # list entries read first; the whole list if that can't decide
MAX_CHANGES = 2000  # more changed posts than this: score every match until a rebuild


@dataclass(frozen=True)
class Candidates:
    """Posts that may be in the top, and the best score any other match can have."""

    ids: list[int]
    bound: float
    exhausted: bool  # every list was read to its end


_stemmer_lock = threading.Lock()
_stemmer: sqlite3.Connection | None = None


@lru_cache(maxsize=4096)
def index_terms(word: str) -> tuple[str, ...]:
    """The terms posts_fts's tokenizer makes of `word` (stemmed, folded), in order.

    A private in-memory FTS5 table with the same tokenizer does the work, so the
    terms are exactly the index's, whatever SQLite's Porter stemmer does.
    """
    global _stemmer
    with _stemmer_lock:
        if _stemmer is None:
            _stemmer = sqlite3.connect(":memory:", check_same_thread=False)
            _stemmer.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize = '{TOKENIZE}')")
            _stemmer.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(words, instance)")
        _stemmer.execute("DELETE FROM words")
        _stemmer.execute("INSERT INTO words (w) VALUES (?)", (word,))
        return tuple(row[0] for row in _stemmer.execute("SELECT term FROM terms ORDER BY offset"))


def query_terms(query: Query) -> list[str] | None:
    """The index terms of a query of plain words, one per word (repeats kept: each
    counts in bm25), or None when the lists can't answer it: a prefix, a phrase of
    several words, or an author filter (an author phrase adds to the score)."""
    if query.filters_for("author"):
        return None
    terms: list[str] = []
    for group in query.groups:
        for term in group:
            if term.prefix:
                return None
            tokens = index_terms(term.text)
            if len(tokens) != 1:
                return None
            terms.append(tokens[0])
    return terms or None


def frequent_terms(terms: Iterable[str], more_than: int) -> set[str]:
    """Those of `terms` in more than `more_than` posts, as far as the lists know: only
    terms with a list are counted (each was in more than SEARCH_IMPACT_MIN_DOCS posts
    when the lists were last built), so a term without one isn't in the answer."""
    wanted = sorted(set(terms))
    if not wanted:
        return set()
    return set(
        db.session.scalars(
            text(
                "SELECT term FROM search_impact_terms WHERE term IN :terms AND docs > :more_than"
            ).bindparams(bindparam("terms", expanding=True)),
            {"terms": wanted, "more_than": more_than},
        )
    )


def candidates(terms: Sequence[str], depth: int | None) -> Candidates | None:
    """The first `depth` posts (all, when None) of each term's list, the posts changed
    since the lists were built, and the bound; None when a term has no list or too
    many posts changed."""
    rows = db.session.execute(
        text(
            "SELECT term, depth, last_score, complete FROM search_impact_terms"
            " WHERE term IN :terms"
        ).bindparams(bindparam("terms", expanding=True)),
        {"terms": sorted(set(terms))},
    ).all()
    lists = {term: (stored, last, bool(complete)) for term, stored, last, complete in rows}
    if len(lists) < len(set(terms)):
        return None
    changed = [
        row[0]
        for row in db.session.execute(
            text("SELECT DISTINCT post_id FROM search_changes LIMIT :limit"),
            {"limit": MAX_CHANGES + 1},
        )
    ]
    if len(changed) > MAX_CHANGES:
        return None
    ids = set(changed)
    bounds: dict[str, float] = {}
    exhausted = True
    for term in set(terms):
        stored, last, complete = lists[term]
        read = stored if depth is None else min(depth, stored)
        entries = db.session.execute(
            text(
                "SELECT post_id, score FROM search_impacts WHERE term = :term"
                " ORDER BY score LIMIT :limit"
            ),
            {"term": term, "limit": read},
        ).all()
        ids.update(row[0] for row in entries)
        if read < stored:
            exhausted = False
            bounds[term] = entries[-1][1] if entries else 0.0
        else:
            # Past the list: posts scoring no better than its last, or none at all.
            bounds[term] = 0.0 if complete else last
    return Candidates(
        ids=sorted(ids), bound=sum(bounds[term] for term in terms), exhausted=exhausted
    )


def top_of_one_list(term: str, limit: int, user_id: int | None) -> list[int] | None:
    """A one-word query's first `limit` posts straight from its list, when nothing in
    the index changed since the lists were built: the stored scores are then the
    scores, so only who may see each post is checked. None when that can't answer."""
    found = db.session.execute(
        text(
            "SELECT last_score, complete FROM search_impact_terms WHERE term = :term"
            " AND NOT EXISTS (SELECT 1 FROM search_changes)"
        ),
        {"term": term},
    ).first()
    if found is None:
        return None
    last, complete = found
    visible = "p.owner_id IS NULL"
    if user_id is not None:
        visible += (
            " OR p.owner_id = :uid OR EXISTS (SELECT 1 FROM entries AS e"
            " WHERE e.post_id = p.id AND e.user_id = :uid)"
        )
    rows = db.session.execute(
        text(
            "SELECT i.post_id, i.score FROM search_impacts AS i JOIN posts AS p"
            f" ON p.id = i.post_id WHERE i.term = :term AND ({visible})"
            f" ORDER BY i.score, {_newest_first()} LIMIT :limit"
        ),
        {"term": term, "uid": user_id, "limit": limit},
    ).all()
    if complete or (len(rows) == limit and rows[-1][1] < last):
        return [row[0] for row in rows]
    return None


def rebuild(min_docs: int | None = None, depth: int | None = None) -> int:
    """Build every frequent term's list afresh, one term per transaction; returns the
    number of lists."""
    config = current_app.config
    min_docs = config["SEARCH_IMPACT_MIN_DOCS"] if min_docs is None else min_docs
    depth = config["SEARCH_IMPACT_DEPTH"] if depth is None else depth
    postgres = db.session.get_bind().dialect.name == "postgresql"
    # Changes up to here are in the lists built below; later ones stay recorded.
    up_to = db.session.execute(text("SELECT coalesce(max(seq), 0) FROM search_changes")).scalar()
    frequent = _frequent_postgres(min_docs) if postgres else _frequent_sqlite(min_docs)
    db.session.commit()
    built: list[str] = []
    for term, docs in frequent:
        # The list is found by searching for the term itself: only a term the
        # language's stemmer leaves as it is can be (stems are not all fixed points).
        if postgres:
            ranked = _postgres_ranked(term)
            if ranked is None:
                continue
            _build_list(term, docs, depth, _postgres_list(ranked), {"ranked": ranked})
        else:
            if index_terms(term) != (term,):
                continue
            match = f'{SEARCH_COLUMNS}: "{term}"'
            _build_list(term, docs, depth, _sqlite_list(), {"match": match})
        built.append(term)
    stale = {"built": built}
    keep = "term NOT IN :built" if built else "TRUE"
    for table in ("search_impacts", "search_impact_terms"):
        statement = text(f"DELETE FROM {table} WHERE {keep}")
        if built:
            statement = statement.bindparams(bindparam("built", expanding=True))
        db.session.execute(statement, stale)
    db.session.execute(text("DELETE FROM search_changes WHERE seq <= :seq"), {"seq": up_to})
    db.session.commit()
    return len(built)


def _frequent_sqlite(min_docs: int) -> list[Any]:
    db.session.execute(
        text(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_vocab"
            " USING fts5vocab(main, posts_fts, row)"
        )
    )
    return db.session.execute(
        text(
            "SELECT term, doc FROM temp.search_vocab WHERE doc > :min_docs"
            " AND term NOT GLOB 'dgx*'"
        ),
        {"min_docs": min_docs},
    ).all()


def _frequent_postgres(min_docs: int) -> list[Any]:
    return db.session.execute(
        text(
            "SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM posts')"
            " WHERE ndoc > :min_docs"
        ),
        {"min_docs": min_docs},
    ).all()


def _sqlite_list() -> str:
    from app.search.sqlite import WEIGHTS

    return (
        f"SELECT :term, bm25(posts_fts, {WEIGHTS}) AS score, rowid FROM posts_fts"
        " WHERE posts_fts MATCH :match ORDER BY score LIMIT :depth"
    )


def _postgres_list(ranked: str) -> str:
    """Scores negated, so that on both databases a lower score is better."""
    from app.search.postgres import CONFIG, RANK

    return (
        f"SELECT :term, -({RANK.format(q='q')}) AS score, p.id"
        f" FROM posts AS p, to_tsquery('{CONFIG}', :ranked) AS q"
        " WHERE p.search_vector @@ q ORDER BY score, p.id LIMIT :depth"
    )


def _postgres_ranked(term: str) -> str | None:
    """The tsquery text the PostgreSQL engine ranks one word by, if it is this very
    lexeme (else None)."""
    from app.search.postgres import ranked_text

    ranked = ranked_text(term)
    if ranked is None:
        return None
    stemmed = db.session.execute(
        text("SELECT CAST(to_tsquery('dogear', :ranked) AS text)"), {"ranked": ranked}
    ).scalar()
    return ranked if stemmed == f"'{term}'" else None


def postgres_lexeme(ranked: str) -> str | None:
    """The one lexeme a PostgreSQL ranking tsquery stands for, or None."""
    stemmed = db.session.execute(
        text("SELECT CAST(to_tsquery('dogear', :ranked) AS text)"), {"ranked": ranked}
    ).scalar()
    if stemmed and stemmed.count("'") == 2 and stemmed.startswith("'") and stemmed.endswith("'"):
        return stemmed[1:-1]
    return None


def _newest_first() -> str:
    if db.session.get_bind().dialect.name == "postgresql":
        return "p.published_on DESC NULLS LAST, p.id DESC"
    return "p.published_on DESC, p.id DESC"


def _build_list(term: str, docs: int, depth: int, select_sql: str, params: dict[str, Any]) -> None:
    """One term's list, in a transaction of its own."""
    params = params | {"term": term, "depth": depth}
    db.session.execute(text("DELETE FROM search_impacts WHERE term = :term"), params)
    db.session.execute(
        text(f"INSERT INTO search_impacts (term, score, post_id) {select_sql}"), params
    )
    stored, last = db.session.execute(
        text("SELECT count(*), max(score) FROM search_impacts WHERE term = :term"), params
    ).one()
    db.session.execute(text("DELETE FROM search_impact_terms WHERE term = :term"), params)
    db.session.execute(
        text(
            "INSERT INTO search_impact_terms (term, docs, depth, last_score, complete)"
            " VALUES (:term, :docs, :stored, :last, :complete)"
        ),
        params | {"docs": docs, "stored": stored, "last": last or 0.0, "complete": stored >= docs},
    )
    db.session.commit()


def pending_changes() -> int:
    """Posts changed since the lists were built."""
    return int(db.session.execute(text("SELECT count(*) FROM search_changes")).scalar() or 0)

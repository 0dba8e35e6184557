"""Relevance ranks every match: the first page is the true top by the documented
ranking (exact title, then weighted relevance, ties newest first), however many posts
match and however new the best ones are.

The catalog here is built so that the best matches are the *oldest* posts: a ranking
of only the newest matches (what Dogear did before) gets the first page wrong. The
true order is computed by brute force: every match scored by the database itself.
SQLite's impact-ordered lists (app/search/impacts.py) get their own tests: they must
give the same page, including posts written after the lists were built.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from app.extensions import db
from app.models import Post, Topic
from app.search import engine, impacts
from app.search.parser import parse
from app.search.tasks import refresh_impacts
from tests.conftest import ON_POSTGRES


def brute_force(q: str) -> list[int]:
    """Every shared-catalog post matching the words `q` (all of them), by the ranking
    the engines document, as the database scores it: no lists, no pools."""
    words = list(dict.fromkeys(q.split()))  # as the parser reads them: once each
    if ON_POSTGRES:
        from app.search.postgres import CONFIG, RANK

        tsquery = " & ".join(f"'{word}'" for word in words)
        sql = (
            f"SELECT p.id FROM posts AS p, to_tsquery('{CONFIG}', :q) AS q"
            " WHERE p.search_vector @@ q AND p.owner_id IS NULL"
            f" ORDER BY {RANK.format(q='q')} DESC, p.published_on DESC NULLS LAST, p.id DESC"
        )
        return list(db.session.scalars(text(sql), {"q": tsquery}))
    from app.search.sqlite import SEARCH_COLUMNS, WEIGHTS

    match = f"{SEARCH_COLUMNS}: ({' AND '.join(words)}) AND {{meta}}: dgxpublic"
    sql = (
        f"SELECT p.id FROM posts_fts JOIN posts AS p ON p.id = posts_fts.rowid"
        f" WHERE posts_fts MATCH :match"
        f" ORDER BY bm25(posts_fts, {WEIGHTS}), p.published_on DESC, p.id DESC"
    )
    return list(db.session.scalars(text(sql), {"match": match}))


def ranked(q: str, per_page: int = 20, page: int = 1) -> list[int]:
    results = engine.search(parse(q), None, per_page=per_page, page=page)
    return [hit.post.id for hit in results.page.items]


@pytest.fixture
def otters(app, make_post):
    """60 posts about otters, the strongest the oldest; some also about rivers."""
    ids = []
    for n in range(60):
        strength = 60 - n  # the first posts are the best matches
        words = " ".join(["otter"] * (1 + strength // 12))
        filler = " ".join(["plain"] * (n % 7 + 1))
        river = " river" if n % 2 == 0 else ""
        post = make_post(
            title=f"Otter field notes {n}" if strength > 50 else f"Field notes {n}",
            summary=f"{words} {filler}{river}",
            published_on=date(2020, 1, 1 + n % 28).replace(year=2000 + n // 28),
        )
        ids.append(post.id)
    db.session.commit()
    return ids


def test_the_first_page_is_the_true_top_20_over_every_match(otters, monkeypatch):
    # Fewer matches counted and pooled than exist: the ranking may not depend on either.
    monkeypatch.setattr(engine, "COUNT_CAP", 10)
    monkeypatch.setattr(engine, "POOL", 5)
    for q in ("otter", "otter river", "notes otter"):
        truth = brute_force(q)
        assert len(truth) > 20
        assert ranked(q) == truth[:20], q
    # Pages stop at the count's cap; below it, the second page continues the first.
    monkeypatch.setattr(engine, "COUNT_CAP", 1000)
    truth = brute_force("otter")
    assert ranked("otter", page=2) == truth[20:40]
    # The oldest posts are the best: a ranking of the newest matches would miss them.
    assert brute_force("otter")[0] == otters[0]


def test_the_page_through_http_is_the_true_top(client, otters, monkeypatch):
    monkeypatch.setattr(engine, "COUNT_CAP", 10)
    monkeypatch.setattr(engine, "POOL", 5)
    body = client.get("/search", query_string={"q": "otter"}).get_data(as_text=True)
    truth = brute_force("otter")[:20]
    positions = [body.index(f"/posts/{post_id}") for post_id in truth]
    assert positions == sorted(positions)
    assert "10+ results" in body
    assert "most recently added" not in body


# --- Impact-ordered lists (app/search/impacts.py) -------------------------------------


@pytest.fixture
def small_lists(app, otters, monkeypatch):
    """Lists for words in more than 5 posts, 20 deep, read 4 at a time first; counts
    stop at 10, so every query here has "many" matches and asks the lists first."""
    monkeypatch.setattr(engine, "COUNT_CAP", 10)
    monkeypatch.setattr(impacts, "FIRST_READ", 4)
    app.config.update(SEARCH_IMPACT_MIN_DOCS=5, SEARCH_IMPACT_DEPTH=20)
    assert impacts.rebuild() > 0
    assert impacts.pending_changes() == 0
    return otters


def test_the_lists_answer_with_the_true_top(small_lists):
    stored = db.session.execute(
        text("SELECT count(*) FROM search_impacts WHERE term = 'otter'")
    ).scalar()
    assert stored == 20
    for q in ("otter", "otter river", "river otter otter"):
        assert ranked(q, per_page=5) == brute_force(q)[:5], q
    # OR and an excluded word: the same candidates, checked against the whole query.
    assert len(ranked("otter OR river", per_page=5)) == 5
    assert ranked("otter -zebra", per_page=5) == brute_force("otter")[:5]


def test_the_first_page_comes_from_the_lists(small_lists):
    """Proof the lists are used (and that the test above could fail): a list that
    lost its best post gives a page without it, until the lists are rebuilt."""
    best = brute_force("otter")[0]
    assert ranked("otter", per_page=5)[0] == best
    db.session.execute(
        text("DELETE FROM search_impacts WHERE term = 'otter' AND post_id = :id"), {"id": best}
    )
    db.session.commit()
    assert best not in ranked("otter", per_page=5)
    impacts.rebuild()
    assert ranked("otter", per_page=5)[0] == best


def test_posts_written_after_the_lists_are_ranked_too(small_lists, make_post):
    new = make_post(title="Otter otter otter", summary="otter otter otter otter")
    old = db.session.get(Post, small_lists[-1])  # the weakest match
    old.title = "Otter otter otter otter"
    db.session.commit()
    assert impacts.pending_changes() >= 2
    top = ranked("otter", per_page=5)
    assert top == brute_force("otter")[:5]
    assert {new.id, old.id} <= set(top)
    # A topic renamed: its posts' indexed text changed too.
    topic = Topic(slug="mammals", name="Mammals")
    weak = db.session.get(Post, small_lists[-2])
    weak.topics.append(topic)
    db.session.commit()
    impacts.rebuild()
    assert impacts.pending_changes() == 0
    before = brute_force("otter").index(weak.id)
    topic.name = "Otter " * 9
    db.session.commit()
    assert impacts.pending_changes() == 1
    position = brute_force("otter").index(weak.id)
    assert position < before and position < 15, (before, position)
    assert ranked("otter", per_page=position + 1) == brute_force("otter")[: position + 1]


def test_the_worker_rebuilds_the_lists_when_posts_changed(app, small_lists, make_post):
    assert refresh_impacts.call_local() == 0  # nothing changed: nothing to do
    make_post(title="Otter otter otter", summary="otter")
    assert impacts.pending_changes() == 1
    assert refresh_impacts.call_local() > 0
    db.session.rollback()  # a fresh read: the job committed in its own session
    assert impacts.pending_changes() == 0


def test_words_the_lists_cannot_answer_are_scored_in_full(small_lists):
    # A prefix, a phrase and an author filter all fall back to scoring every match.
    for q in ("ott*", '"otter plain"', "otter author:ada"):
        found = ranked(q, per_page=5)
        assert len(found) == 5, q
    assert ranked("ott*", per_page=5) == brute_force("otter")[:5]


@pytest.mark.sqlite_only
def test_index_terms_are_the_index_s_own():
    assert impacts.index_terms("Running") == ("run",)
    assert impacts.index_terms("café") == ("cafe",)
    assert impacts.index_terms("event-loop") == ("event", "loop")


def test_a_private_post_on_a_list_shows_only_to_who_may_see_it(small_lists, make_post, make_user):
    owner = make_user("owner@example.com")
    stranger = make_user("stranger@example.com")
    private = make_post(title="Otter otter otter otter", owner_id=owner.id)
    impacts.rebuild()
    assert impacts.pending_changes() == 0  # the one-word path answers from the list alone

    def top(user):
        results = engine.search(parse("otter"), user, per_page=5)
        return [hit.post.id for hit in results.page.items]

    assert private.id in top(owner)
    assert private.id not in top(stranger) and private.id not in top(None)
    assert top(None) == brute_force("otter")[:5]
    # Deleting a post is a change too: until the next rebuild, the lists' posts are
    # scored afresh.
    db.session.delete(db.session.get(Post, brute_force("otter")[0]))
    db.session.commit()
    assert impacts.pending_changes() == 1
    assert top(None) == brute_force("otter")[:5]

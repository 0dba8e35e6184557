"""Result cards rendered once and reused: the part of a post's card that is the same
for every reader (title, meta, summary, topics), kept per worker.

Browse and search show 20 cards a page, and rendering them was a quarter of a
page's CPU. A card's shared parts are rendered by the macros of
templates/macros/posts.html on first use and kept, keyed by the post, the heading
level, the mount point and the catalog version (app/catalog/version.py), which every
write to posts, their topics, topics or sources changes in the same transaction.
So any change to a post or its topics (a topic renamed included) makes new keys on
every worker and host, without a flush; the old entries age out of the LRU. The
reader's own part (the Save toggle with their state) is rendered per request by the
caller and never kept, nor is a search's snippet, which replaces the summary. (The
Save button a reader sees on a post they haven't saved is the same for everyone, so
the card keeps that one.)

Only posts the reader may see reach a card, so sharing a private post's card between
the readers who can see it shows nobody anything new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app, get_template_attribute, request
from markupsafe import Markup

from app.catalog import version
from app.kept import Kept
from app.models import Post
from app.search.engine import load_posts

# (mount point, catalog version, post id, heading level) -> card; sized by the app's
# CARD_CACHE_SIZE when cards are added.
_cards: Kept[tuple[str, str, int, str], Card] = Kept(0)


@dataclass(frozen=True)
class Card:
    post_id: int
    head: Markup  # the opening <article>, the title and the meta line
    summary: Markup  # the post's own summary paragraph ("" without one)
    topics: Markup  # the topic list ("" without topics)
    save: Markup  # the Save toggle of a signed-in reader who hasn't saved the post


def cards(post_ids: Sequence[int], heading: str = "h2") -> list[Card]:
    """The cards of these posts, in this order. Kept cards cost a dictionary lookup
    each; only the posts whose cards aren't kept are read (one query, and one for
    their topics) and rendered. A page of results therefore needs just its post ids
    (plain rows), not the posts."""
    page_version = version.for_page()
    keys = {post_id: (request.script_root, page_version, post_id, heading) for post_id in post_ids}
    found = {post_id: card for post_id, key in keys.items() if (card := _cards.get(key))}
    missing = [post_id for post_id in keys if post_id not in found]
    if missing:
        made = {post.id: _render(post, heading) for post in load_posts(missing)}
        _cards.size = current_app.config["CARD_CACHE_SIZE"]
        for post_id, card in made.items():
            _cards.put(keys[post_id], card)
        found.update(made)
    return [found[post_id] for post_id in post_ids if post_id in found]


def _render(post: Post, heading: str) -> Card:
    def macro(name: str, template: str = "macros/posts.html") -> Markup:
        return get_template_attribute(template, name)

    return Card(
        post_id=post.id,
        head=macro("card_head")(post, heading),
        summary=macro("card_summary")(post),
        topics=macro("topic_list")(post),
        save=macro("save_button", "macros/lists.html")(post.id),
    )


def cached_count() -> int:
    """How many cards this worker keeps (tests and diagnostics)."""
    return len(_cards)


def clear() -> None:
    _cards.clear()

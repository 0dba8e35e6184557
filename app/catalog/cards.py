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
caller and never kept, nor is a search's snippet, which replaces the summary.

Only posts the reader may see reach a card, so sharing a private post's card between
the readers who can see it shows nobody anything new.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from flask import current_app, get_template_attribute, request
from markupsafe import Markup

from app.catalog import version
from app.models import Post

_lock = threading.Lock()
_cards: OrderedDict[tuple[str, str, int, str], Card] = OrderedDict()


@dataclass(frozen=True)
class Card:
    head: Markup  # the opening <article>, the title and the meta line
    summary: Markup  # the post's own summary paragraph ("" without one)
    topics: Markup  # the topic list ("" without topics)


def card(post: Post, heading: str = "h2") -> Card:
    """The shared parts of `post`'s card, from the cache or rendered now."""
    key = (request.script_root, version.for_page(), post.id, heading)
    with _lock:
        found = _cards.get(key)
        if found is not None:
            _cards.move_to_end(key)
            return found
    made = Card(
        head=get_template_attribute("macros/posts.html", "card_head")(post, heading),
        summary=get_template_attribute("macros/posts.html", "card_summary")(post),
        topics=get_template_attribute("macros/posts.html", "topic_list")(post),
    )
    limit = current_app.config["CARD_CACHE_SIZE"]
    with _lock:
        _cards[key] = made
        while len(_cards) > limit:
            _cards.popitem(last=False)
    return made


def cached_count() -> int:
    """How many cards this worker keeps (tests and diagnostics)."""
    return len(_cards)


def clear() -> None:
    with _lock:
        _cards.clear()

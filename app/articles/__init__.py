"""Turn fetched bytes into a clean article for Dogear's reader view.

reader.py decides what a document is and decodes it, extract.py finds an HTML page's main
content and metadata (trafilatura), sanitize.py makes the HTML safe to show (nh3).
Nothing here fetches anything: callers pass the bytes they already have.
"""

from app.articles.reader import (
    WORDS_PER_MINUTE,
    Article,
    NotAnArticle,
    decode_html,
    read_document,
)
from app.articles.sanitize import html_to_text, sanitize_html

__all__ = [
    "WORDS_PER_MINUTE",
    "Article",
    "NotAnArticle",
    "decode_html",
    "html_to_text",
    "read_document",
    "sanitize_html",
]

"""Make untrusted article HTML safe for the reader view, and turn it into plain text.

Two passes: lxml rewrites the structure (images become links to the original, links become
absolute, h1 becomes h2, dead content goes), then nh3 (ammonia) enforces the allow-list. nh3
always runs last and re-parses, so nothing the lxml pass misses can slip through.
"""

from __future__ import annotations

import math
import re
from html import escape
from urllib.parse import urljoin, urlsplit

import lxml.html
import nh3
from lxml import etree

ALLOWED_TAGS = frozenset(
    {
        *("h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "ul", "ol", "li"),
        *("blockquote", "q", "cite", "pre", "code", "kbd", "samp", "var"),
        *("em", "strong", "b", "i", "u", "s", "del", "ins", "sub", "sup", "small", "mark"),
        *("abbr", "time", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "th", "td"),
        *("caption", "a", "figure", "figcaption", "span"),
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "ol": {"start"},
    "time": {"datetime"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
PLACEHOLDER_CLASS = "image-placeholder"
EMPTY_ALT_LABEL = "Image on the original page"

# Removed with everything inside them: their text is code, UI or fallback, never article prose.
_DROP_WITH_CONTENT = frozenset(
    {
        *("script", "style", "template", "noscript", "title", "head", "meta", "link", "base"),
        *("iframe", "frame", "frameset", "object", "embed", "applet", "param"),
        *("svg", "math", "canvas", "audio", "video", "track", "map", "area"),
        *("form", "input", "button", "select", "option", "textarea", "datalist", "dialog"),
    }
)
# nh3 needs this set disjoint from the allowed tags; the lxml pass already removed these, nh3
# removes them again in case the lxml parser and html5ever disagree about where one ends.
_NH3_CLEAN_CONTENT = {
    *("script", "style", "template", "noscript", "title", "iframe", "frame", "frameset"),
    *("object", "embed", "applet", "svg", "math", "canvas", "audio", "video"),
    *("form", "button", "select", "textarea", "dialog"),
}
# An image placeholder standing directly in one of these gets its own paragraph.
_BLOCK_CONTAINERS = frozenset(
    {"body", "div", "section", "article", "main", "header", "footer", "aside", "blockquote"}
)
_IMAGE_TAGS = ("img", "graphic")
_VOID_TAGS = (
    *("area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta"),
    *("param", "source", "track", "wbr"),
)
_LAZY_SRC_ATTRS = ("data-src", "data-original", "data-lazy-src", "data-url")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def sanitize_html(html: str, base_url: str) -> str:
    """Return an allow-listed HTML fragment whose links are absolute and whose images are links.

    Images are never kept as <img>: loading them would tell the site who is reading and
    break Dogear's CSP, so each becomes a visible link to the original image instead.
    """
    body = parse_fragment(html)
    if body is None:
        return ""
    _drop_dead_content(body)
    for element in body.iter():
        if isinstance(element.tag, str) and "class" in element.attrib:
            del element.attrib["class"]  # only placeholders may carry a class
    _replace_images(body, base_url)
    _absolutize_links(body, base_url)
    for heading in body.iter("h1"):
        heading.tag = "h2"  # the page's own h1 is the article title, shown apart
    _drop_empty_blocks(body)
    cleaned = nh3.clean(serialize_children(body), **_NH3_OPTIONS)
    return _EMPTY_PARAGRAPH.sub("", cleaned).strip()


def html_to_text(html: str) -> str:
    """Return block-aware plain text: one block per paragraph, blank lines between blocks.

    Used for the search index and word counts, so image placeholders (Dogear's own words,
    not the author's) are left out.
    """
    body = parse_fragment(html)
    return "" if body is None else element_text(body)


def element_text(element: etree._Element) -> str:
    """Plain text of a parsed element, with the same block rules as html_to_text."""
    blocks: list[str] = []
    inline: list[str] = []
    _collect_text(element, blocks, inline)
    _flush(blocks, inline)
    return "\n\n".join(blocks)


def count_words(text: str) -> int:
    """Count words; two CJK characters count as one word since those scripts use no spaces."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return len(text.split())
    return len(_CJK.sub(" ", text).split()) + math.ceil(cjk / 2)


# --- structure -------------------------------------------------------------------------------


def parse_fragment(html: str) -> lxml.html.HtmlElement | None:
    """Parse an HTML fragment into a <body> element (None when there is nothing to parse)."""
    html = _XML_DECLARATION.sub("", html or "")
    if not html.strip():
        return None
    try:
        document = lxml.html.document_fromstring(f"<html><body>{html}</body></html>")
    except etree.ParserError:
        return None
    unnest_void_elements(document)
    return document.body


def unnest_void_elements(root: etree._Element) -> None:
    """Move content out of HTML5 void elements that libxml2 doesn't know are void.

    libxml2 parses `<embed src=x><p>text</p>` as an embed containing the paragraph, so
    removing the embed (or trafilatura removing it) would silently remove the text after it.
    """
    for element in list(root.iter(*_VOID_TAGS)):
        children = list(element)
        if not children and not element.text:
            continue
        tail = element.tail
        element.tail, element.text = element.text, None
        previous = element
        for child in children:
            previous.addnext(child)
            previous = child
        previous.tail = (previous.tail or "") + (tail or "")


def serialize_children(element: etree._Element) -> str:
    """Serialize an element's content without the element itself."""
    parts = [escape(element.text, quote=False) if element.text else ""]
    parts.extend(
        lxml.html.tostring(child, encoding="unicode", method="html", with_tail=True)
        for child in element
    )
    return "".join(parts)


def _drop_dead_content(body: lxml.html.HtmlElement) -> None:
    doomed = [
        element
        for element in body.iter()
        if not isinstance(element.tag, str) or element.tag.lower() in _DROP_WITH_CONTENT
    ]
    for element in doomed:
        _remove_keep_tail(element)


def _remove_keep_tail(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _replace_images(body: lxml.html.HtmlElement, base_url: str) -> None:
    for picture in list(body.iter("picture")):
        images = [el for el in picture.iter(*_IMAGE_TAGS)]
        source = _image_source(images[0], base_url) if images else None
        alt = images[0].get("alt", "") if images else ""
        if source is None:
            for candidate in picture.iter("source"):
                source = _pick_srcset(candidate.get("srcset", ""), base_url)
                if source:
                    break
        _put_placeholder(picture, source, alt)
    for image in list(body.iter(*_IMAGE_TAGS)):
        _put_placeholder(image, _image_source(image, base_url), image.get("alt", ""))


def _put_placeholder(element: etree._Element, source: str | None, alt: str) -> None:
    parent = element.getparent()
    if parent is None:
        return
    if source is None:
        _remove_keep_tail(element)
        return
    label = " ".join(alt.split())[:300]
    label = f"Image: {label}" if label else EMPTY_ALT_LABEL
    inside_link = any(ancestor.tag == "a" for ancestor in element.iterancestors())
    if inside_link:
        # a link can't hold a link: keep the words and let the outer link carry them
        replacement = lxml.html.Element("span")
        replacement.text = label
    else:
        replacement = lxml.html.Element("a", {"class": PLACEHOLDER_CLASS, "href": source})
        replacement.text = label
        if parent.tag in _BLOCK_CONTAINERS:
            paragraph = lxml.html.Element("p")
            paragraph.append(replacement)
            replacement = paragraph
    replacement.tail = element.tail
    parent.replace(element, replacement)


def _image_source(image: etree._Element, base_url: str) -> str | None:
    """The best absolute http(s) URL for an image: lazy-load attributes, src, then srcset."""
    for attribute in (*_LAZY_SRC_ATTRS, "src"):
        url = _absolute(image.get(attribute, ""), base_url, IMAGE_SCHEMES)
        if url:
            return url
    for attribute in ("srcset", "data-srcset"):
        url = _pick_srcset(image.get(attribute, ""), base_url)
        if url:
            return url
    return None


def _pick_srcset(srcset: str, base_url: str) -> str | None:
    """The largest candidate of a srcset (by its w or x descriptor)."""
    best: tuple[float, str] | None = None
    for candidate in srcset.split(","):
        parts = candidate.split()
        if not parts:
            continue
        url = _absolute(parts[0], base_url, IMAGE_SCHEMES)
        if not url:
            continue
        size = 0.0
        if len(parts) > 1:
            try:
                size = float(parts[1][:-1])
            except ValueError:
                size = 0.0
        if best is None or size > best[0]:
            best = (size, url)
    return best[1] if best else None


def _absolutize_links(body: lxml.html.HtmlElement, base_url: str) -> None:
    for link in list(body.iter("a")):
        if link.get("class") == PLACEHOLDER_CLASS:
            continue
        href = _absolute(link.get("href", ""), base_url, LINK_SCHEMES)
        if href:
            link.set("href", href)
        else:
            link.drop_tag()  # a link to nowhere safe: keep its words only


def _absolute(url: str, base_url: str, schemes: frozenset[str]) -> str | None:
    url = url.strip()
    if not url or url.lower().startswith(("data:", "blob:")):
        return None
    try:
        resolved = urljoin(base_url, url)
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme.lower() not in schemes:
        return None
    if parts.scheme.lower() != "mailto" and not parts.netloc:
        return None
    return resolved


def _drop_empty_blocks(body: lxml.html.HtmlElement) -> None:
    for element in reversed(list(body.iter("p", "h1", "h2", "h3", "h4", "h5", "h6"))):
        has_text = element.text_content().strip()
        has_link = any(True for _ in element.iter("a"))
        if not has_text and not has_link:
            _remove_keep_tail(element)


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Last line of defence for URLs: only absolute http(s)/mailto links leave nh3."""
    if attribute != "href":
        return value
    return _absolute(value, "", LINK_SCHEMES)


_EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|<br>)*</p>")
_NH3_OPTIONS = {
    "tags": set(ALLOWED_TAGS),
    "clean_content_tags": _NH3_CLEAN_CONTENT,
    "attributes": {tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    "attribute_filter": _filter_attribute,
    # class is allowed on <a> with this one value only (the lxml pass removed all others)
    "tag_attribute_values": {"a": {"class": {PLACEHOLDER_CLASS}}},
    "set_tag_attribute_values": {"a": {"target": "_blank"}},
    "link_rel": "noopener noreferrer",
    "url_schemes": set(LINK_SCHEMES),
    "strip_comments": True,
}


# --- text ------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        *("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "blockquote", "figure"),
        *("figcaption", "caption", "tr", "ul", "ol", "dl", "table", "thead", "tbody", "tfoot"),
        *("div", "section", "article", "main", "header", "footer", "aside", "nav", "hr"),
        *("address", "details", "summary", "body"),
    }
)
_CELL_TAGS = frozenset({"td", "th"})
_WHITESPACE = re.compile(r"\s+")
_SKIP_TEXT_TAGS = _DROP_WITH_CONTENT


def _collect_text(element: etree._Element, blocks: list[str], inline: list[str]) -> None:
    tag = element.tag.lower() if isinstance(element.tag, str) else None
    if tag is None or tag in _SKIP_TEXT_TAGS:
        return
    if tag == "a" and element.get("class") == PLACEHOLDER_CLASS:
        return
    if tag == "br":
        inline.append("\n")
        return
    if tag == "pre":
        _flush(blocks, inline)
        lines = [line.rstrip() for line in element.text_content().splitlines()]
        code = "\n".join(lines).strip("\n")
        if code.strip():
            blocks.append(code)
        return
    is_block = tag in _BLOCK_TAGS
    if is_block:
        _flush(blocks, inline)
    if element.text:
        inline.append(_WHITESPACE.sub(" ", element.text))
    for child in element:
        _collect_text(child, blocks, inline)
        if child.tail:
            inline.append(_WHITESPACE.sub(" ", child.tail))
    if tag in _CELL_TAGS:
        inline.append(" ")
    if is_block:
        _flush(blocks, inline)


def _flush(blocks: list[str], inline: list[str]) -> None:
    """Close the current block; the only newlines left in `inline` come from <br>."""
    if not inline:
        return
    lines = (" ".join(line.split()) for line in "".join(inline).split("\n"))
    text = "\n".join(line for line in lines if line)
    if text:
        blocks.append(text)
    inline.clear()

"""Find an HTML page's main content with trafilatura and turn it into reader-view HTML.

trafilatura only ever receives a parsed tree: it is never given a URL to fetch, and its
`url` argument is used for metadata alone (links and images are resolved here, against the
page URL or its <base>, before trafilatura sees them, because trafilatura resolves relative
paths against the host only).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from app.articles.sanitize import (
    PLACEHOLDER_CLASS,
    count_words,
    element_text,
    parse_fragment,
    sanitize_html,
    serialize_children,
    unnest_void_elements,
)

log = logging.getLogger(__name__)

MAX_WORDS = 150_000
TRUNCATION_NOTICE = (
    f"This article is very long; Dogear kept the first {MAX_WORDS:,} words. "
    "Read the rest on the original site."
)

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " · ", " :: ", " » ")
_HEADING_RENDS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_FORMATTING = {"#b": "strong", "#i": "em", "#u": "u", "#t": "code", "#sub": "sub", "#sup": "sup"}
# Blocks that a truncation keeps or drops whole (it descends into any other element).
_ATOMIC_BLOCKS = frozenset(
    {"p", "pre", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "tr", "figcaption", "caption"}
)
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_INLINE_PARENTS = frozenset({"p", "hi", "ref", "del", "head", "item", "cell"})


@dataclass(frozen=True)
class Extraction:
    """What an HTML page yields before Dogear decides whether it is an article."""

    title: str
    author: str
    site_name: str
    published_on: date | None
    image_url: str | None
    description: str
    lead: str  # the first paragraph's text, for a summary when the page has no description
    content_html: str
    text: str
    truncated: bool


def extract_article(html: str, url: str) -> Extraction | None:
    """Extract the main content and metadata of a page; None when no main content is found."""
    html = _XML_DECLARATION.sub("", html)
    if not html.strip():
        return None
    try:
        tree = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    meta = _page_metadata(tree, url)
    base_url = meta["base_url"]
    _prepare_for_trafilatura(tree, base_url)
    import trafilatura  # here: only the job worker extracts; web workers never load it

    try:
        document = trafilatura.bare_extraction(
            tree,
            url=url,
            output_format="xml",  # keep the structured body, skip the unused text rendering
            include_comments=False,
            include_tables=True,
            include_links=True,
            include_images=True,
            include_formatting=True,
            with_metadata=True,
            deduplicate=False,
        )
    except Exception:  # trafilatura on hostile markup must not take the job down with it
        log.warning("trafilatura failed on %s", url, exc_info=True)
        return None
    if document is None or document.body is None:
        return None

    site_name = _clean(document.sitename) or meta["site_name"] or site_host(url)
    title = _plain_title(document.title or meta["og_title"] or meta["title"], site_name)
    body = _xml_to_html(document.body)
    _drop_title_heading(body, title)

    content_html = sanitize_html(serialize_children(body), base_url)
    fragment = parse_fragment(content_html)
    if fragment is None:
        return None
    text = element_text(fragment)
    truncated = count_words(text) > MAX_WORDS
    if truncated:
        _cut(fragment, MAX_WORDS)
        text = element_text(fragment)
        content_html = (
            f"{serialize_children(fragment).strip()}\n<p><em>{TRUNCATION_NOTICE}</em></p>"
        )

    return Extraction(
        title=title,
        author=_clean(document.author) or meta["author"],
        site_name=site_name,
        published_on=_parse_date(document.date) or _parse_date(meta["published"]),
        image_url=_absolute_http(document.image or meta["image"], base_url)
        or _first_image(fragment),
        description=_clean(document.description) or meta["description"],
        lead=_lead_paragraph(fragment),
        content_html=content_html,
        text=text,
        truncated=truncated,
    )


# --- metadata fallbacks ----------------------------------------------------------------------


def _page_metadata(tree: lxml.html.HtmlElement, url: str) -> dict[str, str]:
    """Read what trafilatura may miss straight from the page's <head>."""

    def meta(*keys: str) -> str:
        for key in keys:
            for attribute in ("property", "name", "itemprop"):
                for element in tree.iterfind(f".//meta[@{attribute}='{key}']"):
                    value = _clean(element.get("content"))
                    if value:
                        return value
        return ""

    base_url = url
    base = tree.find(".//base[@href]")
    if base is not None:
        candidate = _absolute_http(base.get("href", ""), url)
        base_url = candidate or url
    title = tree.find(".//title")
    published = meta("article:published_time", "og:published_time", "datePublished", "date")
    if not published:
        stamp = tree.find(".//time[@datetime]")
        published = stamp.get("datetime", "") if stamp is not None else ""
    author = meta("author", "article:author", "byl", "dc.creator", "DC.creator")
    if author.startswith(("http://", "https://")):
        author = ""  # article:author is often a profile URL, not a name
    return {
        "base_url": base_url,
        "title": _clean(title.text_content()) if title is not None else "",
        "og_title": meta("og:title", "twitter:title"),
        "site_name": meta("og:site_name", "application-name"),
        "author": author,
        "published": published,
        "image": meta("og:image", "og:image:url", "twitter:image"),
        "description": meta("description", "og:description", "twitter:description"),
    }


def _plain_title(title: str | None, site_name: str) -> str:
    """A plain-text title, without a trailing or leading " | Site Name"."""
    title = _clean(re.sub(r"<[^>]+>", "", title or ""))
    if site_name:
        lowered = site_name.lower()
        for separator in _TITLE_SEPARATORS:
            head, sep, tail = title.rpartition(separator)
            if sep and head and tail.lower() == lowered:
                return head.strip()
            head, sep, tail = title.partition(separator)
            if sep and tail and head.lower() == lowered:
                return tail.strip()
    return title


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def _absolute_http(url: str | None, base_url: str) -> str | None:
    if not url or not url.strip():
        return None
    try:
        resolved = urljoin(base_url, url.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme in ("http", "https") and parts.netloc else None


def site_host(url: str) -> str:
    """The URL's host without a leading www., as a last-resort site name."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


# --- before trafilatura ----------------------------------------------------------------------


def _prepare_for_trafilatura(tree: lxml.html.HtmlElement, base_url: str) -> None:
    """Rewrite markup that trafilatura would otherwise lose or misplace.

    - links and image sources become absolute against the page URL, not just its host;
    - <time> is unwrapped (trafilatura deletes it with its text: "on <time>May 2</time>");
    - a <pre> without <code> gets one (else trafilatura renders it as a blockquote);
    - table captions and figure captions become paragraphs (else they are dropped or
      turned into a fake header row).
    """
    unnest_void_elements(tree)
    for link in tree.iter("a"):
        href = _resolve(link.get("href", ""), base_url)
        if urlsplit(href).scheme.lower() in _LINK_SCHEMES:
            link.set("href", href)
        elif "href" in link.attrib:
            # trafilatura would "resolve" java\tscript: into a path on the site: unlink it here
            del link.attrib["href"]
    for image in tree.iter("img", "source"):
        for attribute in ("src", "data-src", "data-original", "data-lazy-src"):
            value = image.get(attribute)
            if value and not value.strip().lower().startswith("data:"):
                image.set(attribute, _resolve(value, base_url))
        for attribute in ("srcset", "data-srcset"):
            value = image.get(attribute)
            if value:
                image.set(attribute, _resolve_srcset(value, base_url))
    for stamp in list(tree.iter("time")):
        stamp.drop_tag()
    for pre in tree.iter("pre"):
        if not any(child.tag == "code" for child in pre):
            code = etree.Element("code")
            code.text, pre.text = pre.text, None
            for child in list(pre):
                code.append(child)
            pre.append(code)
    for caption in list(tree.iter("caption")):
        table = caption.getparent()
        if table is not None and table.tag == "table":
            caption.tag = "p"
            caption.tail = None
            table.addprevious(caption)
    for caption in tree.iter("figcaption"):
        caption.tag = "p"


def _resolve(url: str, base_url: str) -> str:
    try:
        return urljoin(base_url, url.strip())
    except ValueError:
        return ""


def _resolve_srcset(srcset: str, base_url: str) -> str:
    candidates = []
    for candidate in srcset.split(","):
        parts = candidate.split()
        if parts:
            candidates.append(" ".join([_resolve(parts[0], base_url), *parts[1:]]))
    return ", ".join(candidates)


# --- trafilatura's XML to HTML -----------------------------------------------------------------


def _xml_to_html(body: etree._Element) -> lxml.html.HtmlElement:
    """Convert trafilatura's XML body to HTML, keeping what its own HTML output flattens.

    trafilatura.extract(output_format="html") turns every <code> into <pre> (so inline code
    becomes a block inside a paragraph), ordered lists into <ul>, and drops dl and thead.
    """
    root = lxml.html.Element("div")
    root.text = body.text
    for child in body:
        _convert(child, root)
    return root


def _convert(source: etree._Element, parent: etree._Element) -> None:
    tag = source.tag if isinstance(source.tag, str) else ""
    rend = source.get("rend", "")
    if tag == "code" and _is_block(source):
        pre = etree.SubElement(parent, "pre")
        code = etree.SubElement(pre, "code")
        code.text = "".join(source.itertext())
        pre.tail = source.tail
        return
    if tag == "table":
        _convert_table(source, parent)
        return
    element = etree.SubElement(parent, _html_tag(source, tag, rend))
    if tag == "graphic":
        for attribute in ("src", "alt"):
            if source.get(attribute):
                element.set(attribute, source.get(attribute))
    elif tag == "ref" and source.get("target"):
        element.set("href", source.get("target"))
    element.text = source.text
    for child in source:
        _convert(child, element)
    element.tail = source.tail


def _html_tag(source: etree._Element, tag: str, rend: str) -> str:
    if tag == "head":
        return rend if rend in _HEADING_RENDS else "h3"
    if tag == "list":
        return rend if rend in ("ol", "ul", "dl") else "ul"
    if tag == "item":
        return rend[:2] if rend.startswith(("dt-", "dd-")) else "li"
    if tag == "quote":
        return "blockquote" if _is_block(source) else "q"
    simple = {"p": "p", "lb": "br", "graphic": "img", "ref": "a", "del": "del", "code": "code"}
    if tag in simple:
        return simple[tag]
    if tag == "hi":
        return _FORMATTING.get(rend, "em")
    return "div"  # unknown wrappers: nh3 strips the tag and keeps the words


def _is_block(source: etree._Element) -> bool:
    """Whether a <code> or <quote> stands on its own rather than inside running text."""
    if any(child.tag in ("code", "p", "list", "quote") for child in source):
        return True
    if "\n" in "".join(source.itertext()).strip():
        return True
    parent = source.getparent()
    if parent is not None and parent.tag in _INLINE_PARENTS:
        return False
    has_tail = bool(source.tail and source.tail.strip())
    has_lead = parent is not None and bool(parent.text and parent.text.strip())
    return not (has_tail or has_lead)


def _convert_table(source: etree._Element, parent: etree._Element) -> None:
    table = etree.SubElement(parent, "table")
    table.tail = source.tail
    rows = [row for row in source if row.tag == "row"]
    header_rows = 0
    for row in rows:
        cells = [cell for cell in row if cell.tag == "cell"]
        if cells and all(cell.get("role") == "head" for cell in cells):
            header_rows += 1
        else:
            break
    if header_rows == len(rows):
        header_rows = 0  # a table of headings only: keep it as plain rows
    sections = []
    if header_rows:
        sections.append((etree.SubElement(table, "thead"), rows[:header_rows]))
    sections.append((etree.SubElement(table, "tbody"), rows[header_rows:]))
    for section, section_rows in sections:
        for row in section_rows:
            tr = etree.SubElement(section, "tr")
            for cell in row:
                cell_tag = "th" if cell.get("role") == "head" else "td"
                td = etree.SubElement(tr, cell_tag)
                td.text = cell.text
                for child in cell:
                    _convert(child, td)


def _drop_title_heading(body: lxml.html.HtmlElement, title: str) -> None:
    """Drop the first heading when it repeats the title the reader view already shows."""
    for element in body:
        if not isinstance(element.tag, str):
            continue
        if element.tag in _HEADING_RENDS:
            if _clean(element.text_content()).lower() == title.lower():
                element.drop_tree()
            return
        if _clean(element.text_content()):
            return


# --- after sanitizing ------------------------------------------------------------------------


def _cut(parent: etree._Element, budget: int, *, first: bool = True) -> None:
    """Keep the first `budget` words of `parent`, cutting between blocks.

    Containers (lists, tables, quotes) are cut between the blocks inside them. A paragraph,
    row or item that doesn't fit is dropped whole, unless nothing at all was kept before it:
    then its text is cut mid-block, so a page made of one enormous block still shows some.
    """
    children = list(parent)
    for index, child in enumerate(children):
        words = count_words(element_text(child))
        if words <= budget:
            budget -= words
            continue
        nothing_kept = first and index == 0
        keep = index
        if len(child) and child.tag not in _ATOMIC_BLOCKS:
            inner = budget - count_words(child.text or "")
            _cut(child, max(inner, 0), first=nothing_kept)
            keep = index + 1
        elif nothing_kept:
            tail, kept = child.tail, element_text(child).split()[:budget]
            child.clear()
            child.text, child.tail = " ".join(kept), tail
            keep = index + 1
        for doomed in children[keep:]:
            parent.remove(doomed)
        if keep and children[keep - 1].tail:
            children[keep - 1].tail = "\n"
        return


def _lead_paragraph(fragment: etree._Element) -> str:
    for paragraph in fragment.iter("p"):
        text = element_text(paragraph)
        if count_words(text) >= 5:
            return text
    return ""


def _first_image(fragment: etree._Element) -> str | None:
    """The first image placeholder's target, as a lead image for pages without og:image."""
    for link in fragment.iter("a"):
        if link.get("class") == PLACEHOLDER_CLASS:
            return link.get("href")
    return None

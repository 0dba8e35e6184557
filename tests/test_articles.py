"""app.articles: fetched bytes in, a clean reader-view article (or a reason why not) out."""

from __future__ import annotations

import random
import re
import socket
from datetime import date
from pathlib import Path

import pytest

from app.articles import (
    WORDS_PER_MINUTE,
    NotAnArticle,
    decode_html,
    html_to_text,
    read_document,
    sanitize_html,
)
from app.articles.extract import MAX_WORDS, TRUNCATION_NOTICE
from app.articles.sanitize import count_words

FIXTURES = Path(__file__).parent / "fixtures" / "articles"
TOKEN_URL = "https://harbor.example.net/2025/03/token-buckets/"
NOTES_URL = "https://notes.example.com/kitchen/radishes.html"
PAGE = "https://site.example/blog/post/"
WORDS = [
    "harbor",
    "tide",
    "rope",
    "anchor",
    "lantern",
    "gull",
    "sail",
    "keel",
    "mast",
    "deck",
    "bow",
    "stern",
    "cargo",
    "crew",
    "knot",
    "chart",
    "compass",
    "wind",
    "wave",
    "salt",
    "ledger",
    "keeper",
    "beacon",
    "reef",
    "dune",
    "kelp",
    "oar",
    "buoy",
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def read_fixture(name: str, url: str, **kwargs) -> object:
    return read_document(fixture(name), url=url, content_type="text/html", **kwargs)


def prose(count: int, rng: random.Random, first: str = "") -> str:
    """`count` words of invented prose (varied, so no extractor mistakes it for a template)."""
    words = [first] if first else []
    words += [rng.choice(WORDS) for _ in range(count - len(words))]
    return " ".join(words)


def page(paragraphs: list[str], title: str = "Generated page") -> bytes:
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>Footer text for the generated site.</footer></body></html>"
    ).encode()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing in app.articles may fetch: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("app.articles tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --- extraction of a realistic page ------------------------------------------------------------


@pytest.fixture(scope="module")
def token_article():
    return read_fixture("token_buckets.html", TOKEN_URL, charset="utf-8")


def test_main_text_kept_and_boilerplate_dropped(token_article):
    text = token_article.text
    assert "a customer with a nightly export job started tripping it" in text
    assert "nobody has complained" in text
    assert "The full source, with tests, lives in our public repository." in text
    boilerplate = [
        "Archive of every post",  # nav
        "About the harbor crew",
        "Search the harbor",  # search form
        "CloudWidget",  # ad
        "Popular posts",  # sidebar
        "Subscribe to the harbor bulletin",
        "All rights reserved",  # footer
        "Cookie settings",
        "Share on Social",  # share bar
        "dataLayer",  # script
        "border: 1px",  # style
    ]
    for phrase in boilerplate:
        assert phrase not in text, phrase
        assert phrase not in token_article.content_html, phrase


def test_metadata_extracted(token_article):
    assert token_article.kind == "article"
    assert token_article.title == "Token buckets for small services"
    assert token_article.author == "Marisol Ventana"
    assert token_article.site_name == "Quiet Harbor Engineering"
    assert token_article.published_on == date(2025, 3, 14)
    assert token_article.image_url == "https://harbor.example.net/media/2025/token-bucket-lead.jpg"
    assert token_article.summary.startswith("How a four-person team replaced")
    assert token_article.truncated is False


def test_headings_survive_and_title_is_not_repeated(token_article):
    html = token_article.content_html
    assert "<h2>Why a fixed window was not enough</h2>" in html
    assert "<h2>Lessons we would pass on</h2>" in html
    assert "<h1" not in html
    assert "Token buckets for small services</h2>" not in html


def test_code_block_keeps_indentation_and_angle_brackets(token_article):
    html = token_article.content_html
    block = re.search(r"<pre><code>(.*?)</code></pre>", html, re.S)
    assert block, html
    assert "class TokenBucket:\n" in block.group(1)
    assert "\n        self.capacity = capacity\n" in block.group(1)
    assert "if cost &lt;= self.level and self.level &gt; 0:" in block.group(1)
    assert "if cost <= self.level and self.level > 0:" in token_article.text
    # inline code stays inline, inside its paragraph
    assert "holding up to <code>capacity</code> tokens" in html


def test_table_blockquote_and_list_survive(token_article):
    html = token_article.content_html
    assert re.search(r"<table><thead><tr><th>Customer</th><th>Fixed window</th>", html)
    assert "<td>Nightly exporter</td><td>4,812</td><td>37</td>" in html
    assert "Rejected requests per week, shadow mode" in html  # the table's caption
    quote = re.search(r"<blockquote>(.*?)</blockquote>", html, re.S)
    assert quote
    assert "Rate limits are a conversation with your users, not a wall." in quote.group(1)
    assert "hiding all along." in quote.group(1)
    assert "<ol><li>Measure in shadow mode before enforcing anything.</li>" in html


def test_images_become_placeholders_and_links_absolute(token_article):
    html = token_article.content_html
    assert "<img" not in html
    assert (
        '<a class="image-placeholder" href="https://harbor.example.net/media/2025/'
        'rejections-chart.png" target="_blank" rel="noopener noreferrer">'
        "Image: Line chart of weekly rejections falling after the switch</a>"
    ) in html
    # relative and fragment-only links resolve against the page URL, not just its host
    assert 'href="https://harbor.example.net/2025/03/2024/backpressure-basics/"' in html
    assert 'href="https://harbor.example.net/2025/03/token-buckets/#the-code"' in html
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("https://", "http://", "mailto:")), href


def test_div_soup_page_with_base_href_lazy_images_and_comments():
    article = read_fixture("field_notes.html", NOTES_URL)
    html, text = article.content_html, article.text
    assert article.title == "Quick-pickled radishes, three ways"
    assert article.author == "Tobiah Greenleaf"
    assert article.site_name == "Field Notes"
    assert article.published_on == date(2024, 6, 2)
    # no og:image: the first image of the article stands in as the lead image
    assert article.image_url == "https://notes.example.com/kitchen/img/radish-jars.jpg"
    # no meta description: the summary is the first paragraph
    assert article.summary.startswith("The radishes came in all at once this year")
    assert "I first wrote these notes on May 30, after the third batch" in text  # <time> text
    assert "<pre><code>" in html and "\n  1 part vinegar\n" in html  # a plain <pre> stays pre
    assert "<dt>Warm and sweet</dt><dd>Cider vinegar" in html
    assert "Image: Three jars of pink pickled radishes on a windowsill" in html
    for gone in ("cookie policy", "Dilly beans", "gone by lunch", "Blogroll", "old blog engine"):
        assert gone not in text, gone


def test_hostile_page_is_defanged_end_to_end():
    article = read_fixture("hostile.html", "https://lights.example.com/posts/ordinary/")
    html = article.content_html.lower()
    assert "a few have been transcribed by volunteers" in article.text
    assert "the keepers' museum keeps a ledger open" in article.text.lower()  # after <embed>
    for forbidden in (
        "<script",
        "alert(",
        "onerror",
        "onclick",
        "onload",
        "onmouseover",
        "javascript:",
        "java\tscript",
        "java%09script",
        "vbscript",
        "data:",
        "<iframe",
        "iframe fallback",
        "<svg",
        "svg words",
        "<form",
        "<input",
        "<button",
        "log in to continue",
        "<object",
        "<embed",
        "style=",
        "hx-",
        "data-track",
        'class="lede"',
        "id=",
        "_self",
        '"opener"',
    ):
        assert forbidden not in html, forbidden
    assert (
        '<a href="https://lights.example.com/lights/archive/?page=2" target="_blank" '
        'rel="noopener noreferrer">second page of the archive</a>'
    ) in article.content_html
    assert "Read the transcription guide, the keeper's glossary," in article.text
    assert (
        'href="https://lights.example.com/img/lens.jpg" target="_blank" rel="noopener '
        'noreferrer">Image: A Fresnel lens "glowing" &lt;at&gt; dusk</a>'
    ) in article.content_html


# --- sanitize_html -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dirty", "forbidden"),
    [
        ("<p>ok</p><script>alert('x')</script>", ["<script", "alert"]),
        ("<p>ok<style>p{color:red}</style></p>", ["<style", "color:red"]),
        ('<p><img src="x.png" onerror="alert(1)"></p>', ["onerror", "alert", "<img"]),
        ('<p><a href="javascript:alert(1)">x</a></p>', ["javascript", "alert", "<a"]),
        ('<p><a href="java&#x09;script:alert(1)">x</a></p>', ["script", "alert", "<a"]),
        ('<p><a href=" JAVASCRIPT:alert(1)">x</a></p>', ["script", "alert", "<a"]),
        ('<p><a href="vbscript:msgbox(1)">x</a></p>', ["vbscript", "<a"]),
        ('<p><a href="data:text/html,<b>x</b>">x</a></p>', ["data:", "<a"]),
        ('<iframe src="https://evil.example/"></iframe><p>ok</p>', ["iframe", "evil"]),
        ('<p style="position:fixed">ok</p>', ["style", "fixed"]),
        ('<p hx-get="/admin" hx-trigger="load">ok</p>', ["hx-", "/admin"]),
        ('<p data-x="1" data-hx-post="/y">ok</p>', ["data-", "/y"]),
        ('<svg onload="alert(1)"><circle r="1"/></svg><p>ok</p>', ["svg", "onload"]),
        ('<form action="/steal"><input name="pw"><button>Go</button></form>', ["form", "Go"]),
        ('<p class="x" id="y" onclick="z()">ok</p>', ["class", "id=", "onclick"]),
        ('<object data="x.swf">fallback</object><embed src="x.swf">', ["object", "embed"]),
        ('<math><mi href="javascript:alert(1)">x</mi></math>', ["math", "javascript"]),
        (
            '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></p></noscript>',
            ["onerror", "alert", "<img"],
        ),
        ("<p>ok</p><!-- <script>alert(1)</script> -->", ["<!--", "alert"]),
        ('<a href="https://ok.example/" class="image-placeholder">spoof</a>', ["class="]),
    ],
)
def test_sanitize_removes(dirty, forbidden):
    clean = sanitize_html(dirty, PAGE)
    for bad in forbidden:
        assert bad.lower() not in clean.lower(), (bad, clean)


def test_sanitize_links_absolute_with_rel_and_target():
    clean = sanitize_html(
        '<p><a href="../other/?q=1">rel</a> <a href="#part-2">frag</a> '
        '<a href="mailto:editor@site.example">mail</a> '
        '<a href="https://x.example/" title="T" target="_self" rel="opener">abs</a></p>',
        PAGE,
    )
    attrs = 'target="_blank" rel="noopener noreferrer"'
    assert f'<a href="https://site.example/blog/other/?q=1" {attrs}>rel</a>' in clean
    assert f'<a href="https://site.example/blog/post/#part-2" {attrs}>frag</a>' in clean
    assert f'<a href="mailto:editor@site.example" {attrs}>mail</a>' in clean
    assert f'<a href="https://x.example/" title="T" {attrs}>abs</a>' in clean


def test_sanitize_turns_images_into_placeholders():
    clean = sanitize_html(
        '<p>Before <img src="/a.png" alt="A &lt;b&gt; &quot;cat&quot;"> after</p>'
        '<p><img src="data:image/png;base64,AAAA" alt="inline only"></p>'
        '<p><img src="photo.jpg"></p>'
        '<p><img src="data:image/gif;base64,R0lG" data-src="/lazy.jpg" alt="lazy"></p>'
        '<p><img srcset="/s-400.jpg 400w, /s-1200.jpg 1200w, /s-800.jpg 800w" alt="set"></p>'
        '<figure><picture><source srcset="/p1.webp 1x, /p2.webp 2x">'
        '<img src="data:image/gif;base64,R0lG" alt="pic"></picture>'
        "<figcaption>Caption</figcaption></figure>"
        '<p><a href="/full.jpg"><img src="/thumb.jpg" alt="thumb"></a></p>'
        '<img src="/top-level.png" alt="top">',
        PAGE,
    )
    attrs = 'target="_blank" rel="noopener noreferrer"'
    assert "<img" not in clean and "<picture" not in clean and "<source" not in clean
    assert (
        f'<p>Before <a class="image-placeholder" href="https://site.example/a.png" {attrs}>'
        'Image: A &lt;b&gt; "cat"</a> after</p>'
    ) in clean
    assert "inline only" not in clean and "data:" not in clean  # non-http images dropped
    assert (
        f'<a class="image-placeholder" href="https://site.example/blog/post/photo.jpg" {attrs}>'
        "Image on the original page</a>"
    ) in clean
    assert 'href="https://site.example/lazy.jpg"' in clean
    assert 'href="https://site.example/s-1200.jpg"' in clean  # the largest srcset candidate
    assert (
        f'<figure><a class="image-placeholder" href="https://site.example/p2.webp" {attrs}>'
        "Image: pic</a><figcaption>Caption</figcaption></figure>"
    ) in clean
    # an image inside a link keeps the outer link and does not nest another one
    assert (
        f'<a href="https://site.example/full.jpg" {attrs}><span>Image: thumb</span></a>' in clean
    )
    assert f'<p><a class="image-placeholder" href="https://site.example/top-level.png" {attrs}>'
    assert clean.count("image-placeholder") == 6


def test_sanitize_allow_list_and_shape():
    clean = sanitize_html(
        "<html><body><h1>Big</h1><h3>Small</h3><p></p><p> &nbsp; </p><p><br></p>"
        '<ol start="3" reversed><li>x</li></ol><abbr title="HyperText">HTML</abbr>'
        '<time datetime="2025-01-02">Jan 2</time>'
        '<table><tr><th scope="col" colspan="2" width="9">h</th></tr>'
        '<tr><td rowspan="2" align="left">c</td></tr></table>'
        "<div><section><span class='x'>kept words</span></section></div>"
        "<pre>  a &lt; b</pre></body></html>",
        PAGE,
    )
    assert not clean.startswith(("<html", "<body")) and "</body>" not in clean
    assert "<h2>Big</h2><h3>Small</h3>" in clean
    assert "<p></p>" not in clean and "<p> \xa0 </p>" not in clean and "<p><br></p>" not in clean
    assert '<ol start="3"><li>x</li></ol>' in clean
    assert '<abbr title="HyperText">HTML</abbr>' in clean
    assert '<time datetime="2025-01-02">Jan 2</time>' in clean
    assert '<th scope="col" colspan="2">h</th>' in clean
    assert '<td rowspan="2">c</td>' in clean
    assert "<span>kept words</span>" in clean and "<div" not in clean
    assert "<pre>  a &lt; b</pre>" in clean


def test_sanitize_empty_input():
    assert sanitize_html("", PAGE) == ""
    assert sanitize_html("   ", PAGE) == ""


# --- html_to_text ------------------------------------------------------------------------------


def test_html_to_text_is_block_aware():
    text = html_to_text(
        "<h2>Heading</h2><p>First   paragraph\n with  <b>bold</b> &amp; an entity&nbsp;here."
        "</p><ul><li>one</li><li>two</li></ul><p>Line<br>break</p>"
        "<script>var hidden = 1;</script><pre>def f():\n    return 1 &lt; 2</pre>"
        '<p><a class="image-placeholder" href="https://x.example/i.png">Image: alt</a></p>'
        "<table><tr><td>a</td><td>b</td></tr></table>"
    )
    assert text == (
        "Heading\n\nFirst paragraph with bold & an entity here.\n\none\n\ntwo\n\n"
        "Line\nbreak\n\ndef f():\n    return 1 < 2\n\na b"
    )


def test_count_words_handles_scripts_without_spaces():
    assert count_words("one two  three\nfour") == 4
    assert count_words("灯台守は毎晩") == 3  # six characters, two per word
    assert count_words("") == 0


# --- charsets ----------------------------------------------------------------------------------

FRENCH = "Le café crème était délicieux – à l’heure où l’été s’achève, 5 € pour un « noir »."
GERMAN_DANISH = "Ærø og smørrebrød; Grüße aus Köln."
JAPANESE = "灯台守は毎晩、天気と通過する船を記録しました。"
KOREAN = "등대지기는 매일 밤 날씨와 지나가는 배를 기록했습니다."
RUSSIAN = "Смотритель маяка каждую ночь записывал погоду."


def noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def html_doc(text: str, meta: str = "") -> str:
    return f"<html><head>{meta}<title>t</title></head><body><p>{text}</p></body></html>"


@pytest.mark.parametrize(
    ("text", "encoding", "header", "meta"),
    [
        (FRENCH, "windows-1252", "windows-1252", ""),
        (GERMAN_DANISH, "iso-8859-1", "iso-8859-1", ""),
        (JAPANESE, "shift_jis", "shift_jis", ""),
        (KOREAN, "euc-kr", "euc-kr", ""),
        (RUSSIAN, "koi8-r", "koi8-r", ""),
        # no header: the meta tag decides, in either of its two spellings
        (RUSSIAN, "koi8-r", None, '<meta charset="koi8-r">'),
        (
            FRENCH,
            "windows-1252",
            None,
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
        ),
        # a wrong header falls through to the meta tag, then to detection
        (FRENCH, "windows-1252", "utf-8", '<meta charset="windows-1252">'),
        (FRENCH * 3, "windows-1252", "utf-8", ""),
        (RUSSIAN * 3, "koi8-r", "utf-8", ""),
        # servers defaulting to ISO-8859-1 for UTF-8 pages: valid UTF-8 wins
        (FRENCH, "utf-8", "iso-8859-1", ""),
        # a meta that can't be right (the page was read as ASCII to find it)
        (FRENCH, "utf-8", None, '<meta charset="utf-16">'),
    ],
)
def test_decode_html(text, encoding, header, meta):
    body = html_doc(text, meta).encode(encoding)
    decoded = decode_html(body, header)
    assert f"<p>{text}</p>" in decoded


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [("\ufeff", "utf-16-le"), ("\ufeff", "utf-16-be"), ("\ufeff", "utf-8")],
)
def test_decode_html_bom_beats_header(bom, encoding):
    body = (bom + html_doc(JAPANESE)).encode(encoding)
    decoded = decode_html(body, "iso-8859-1")
    assert f"<p>{JAPANESE}</p>" in decoded
    assert not decoded.startswith("\ufeff")


def test_decode_html_never_fails():
    assert decode_html(b"", None) == ""
    assert decode_html(b"<p>\x81\x8d\x8f broken</p>", "utf-8").endswith(" broken</p>")
    assert decode_html(b"<p>plain</p>", "no-such-charset") == "<p>plain</p>"


def test_read_document_decodes_legacy_pages_end_to_end():
    paragraphs = [FRENCH + " " + " ".join(["Le phare veille sur la côte chaque nuit."] * 4)]
    body = page(paragraphs, title="Le phare").decode().replace("charset='utf-8'", "")
    article = read_document(
        body.encode("windows-1252"), url=PAGE, content_type="text/html", charset="utf-8"
    )
    assert "Le café crème était délicieux – à l’heure" in article.text


def test_japanese_article_counts_characters():
    body = page([JAPANESE * 4, JAPANESE * 3], title="灯台の記録").decode()
    article = read_document(
        body.encode("shift_jis"), url=PAGE, content_type="text/html", charset="shift_jis"
    )
    assert JAPANESE in article.text
    assert article.word_count == count_words(article.text) > 50


# --- other kinds -------------------------------------------------------------------------------


def test_plain_text_is_escaped_paragraphs():
    article = read_document(
        fixture("harbor_log.txt"),
        url="https://port.example/logs/week-12.txt",
        content_type="text/plain",
        charset="utf-8",
    )
    assert article.kind == "text"
    assert article.title == "Notes from the harbor master's log"
    assert article.content_html.count("<p>") == 4
    assert "the &lt;b&gt;bold&lt;/b&gt; tags people paste" in article.content_html
    assert "<b>" not in article.content_html
    assert "&amp; that is fine" in article.content_html
    assert article.summary.startswith("The morning fog lifted by nine")
    assert "\n\nReminder for the newsletter: the <b>bold</b> tags" in article.text
    assert article.word_count == len(article.text.split())
    assert article.site_name == "port.example"


def test_plain_text_in_a_legacy_charset():
    body = ("Caf\u00e9 notes\n\n" + FRENCH).encode("windows-1252")
    article = read_document(body, url=PAGE, content_type="text/plain", charset="windows-1252")
    assert FRENCH in article.text


def test_binary_served_as_text_is_undecodable():
    body = noise(3, 4000)
    with pytest.raises(NotAnArticle) as caught:
        read_document(body, url=PAGE, content_type="text/plain")
    assert caught.value.code == "undecodable"


def minimal_pdf(info: bytes) -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"3 0 obj\n<< " + info + b" /Producer (Invented Writer 1.0) >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R /Info 3 0 R >>\n%%EOF\n"
    )


@pytest.mark.parametrize(
    ("info", "title"),
    [
        (rb"/Title (Tide Tables \(2025 edition\))", "Tide Tables (2025 edition)"),
        (
            b"/Title <FEFF004C0069006700680074007300200026002000420075006F00790073>",
            "Lights & Buoys",
        ),
        (b"/Author (Nobody)", "annual report 2025"),
        (b"/Title ()", "annual report 2025"),
    ],
)
def test_pdf(info, title):
    article = read_document(
        minimal_pdf(info),
        url="https://port.example/docs/annual-report-2025.pdf",
        content_type="application/pdf",
    )
    assert article.kind == "pdf"
    assert article.title == title
    assert article.content_html == article.text == article.summary == ""
    assert article.word_count == article.reading_minutes == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        ("application/zip", b"PK\x03\x04" + b"\x00" * 64),
        ("application/json", b'{"title": "not an article"}'),
        ("video/mp4", b"\x00\x00\x00\x18ftypmp42"),
    ],
)
def test_unsupported_types(content_type, body):
    with pytest.raises(NotAnArticle) as caught:
        read_document(body, url=PAGE, content_type=content_type)
    assert caught.value.code == "unsupported_type"
    assert str(caught.value) == f"not an HTML page ({content_type})"


@pytest.mark.parametrize(
    "body",
    [
        fixture("boilerplate_only.html"),
        b"",
        b"<html><head><title>Short</title></head><body><p>Only a few words here.</p></body>",
        page(["twenty one words " * 7]),  # 21 words: under the threshold
    ],
)
def test_no_content(body):
    with pytest.raises(NotAnArticle) as caught:
        read_document(body, url=PAGE, content_type="text/html")
    assert caught.value.code == "no_content"
    assert str(caught.value) == "no article text was found on the page"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (minimal_pdf(b"/Title (Sniffed)"), "pdf"),
        (b"\n  " + page([prose(60, random.Random(1))]), "article"),
        (fixture("harbor_log.txt"), "text"),
        (fixture("token_buckets.html"), "article"),
        ("\ufeff" + page([prose(60, random.Random(2))]).decode(), "article"),
    ],
)
@pytest.mark.parametrize("content_type", ["", "application/octet-stream"])
def test_sniffing_untyped_documents(body, kind, content_type):
    if isinstance(body, str):
        body = body.encode("utf-16")
    article = read_document(body, url=PAGE, content_type=content_type)
    assert article.kind == kind


@pytest.mark.parametrize(
    ("body", "described"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),
        (noise(5, 2000), "unknown file type"),
    ],
)
def test_sniffing_rejects_binary(body, described):
    with pytest.raises(NotAnArticle) as caught:
        read_document(body, url=PAGE, content_type="")
    assert caught.value.code == "unsupported_type"
    assert str(caught.value) == f"not an HTML page ({described})"


def test_content_type_parameters_are_ignored():
    article = read_document(fixture("harbor_log.txt"), url=PAGE, content_type="Text/Plain; x=y")
    assert article.kind == "text"


# --- counts and length -------------------------------------------------------------------------


def test_word_count_and_reading_minutes():
    rng = random.Random(11)
    article = read_document(
        page([prose(100, rng) for _ in range(23)]), url=PAGE, content_type="text/html"
    )
    assert article.word_count == 2300
    assert article.reading_minutes == 10 == 2300 // WORDS_PER_MINUTE

    text = ("\n\n".join(prose(100, rng) for _ in range(23)) + " extra").encode()
    article = read_document(text, url=PAGE, content_type="text/plain")
    assert (article.word_count, article.reading_minutes) == (2301, 11)

    short = read_document(page([prose(30, rng)]), url=PAGE, content_type="text/html")
    assert (short.word_count, short.reading_minutes) == (30, 1)


def test_very_long_page_is_truncated_at_a_block_boundary():
    rng = random.Random(13)
    paragraphs = [prose(100, rng, first=f"para{n:04d}") for n in range(1, 1511)]
    article = read_document(page(paragraphs), url=PAGE, content_type="text/html")
    assert article.truncated is True
    assert article.word_count == MAX_WORDS == 150_000
    assert "para1500 " in article.text and "para1501" not in article.text
    assert "para1501" not in article.content_html
    assert article.content_html.endswith(f"<p><em>{TRUNCATION_NOTICE}</em></p>")
    assert TRUNCATION_NOTICE == (
        "This article is very long; Dogear kept the first 150,000 words. "
        "Read the rest on the original site."
    )
    assert TRUNCATION_NOTICE not in article.text
    assert article.reading_minutes == 653


def test_long_plain_text_is_truncated_too():
    rng = random.Random(17)
    text = "\n\n".join(prose(1000, rng) for _ in range(151)).encode()
    article = read_document(text, url=PAGE, content_type="text/plain")
    assert article.truncated is True
    assert article.word_count == MAX_WORDS
    assert article.content_html.endswith(f"<p><em>{TRUNCATION_NOTICE}</em></p>")


def test_truncation_cuts_inside_a_long_list_between_items(monkeypatch):
    monkeypatch.setattr("app.articles.extract.MAX_WORDS", 500)
    rng = random.Random(19)
    items = "".join(f"<li>{prose(10, rng, first=f'item{n:03d}')}</li>" for n in range(1, 101))
    body = page([prose(30, rng)]).replace(b"</article>", f"<ul>{items}</ul></article>".encode())
    article = read_document(body, url=PAGE, content_type="text/html")
    assert article.truncated is True
    assert article.word_count == 500  # 30 words of intro, then 47 whole items
    assert "item047 " in article.text and "item048" not in article.text
    assert re.search(r"<ul><li>item001 [^<]*</li>", article.content_html)


def test_empty_text_file_has_no_content():
    with pytest.raises(NotAnArticle) as caught:
        read_document(b" \n\n \n", url=PAGE, content_type="text/plain")
    assert caught.value.code == "no_content"

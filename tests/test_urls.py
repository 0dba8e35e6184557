"""Normalising article addresses: the same page saved twice is one post."""

import pytest

from app.urls import InvalidURL, normalize_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTPS://Example.ORG/Path", "https://example.org/Path"),  # the path keeps its case
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        ("https://example.org", "https://example.org/"),
        ("https://example.org/a#section-2", "https://example.org/a"),
        ("https://example.org/a?utm_source=x&utm_medium=y&id=7", "https://example.org/a?id=7"),
        ("https://example.org/a?fbclid=1&gclid=2&msclkid=3&mc_eid=4", "https://example.org/a"),
        ("https://example.org/a?UTM_Campaign=x&q=a%20b", "https://example.org/a?q=a%20b"),
        ("https://example.org/a?b=2&a=1", "https://example.org/a?b=2&a=1"),  # order kept
        ("  example.org/read  ", "https://example.org/read"),
        ("www.example.org/read", "https://www.example.org/read"),
        ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://example.org./a", "https://example.org/a"),
        ("http://[2001:db8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
    ],
)
def test_normalised_forms(raw, expected):
    assert normalize_url(raw) == expected


def test_normalising_is_idempotent():
    once = normalize_url("HTTP://Example.org:80/a/b?utm_source=x&k=v#top")
    assert normalize_url(once) == once


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "file:///etc/passwd",
        "ftp://example.org/",
        "https://user:pw@example.org/",
        "https://exa mple.org/",
        "https://example.org/\x00",
        "http://",
        "https://example.org:99999/",
        "https://" + "a" * 2100 + ".org/",
    ],
)
def test_addresses_that_cannot_be_saved(raw):
    with pytest.raises(InvalidURL) as error:
        normalize_url(raw)
    assert str(error.value)  # always a sentence for the reader

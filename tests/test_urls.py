"""URL policy: loopback detection, base URL checks, redaction, and path segments."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tests.strategies import url_parts
from userplane_async import ConfigurationError, InvalidIDError
from userplane_async._urls import (
    DEFAULT_BASE_URL,
    check_base_url,
    is_loopback,
    path_segment,
    redact_url,
)

STORAGE = "https://storage.example.com/recordings/rec_1/video.mp4"


# --- is_loopback -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("127.0.0.1", True, id="ipv4-loopback"),
        pytest.param("127.8.9.10", True, id="ipv4-loopback-range"),
        pytest.param("::1", True, id="ipv6-loopback"),
        pytest.param("[::1]", True, id="ipv6-loopback-bracketed"),
        pytest.param("localhost", True, id="localhost"),
        pytest.param("LOCALHOST", True, id="localhost-upper"),
        pytest.param("localhost.", True, id="localhost-fqdn"),
        pytest.param("10.0.0.1", False, id="private"),
        pytest.param("169.254.169.254", False, id="link-local-metadata"),
        pytest.param("0.0.0.0", False, id="unspecified"),  # noqa: S104 - a host to check, not bind
        pytest.param("128.0.0.1", False, id="next-to-loopback"),
        pytest.param("example.com", False, id="name"),
        pytest.param("localhost.example.com", False, id="localhost-subdomain"),
        pytest.param("127.0.0.1.nip.io", False, id="loopback-lookalike"),
        pytest.param(None, False, id="none"),
        pytest.param("", False, id="empty"),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    """Only 127.0.0.0/8, ::1 and localhost count as loopback."""
    assert is_loopback(host) is expected


# --- check_base_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        pytest.param(DEFAULT_BASE_URL, "https://api.userplane.io/api/v1", id="default"),
        pytest.param(
            "https://api.example.com/api/v1/", "https://api.example.com/api/v1", id="trailing-slash"
        ),
        pytest.param(
            "https://10.0.0.1:8443", "https://10.0.0.1:8443/api/v1", id="https-private-ip-origin"
        ),
        pytest.param(
            "HTTPS://API.Example.COM/api/v1", "https://api.example.com/api/v1", id="upper-case"
        ),
        pytest.param(
            "https://proxy.example/userplane/api/v1",
            "https://proxy.example/userplane/api/v1",
            id="below-a-prefix",
        ),
        pytest.param(
            "http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/api/v1", id="http-ipv4-loopback"
        ),
        pytest.param(
            "http://[::1]:9000/", "http://[::1]:9000/api/v1", id="http-ipv6-loopback-origin"
        ),
        pytest.param(
            "http://localhost:1234/api/v1", "http://localhost:1234/api/v1", id="http-localhost"
        ),
    ],
)
def test_check_base_url_accepts(base_url: str, expected: str) -> None:
    """https anywhere, plain http on loopback; trailing slashes go, a bare origin gets /api/v1."""
    assert str(check_base_url(base_url)) == expected


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        pytest.param("http://api.userplane.io/api/v1", "https", id="http-public"),
        pytest.param("http://10.0.0.1:8080", "https", id="http-private"),
        pytest.param("http://169.254.169.254/latest", "https", id="http-metadata"),
        pytest.param("http://localhost.evil.example", "https", id="http-localhost-lookalike"),
        pytest.param("http://localhost@evil.example", "https", id="http-userinfo-lookalike"),
        pytest.param("https://user:pass@api.example.com", "credentials", id="userinfo"),
        pytest.param("https://user@api.example.com", "credentials", id="user-only"),
        pytest.param("http://user:pass@127.0.0.1:8080", "credentials", id="loopback-userinfo"),
        pytest.param("https://api.example.com/v1?key=uspl_x", "query", id="query"),
        pytest.param("https://api.example.com/v1#top", "fragment", id="fragment"),
        pytest.param("ftp://api.example.com", "absolute", id="ftp"),
        pytest.param("file:///etc/passwd", "absolute", id="file"),
        pytest.param("ws://localhost:8080", "absolute", id="websocket"),
        pytest.param("javascript:alert(1)", "absolute", id="javascript"),
        pytest.param("api.example.com/api/v1", "absolute", id="no-scheme"),
        pytest.param("//api.example.com/api/v1", "absolute", id="scheme-relative"),
        pytest.param("/api/v1", "absolute", id="path-only"),
        pytest.param("https://", "absolute", id="no-host"),
        pytest.param("", "absolute", id="empty"),
        pytest.param("not a url", "absolute", id="words"),
        pytest.param("http://[::1", "valid", id="broken-ipv6"),
        pytest.param("https://api.example.com:99999", "valid", id="port-out-of-range"),
        pytest.param("https://api.user plane.io/api/v1", "valid", id="space-in-host"),
    ],
)
def test_check_base_url_refuses(base_url: str, reason: str) -> None:
    """Plain http off loopback, credentials, queries, other schemes and garbage are refused."""
    with pytest.raises(ConfigurationError, match=reason):
        check_base_url(base_url)


@pytest.mark.parametrize(
    "path", ["/v1", "/api", "/api/v2", "/api/v1/public", "/api/v1/public/me", "/" + "x" * 500]
)
def test_a_base_url_off_the_api_path_says_what_was_expected(path: str) -> None:
    """A path that is not the API's fails at once, naming /api/v1 and (cut short) the path."""
    with pytest.raises(ConfigurationError) as caught:
        check_base_url(f"https://api.example.com{path}")
    message = str(caught.value)
    assert "must end in /api/v1 (like https://api.userplane.io/api/v1)" in message
    assert path[:30] in message
    assert len(message) < 200


def test_configuration_error_is_a_value_error() -> None:
    """A refused base URL can be caught as ValueError too."""
    with pytest.raises(ValueError, match="https"):
        check_base_url("http://api.example.com")


# --- redact_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            STORAGE + "?X-Amz-Signature=SECRETSIG&X-Amz-Credential=SECRETCRED",
            STORAGE + "?<redacted>",
            id="presigned-query",
        ),
        pytest.param("https://user:secret@h.example/p", "https://h.example/p", id="userinfo"),
        pytest.param("https://h.example/p#access_token=abc", "https://h.example/p", id="fragment"),
        pytest.param("https://u:p@h.example/p?a=1#f", "https://h.example/p?<redacted>", id="all"),
        pytest.param("https://h.example/p", "https://h.example/p", id="plain"),
        pytest.param("https://h.example:8443/a/b", "https://h.example:8443/a/b", id="port"),
        pytest.param(
            "https://h.example/p?x=%ZZ", "https://h.example/p?<redacted>", id="bad-escape"
        ),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """redact_url keeps scheme, host, port and path, and hides query, userinfo and fragment."""
    assert redact_url(url) == repr(shown)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(None, "None", id="none"),
        pytest.param("recordings/rec_1?sig=SECRET", "'<relative URL>'", id="relative"),
        pytest.param("http://[::1/p?sig=SECRET", "'<unparseable URL>'", id="unparseable"),
    ],
)
def test_redact_url_odd_values(value: object, shown: str) -> None:
    """None, relative and unparseable URLs are shown as placeholders, never as given."""
    assert redact_url(value) == shown


@given(query=url_parts, user=url_parts, password=url_parts, fragment=url_parts)
@example(query="SECRETSIG", user="admin", password="hunter2", fragment="token")
def test_redact_url_never_shows_secrets(
    query: str, user: str, password: str, fragment: str
) -> None:
    """Whatever the query, userinfo and fragment hold, none of it appears in the output."""
    secrets = [query, user, password, fragment]
    url = (
        f"https://{quote(user, safe='')}:{quote(password, safe='')}@storage.example.com"
        f"/recordings/rec_1/video.mp4?X-Amz-Signature={quote(query, safe='')}"
        f"#{quote(fragment, safe='')}"
    )
    expected = repr(STORAGE + "?<redacted>")
    assume(not any(s in expected or quote(s, safe="") in expected for s in secrets))

    shown = redact_url(url)

    assert shown == expected
    for secret in secrets:
        assert secret not in shown
        assert quote(secret, safe="") not in shown


# --- path_segment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("rec_1", "rec_1", id="plain"),
        pytest.param("a-b.c~d", "a-b.c~d", id="unreserved"),
        pytest.param("a/b", "a%2Fb", id="slash"),
        pytest.param("../admin", "..%2Fadmin", id="dot-dot-slash"),
        pytest.param("a?b=c", "a%3Fb%3Dc", id="question-mark"),
        pytest.param("a#b", "a%23b", id="hash"),
        pytest.param("100%", "100%25", id="percent"),
        pytest.param("%2F", "%252F", id="encoded-slash"),
        pytest.param("a b", "a%20b", id="space"),
        pytest.param("a+b", "a%2Bb", id="plus"),
        pytest.param("a;b", "a%3Bb", id="semicolon"),
        pytest.param("a\\b", "a%5Cb", id="backslash"),
        pytest.param("\u00e9t\u00e9", "%C3%A9t%C3%A9", id="latin"),
        pytest.param("\u65e5\u672c", "%E6%97%A5%E6%9C%AC", id="cjk"),
        pytest.param("...", "...", id="three-dots"),
    ],
)
def test_path_segment_encodes(value: str, expected: str) -> None:
    """IDs are percent-encoded so that reserved and non-ASCII characters stay in one segment."""
    assert path_segment(value, "recording_id") == expected


@given(value=st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=128))
def test_path_segment_is_one_segment(value: str) -> None:
    """Any other ID becomes one ASCII segment without / ? # that decodes back to the ID."""
    assume(value not in (".", ".."))

    segment = path_segment(value, "link_id")

    assert segment.isascii()
    assert not {"/", "?", "#", " "} & set(segment)
    assert segment not in ("", ".", "..")
    assert unquote(segment, errors="strict") == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param(None, id="none"),
        pytest.param(42, id="int"),
        pytest.param(b"rec_1", id="bytes"),
        pytest.param(["rec_1"], id="list"),
        pytest.param("rec_\ud800", id="lone-surrogate"),
        pytest.param("rec_1\n", id="newline"),
        pytest.param("rec\x00", id="nul"),
        pytest.param("r" * 129, id="too-long"),
    ],
)
def test_path_segment_refuses(value: object) -> None:
    """Empty, dot and dot-dot IDs, unencodable text and non-str values raise InvalidIDError."""
    with pytest.raises(InvalidIDError, match="recording_id"):
        path_segment(value, "recording_id")


def test_a_long_id_is_refused_with_its_length_and_a_short_excerpt() -> None:
    """A 20,000-character ID says what is wrong in a line, not by echoing 20,000 characters."""
    with pytest.raises(InvalidIDError) as caught:
        path_segment("x" * 20_000, "recording_id")
    message = str(caught.value)
    assert message == (
        f"recording_id {'x' * 40 + '...'!r} is 20,000 characters long; IDs have at most 128"
    )


def test_invalid_id_error_is_a_value_error() -> None:
    """An invalid ID can be caught as ValueError too."""
    with pytest.raises(ValueError, match="workspace_id"):
        path_segment("..", "workspace_id")

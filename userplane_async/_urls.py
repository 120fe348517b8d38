"""URL policy (https only, except loopback), redaction, and safe path building."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import quote

from yarl import URL

from ._errors import ConfigurationError, InvalidIDError
from ._names import MAX_ID_LENGTH

API_PATH = "/api/v1"
DEFAULT_BASE_URL = f"https://api.userplane.io{API_PATH}"

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only hosts allowed over plain http."""
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_NOT_URL_TEXT = re.compile(r"[^\x21-\x7e]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def _valid_host(host: str | None) -> bool:
    """A DNS name (IDNA-encoded, as yarl gives it) or an IP address in its canonical form."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    try:  # 2852039166, 0xa9.0xfe.0xa9.0xfe, 10.1: resolvers read these as IP addresses too
        socket.inet_aton(host)
    except OSError:
        return _HOSTNAME.fullmatch(host) is not None
    return False


def redact_url(url: object) -> str:
    """Show a URL without its query, fragment or user info: presigned queries are secrets."""
    if url is None:
        return "None"
    try:
        parsed = URL(str(url), encoded=True)
    except (ValueError, TypeError):
        return "'<unparseable URL>'"
    if not parsed.absolute:
        return "'<relative URL>'"
    shown = parsed.with_user(None).with_query(None).with_fragment(None)
    suffix = "?<redacted>" if parsed.raw_query_string else ""
    return repr(f"{shown}{suffix}")


def check_base_url(base_url: str) -> URL:
    """Parse the API base URL, refusing anything but https (or http on a loopback host)."""
    try:
        url = URL(base_url.rstrip("/"))
    except (ValueError, TypeError):
        raise ConfigurationError("base_url is not a valid URL") from None
    if url.scheme not in ("http", "https") or not _valid_host(url.raw_host):
        raise ConfigurationError("base_url must be an absolute http(s) URL with a valid host")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigurationError("base_url must use https (plain http is allowed only on loopback)")
    if url.user is not None or url.password is not None:
        raise ConfigurationError("base_url must not contain credentials; pass api_key instead")
    if url.query_string or url.fragment:
        raise ConfigurationError("base_url must not have a query or fragment")
    if url.raw_path in ("", "/"):  # a bare origin: the API lives below it
        return url.with_path(API_PATH)
    if not url.raw_path.endswith(API_PATH):
        raise ConfigurationError(
            f"base_url must end in {API_PATH} (like {DEFAULT_BASE_URL}),"
            f" not in {_shown(url.raw_path)}"
        )
    return url


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted, cut to ``limit`` characters: errors name bad input without echoing it all."""
    return repr(text if len(text) <= limit else f"{text[:limit]}...")


def path_segment(value: object, name: str) -> str:
    """Percent-encode one ID as a single path segment, refusing values that could move the path."""
    if not isinstance(value, str):
        raise InvalidIDError(f"{name} must be a str, not {type(value).__name__}")
    if value in ("", ".", ".."):
        raise InvalidIDError(f"{name} must be a non-empty ID other than '.' or '..'")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIDError(
            f"{name} {_shown(value)} is {len(value):,} characters long;"
            f" IDs have at most {MAX_ID_LENGTH}"
        )
    if _CONTROL.search(value):
        raise InvalidIDError(f"{name} {_shown(value)} contains control characters")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:  # lone surrogates: no URL can carry them
        raise InvalidIDError(f"{name} is not valid Unicode text") from None


def storage_url_problem(url: str | None) -> str | None:
    """Why a presigned URL must not be fetched, or None if it may (design rule 3, fault #26).

    Plain http is for loopback only; user info, other schemes and IP literals in private,
    link-local or otherwise internal ranges (cloud metadata at 169.254.169.254) are refused.
    """
    if not isinstance(url, str):
        return "the URL is not a string"
    if _NOT_URL_TEXT.search(url):  # what yarl would drop or aiohttp refuse: not byte for byte
        return "the URL has spaces, control or non-ASCII characters"
    try:
        parsed = URL(url, encoded=True)
    except (ValueError, TypeError):
        return "the URL cannot be parsed"
    if parsed.scheme not in ("http", "https") or not _valid_host(parsed.raw_host):
        return "only absolute http(s) URLs with a valid host are fetched"
    if parsed.user is not None or parsed.password is not None:
        return "the URL carries user info"
    host = parsed.raw_host or ""
    if parsed.scheme == "http" and not is_loopback(host):
        return "plain http is allowed only on loopback hosts"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_loopback and not address.is_global:
        return "the URL points at a private or reserved address"
    return None

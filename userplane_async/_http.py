"""The one place that talks HTTP to the API: auth, limiter, retries, error translation.

aiohttp exceptions stop here (:func:`translate`); above this module only our errors exist,
and they keep no link to aiohttp's, whose messages carry full URLs and request headers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import attrs
from yarl import URL

from ._budget import Limiter
from ._clock import Clock
from ._errors import (
    ClientClosedError,
    ConnectError,
    RequestTimeoutError,
    ResponseFormatError,
    TLSError,
    TransportError,
    UserplaneAPIError,
    api_error,
)
from ._retry import RetryPolicy, call_with_retries, logger, parse_retry_after
from ._version import __version__

#: API answers are small JSON documents; anything larger is a broken or hostile server.
MAX_API_BODY = 8 * 1024 * 1024
_USER_AGENT = f"userplane-async/{__version__}"


@attrs.frozen
class Timeout:
    """Seconds to wait: to connect, for the next bytes of an answer, and for a whole API call.

    ``total`` bounds one API attempt only; downloads have no total, a stalled body is caught by
    ``read`` instead.
    """

    connect: float | None = 10.0
    read: float | None = 30.0
    total: float | None = 60.0

    @classmethod
    def of(cls, value: float | Timeout) -> Timeout:
        return value if isinstance(value, Timeout) else cls(value, value, value)


#: What aiohttp and the event loop raise for network trouble; :func:`translate` maps each.
FOREIGN_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def translate(exc: BaseException) -> TransportError:
    """Our error for an aiohttp or timeout exception, with no URL, header or cause inside.

    Callers raise the result *outside* their ``except`` block, so not even ``__context__``
    keeps the original (whose ``request_info`` holds the request headers, API key included).
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectError("timed out while connecting")
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return RequestTimeoutError("timed out waiting for the server")
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLSError("the TLS handshake failed (certificate or protocol)")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"cannot connect to {exc.host}:{exc.port} ({exc.strerror})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError("the server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransportError("the response body was cut short or malformed")
    if isinstance(exc, aiohttp.ClientError):
        return TransportError(f"HTTP transport failed ({type(exc).__name__})")
    if isinstance(exc, OSError):
        return TransportError(f"network error ({exc.strerror or type(exc).__name__})")
    raise TypeError(f"not a transport failure: {type(exc).__name__}")  # pragma: no cover


class ApiTransport:
    """Sends API calls with the bearer key and returns each answer's ``data`` object."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: URL,
        timeout: Timeout,
        retry: RetryPolicy,
        limiter: Limiter,
        clock: Clock,
        session: aiohttp.ClientSession | None,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url
        self._timeout = aiohttp.ClientTimeout(
            total=timeout.total, sock_connect=timeout.connect, sock_read=timeout.read
        )
        self._retry = retry
        self.limiter = limiter
        self._clock = clock
        self._user_session = session
        self._own_session: aiohttp.ClientSession | None = None
        self.closed = False

    async def request(
        self,
        method: str,
        segments: Sequence[str],
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``method /segments...`` and return the envelope's ``data`` object.

        ``segments`` are already percent-encoded path segments below the base URL.
        """
        url = URL(f"{self.base_url}/{'/'.join(segments)}", encoded=True)
        if params:
            url = url.extend_query(params)
        numbers = itertools.count(1)
        return await call_with_retries(
            lambda: self._attempt(method, url, body, next(numbers)),
            policy=self._retry,
            clock=self._clock,
            limiter=self.limiter,
            what=f"{method} {url.raw_path}",
            idempotent=method == "GET",
        )

    async def _attempt(
        self, method: str, url: URL, body: Mapping[str, Any] | None, number: int
    ) -> Any:
        queued = self._clock.monotonic()
        async with self.limiter.slot() as turn:
            sent = self._clock.monotonic()
            error: TransportError | None = None
            try:
                status, headers, raw = await self._exchange(method, url, body)
                turn.status = status
            except FOREIGN_ERRORS as exc:
                error = translate(exc)
            # The path and query carry IDs and filters only; the key travels in a header.
            logger.debug(
                "API %s %s -> %s in %.3f s (attempt %d, waited %.2f s for the budget)",
                method,
                url.raw_path_qs,
                type(error).__name__ if error else status,
                self._clock.monotonic() - sent,
                number,
                sent - queued,
            )
            if error is None:
                return self._data_or_raise(status, headers, raw)
        raise error

    async def _exchange(
        self, method: str, url: URL, body: Mapping[str, Any] | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        async with self._session().request(
            method,
            url,
            json=body,
            headers=headers,
            allow_redirects=False,
            raise_for_status=False,  # a user session may default to True; we read every status
            timeout=self._timeout,
        ) as response:
            return response.status, response.headers, await _read_capped(response)

    def _data_or_raise(self, status: int, headers: Mapping[str, str], raw: bytes) -> Any:
        if not 200 <= status < 300:
            raise self._error(status, headers, raw)
        try:
            envelope = json.loads(raw)
        except (ValueError, RecursionError):  # nested deeper than the parser goes: not an answer
            raise ResponseFormatError("unexpected response at $: not JSON", path="$") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
            raise ResponseFormatError("unexpected response at $.data: not an object", path="$.data")
        return envelope["data"]

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UserplaneAPIError:
        code, message = None, f"HTTP {status} with no error details"
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict):
            code = body.get("error") if isinstance(body.get("error"), str) else None
            if isinstance(body.get("message"), str) and body["message"]:
                message = self._scrub(body["message"])
        if 300 <= status < 400:
            message = f"the API answered with a redirect ({status}); redirects are not followed"
        retry_after = parse_retry_after(headers.get("Retry-After"), self._clock.time())
        return api_error(status, code, message, retry_after=retry_after)

    def _scrub(self, text: str) -> str:
        """Server text can echo the request; never let it carry the key onwards."""
        return text.replace(self._api_key, "<redacted>")[:1000]

    def _session(self) -> aiohttp.ClientSession:
        if self.closed:
            raise ClientClosedError("this AsyncUserplane client is closed")
        if self._user_session is not None:
            if self._user_session.closed:
                raise ClientClosedError("the aiohttp session given to AsyncUserplane is closed")
            return self._user_session
        if self._own_session is None:
            self._own_session = aiohttp.ClientSession(
                trust_env=False,  # no proxies or netrc credentials picked up from the environment
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._own_session

    async def aclose(self) -> None:
        self.closed = True
        if self._own_session is not None:
            session, self._own_session = self._own_session, None
            await session.close()


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """Read an API answer, refusing bodies past :data:`MAX_API_BODY` (decompressed)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_API_BODY:
            limit = MAX_API_BODY // (1024 * 1024)
            raise ResponseFormatError(
                f"unexpected response at $: larger than {limit} MiB", path="$"
            )
        chunks.append(chunk)
    return b"".join(chunks)

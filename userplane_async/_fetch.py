"""Storage requests: one at a time, and the resolve-and-retry loop around them.

The SDK's second HTTP boundary (``_http`` is the first). Storage requests go through a session
of their own with no default headers, no cookies, no environment proxies or netrc, no redirects
and no decompression, and the presigned URL is sent byte for byte. A URL serves one request
and is never stored, logged or put in an error (design rules 1-5).
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import aiohttp
import anyio
from yarl import URL

from ._clock import Clock
from ._errors import (
    ClientClosedError,
    IntegrityError,
    ResourceUnavailableError,
    StorageError,
    TLSError,
    TransportError,
    URLExpiredError,
    URLPolicyError,
)
from ._http import FOREIGN_ERRORS, Timeout, translate
from ._models import RecordingResource, ResourceKind
from ._ranges import ByteRange
from ._retry import RetryPolicy, logger
from ._urls import storage_url_problem

T = TypeVar("T")
Resolve = Callable[[], Awaitable[RecordingResource]]
OnRetry = Callable[[int, str], object]  # (the attempt about to start, why), never a URL

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")
_MAX_ERROR_BODY = 16 * 1024
_MAX_EXPIRED = 3  # fresh URLs that may come back expired before we give up
# asyncio reads at most 256 KiB at a time; a buffer that large pauses the socket less often.
_READ_BUFFER = 256 * 1024


class Restart(Exception):
    """The object store cannot continue where we stopped: start again from byte 0."""


class Changed(Restart):
    """412: the object's ETag is no longer the one ``If-Match`` named."""


class Unsatisfiable(Restart):
    """416: the range asked for lies past the end of the object (``size`` bytes, if said)."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


class Expired(Exception):
    """The object store says the URL has expired: resolve a fresh one."""


class Broken(Exception):
    """The body ended before the announced size: resume from where it stopped."""


def _storage_error(status: int, body: bytes, content_range: str = "") -> Exception:
    fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
    code, message = fields.get("Code"), fields.get("Message", "")
    if status == 403 and code == "AccessDenied" and "expired" in message.lower():
        return Expired()
    if status == 412:
        return Changed("the object changed since the download started")
    if status == 416:
        size = _UNSATISFIED_RANGE.fullmatch(content_range)
        message = "the object store could not serve the range asked for"
        return Unsatisfiable(message, None if size is None else int(size[1]))
    if 300 <= status < 400:
        message = "redirects from the object store are not followed"
    text = f"the object store answered {status}{f' {code}' if code else ''}"
    return StorageError(f"{text}: {message}" if message else text, status=status, code=code)


def _host(url: str) -> str:
    """Where a storage request goes, for logs: the host only, never the signed path and query."""
    return URL(url, encoded=True).host_port_subcomponent or "?"


def _shown(headers: dict[str, str]) -> str:
    return f"range={headers.get('Range', 'all')}" + (" if-match" if "If-Match" in headers else "")


def _closed_meanwhile() -> ClientClosedError:
    return ClientClosedError("the AsyncUserplane client was closed while this was under way")


def _retryable(error: Exception) -> bool:
    if isinstance(error, StorageError):
        return error.status >= 500
    return not isinstance(error, TLSError)  # a break, a restart or a network failure


class StorageSession:
    """The storage side of one client: a credential-free session and two pools of slots.

    Downloads and streams have separate pools, so neither waits for the other: a stream is
    open for as long as its caller reads (a viewer may take minutes).
    """

    def __init__(
        self,
        *,
        concurrency: int,
        stream_concurrency: int,
        timeout: Timeout,
        retry: RetryPolicy,
        clock: Clock,
    ) -> None:
        self._download_slots = anyio.Semaphore(concurrency)
        self._stream_slots = anyio.Semaphore(stream_concurrency)
        self._stream_holder: contextvars.ContextVar[object] = contextvars.ContextVar("stream")
        # A connection for every slot, plus one per stream slot for a stream opened inside
        # another's block (it shares the slot but not the connection): callers should wait
        # for slots, never for connections while holding a slot.
        self._connections = concurrency + 2 * stream_concurrency
        # No total: a healthy body may take as long as it takes; a stall trips sock_read.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout.connect, sock_read=timeout.read
        )
        self.retry = retry
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._waits: set[anyio.CancelScope] = set()
        self._responses: weakref.WeakSet[aiohttp.ClientResponse] = weakref.WeakSet()
        self.closed = False

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the client's ``concurrency`` download slots, held for a whole download."""
        async with self._holding(self._download_slots):
            yield

    @asynccontextmanager
    async def stream_slot(self) -> AsyncIterator[None]:
        """One of the client's ``stream_concurrency`` slots, held while a stream is open.

        A task that already holds one (a stream opened inside another stream's block) shares
        it: waiting for a second slot while holding the first could wait forever. Tasks it
        starts take their own.
        """
        task = asyncio.current_task()
        if self._stream_holder.get(None) is task:
            yield
            return
        async with self._holding(self._stream_slots):
            token = self._stream_holder.set(task)
            try:
                yield
            finally:
                self._stream_holder.reset(token)

    @asynccontextmanager
    async def _holding(self, slots: anyio.Semaphore) -> AsyncIterator[None]:
        with self._until_closed():
            await slots.acquire()
        try:
            yield
        finally:
            slots.release()

    @contextmanager
    def _until_closed(self) -> Iterator[None]:
        """A wait that ``aclose()`` ends with :class:`ClientClosedError` instead of never."""
        if self.closed:
            raise ClientClosedError("this AsyncUserplane client is closed")
        with anyio.CancelScope() as scope:
            self._waits.add(scope)
            try:
                yield
            finally:
                self._waits.discard(scope)
        if scope.cancelled_caught:
            raise _closed_meanwhile()

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                read_bufsize=_READ_BUFFER,
            )
        return self._session

    async def get(
        self, url: str, wanted: ByteRange | None, if_match: str | None
    ) -> aiohttp.ClientResponse:
        """Send one storage GET; the caller owns (and must close) the response."""
        headers = {"Accept-Encoding": "identity"}
        if wanted is not None:
            headers["Range"] = wanted.header
        if if_match:
            headers["If-Match"] = if_match
        try:
            with self._until_closed():
                response = await self._client_session().get(
                    URL(url, encoded=True),
                    headers=headers,
                    allow_redirects=False,
                    raise_for_status=False,
                    timeout=self._timeout,
                )
        except FOREIGN_ERRORS as exc:
            error: Exception = translate(exc)
            logger.debug(
                "storage GET %s %s -> %s", _host(url), _shown(headers), type(error).__name__
            )
        else:
            logger.debug("storage GET %s %s -> %d", _host(url), _shown(headers), response.status)
            if not self.closed:
                self._responses.add(response)
                return response
            response.close()  # aclose() came after the answer but before this task resumed
            error = _closed_meanwhile()
        raise error

    async def aclose(self) -> None:
        """Close every connection, and end every wait and read on them at once.

        aiohttp drops a closed connection's reader and timer, so a body being read would wait
        forever: its reader gets a :class:`ClientClosedError` instead.
        """
        self.closed = True
        for wait in self._waits:
            wait.cancel()
        for response in self._responses:
            if not response.content.at_eof():
                response.content.set_exception(_closed_meanwhile())
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class Fetch:
    """Fetching one resource: fresh URLs, storage answers checked, retries bounded."""

    def __init__(
        self,
        storage: StorageSession,
        resolve: Resolve,
        recording_id: str,
        kind: ResourceKind,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.storage = storage
        self._on_retry = on_retry
        self._resolve = resolve
        self.recording_id = recording_id
        self.kind = kind
        self.where = f"{recording_id}/{kind.value}"
        self.resource = RecordingResource(recording_id=recording_id)
        self.etag: str | None = None
        self.attempts = 0
        self.resolutions = 0

    async def resolve(self) -> RecordingResource:
        """A fresh presigned URL from the API, just before it is used."""
        self.resource = await self._resolve()
        self.resolutions += 1
        if not self.resource.available:
            message = self.resource.message or f"{self.where} is not available"
            raise ResourceUnavailableError(message, capture_enabled=self.resource.capture_enabled)
        return self.resource

    async def retrying(
        self, step: Callable[[], Awaitable[T]], on_restart: Callable[[Restart], Awaitable[None]]
    ) -> T:
        """Run ``step`` until it succeeds, resolving a fresh URL before every retry (rule 1).

        Breaks resume after a jittered backoff, bounded by the retry policy's attempts; an
        expired URL is re-resolved at once, a bounded number of times; anything else raises.
        """
        policy, failures, expired = self.storage.retry, 0, 0
        while True:
            try:
                return await step()
            except (Expired, Restart, Broken, TransportError, StorageError) as exc:
                error = exc
            if isinstance(error, Expired):
                expired += 1
                if expired > _MAX_EXPIRED:
                    raise URLExpiredError("the object store kept refusing fresh URLs as expired")
            else:
                failures += 1
                if not _retryable(error) or failures >= policy.attempts:
                    raise _final(error, failures)
                if isinstance(error, Restart):
                    await on_restart(error)
                await self.storage.clock.sleep(policy.backoff(failures) * policy.wait_scale)
            if self._on_retry is not None:
                reason = "the URL expired" if isinstance(error, Expired) else str(error)
                self._on_retry(self.attempts + 1, reason)
            await self.resolve()

    async def answer(self, offset: int) -> tuple[aiohttp.ClientResponse, int | None]:
        """One storage request from ``offset``, a resume under the ETag of the bytes so far."""
        if not offset:
            return await self.request(None, None)
        return await self.request(ByteRange(offset), self.etag)

    async def request(
        self, wanted: ByteRange | None, if_match: str | None
    ) -> tuple[aiohttp.ClientResponse, int | None]:
        """One storage request for ``wanted`` (None: all of it): a 200 or an exact 206, and
        the object's size."""
        problem = storage_url_problem(self.resource.url)
        if problem is not None:
            raise URLPolicyError(f"refused the presigned URL: {problem}")
        self.attempts += 1
        response = await self.storage.get(self.resource.url or "", wanted, if_match)
        try:
            return response, await self._size_of(response, wanted or ByteRange(0))
        except BaseException:
            response.close()
            raise

    async def _size_of(self, response: aiohttp.ClientResponse, wanted: ByteRange) -> int | None:
        if response.status == 200:
            self.etag = response.headers.get("ETag")
            return response.content_length
        if response.status == 206:
            found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if found is None or wanted.within(int(found[3])) != (int(found[1]), int(found[2])):
                raise Restart("the object store answered a different range than asked")
            return int(found[3])
        try:
            body = await response.content.read(_MAX_ERROR_BODY)
        except FOREIGN_ERRORS:
            body = b""
        raise _storage_error(response.status, body, response.headers.get("Content-Range", ""))


def _final(error: Exception, failures: int) -> Exception:
    if isinstance(error, (Restart, Broken)):
        return IntegrityError(f"{error.args[0]}; gave up after {failures} attempts")
    return error

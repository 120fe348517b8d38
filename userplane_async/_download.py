"""Downloads and streams: resolve a fresh URL, fetch it without credentials, resume, verify.

The second HTTP boundary of the SDK (``_http`` is the first): storage requests go through a
session of their own with no default headers, no cookies, no environment proxies or netrc,
no redirects and no decompression, and the presigned URL is sent byte for byte. A URL is
used for one request only and never stored, logged or put in an error (design rules 1-5).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiohttp
import anyio
from yarl import URL

from ._clock import Clock
from ._errors import (
    ClientClosedError,
    DestinationError,
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
from ._results import DownloadResult
from ._retry import RetryPolicy
from ._sinks import FileSink, hash_file
from ._urls import storage_url_problem

T = TypeVar("T")
Resolve = Callable[[], Awaitable[RecordingResource]]
Progress = Callable[[int, "int | None"], object]

#: File name extensions by MIME type (design §4); anything else is saved as ``.bin``.
EXTENSIONS = {
    "video/webm": "webm",
    "video/mp4": "mp4",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_XML_FIELD = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")
_MAX_ERROR_BODY = 16 * 1024
_MAX_EXPIRED = 3  # fresh URLs that may come back expired before we give up


def file_name(kind: ResourceKind, content_type: str | None) -> str:
    """``<kind>.<ext>``, the extension taken from the MIME type."""
    mime = (content_type or "").split(";")[0].strip().lower()
    return f"{kind.value}.{EXTENSIONS.get(mime, 'bin')}"


async def target_path(
    dest: str | os.PathLike[str], kind: ResourceKind, content_type: str | None
) -> Path:
    """``dest`` itself, or ``dest/<kind>.<ext>`` when it is (or names, with a slash) a directory."""
    path = Path(dest)
    is_dir = str(dest).endswith(("/", os.sep)) or await anyio.Path(path).is_dir()
    target = path / file_name(kind, content_type) if is_dir else path
    try:
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationError(
            f"cannot create {target.parent}: {exc.strerror}", errno=exc.errno
        ) from None
    return target


class _Restart(Exception):
    """The object store cannot continue where we stopped: start again from byte 0."""


class _Expired(Exception):
    """The object store says the URL has expired: resolve a fresh one."""


class _Broken(Exception):
    """The body ended before the announced size: resume from where it stopped."""


def _retryable(error: Exception) -> bool:
    if isinstance(error, StorageError):
        return error.status >= 500
    return not isinstance(error, TLSError)  # a break, a restart or a network failure


def _storage_error(status: int, body: bytes, where: str) -> Exception:
    fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
    code, message = fields.get("Code"), fields.get("Message", "")
    if status == 403 and code == "AccessDenied" and "expired" in message.lower():
        return _Expired()
    if status in (412, 416):
        return _Restart(f"the object store answered {status} to a resumed request")
    if 300 <= status < 400:
        message = "redirects from the object store are not followed"
    text = f"the object store answered {status}{f' {code}' if code else ''} for {where}"
    return StorageError(f"{text}: {message}" if message else text, status=status, code=code)


class Downloader:
    """Storage fetches of one client: a shared concurrency limiter and a credential-free session."""

    def __init__(
        self, *, concurrency: int, timeout: Timeout, retry: RetryPolicy, clock: Clock
    ) -> None:
        self.limiter = anyio.CapacityLimiter(concurrency)
        self._concurrency = concurrency
        # No total: a healthy body may take as long as it takes; a stall trips sock_read.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout.connect, sock_read=timeout.read
        )
        self.retry = retry
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self.closed = False

    def session(self) -> aiohttp.ClientSession:
        if self.closed:
            raise ClientClosedError("this AsyncUserplane client is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def open(self, url: str, offset: int, etag: str | None) -> aiohttp.ClientResponse:
        """Send one storage GET; the caller owns (and must close) the response."""
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if etag:
                headers["If-Match"] = etag
        try:
            return await self.session().get(
                URL(url, encoded=True),
                headers=headers,
                allow_redirects=False,
                raise_for_status=False,
                timeout=self._timeout,
            )
        except FOREIGN_ERRORS as exc:
            error = translate(exc)
        raise error

    async def download(
        self,
        resolve: Resolve,
        kind: ResourceKind,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> DownloadResult:
        job = _Job(self, resolve, kind, progress)
        resource = await job.resolve()
        path = await target_path(dest, kind, resource.type)
        size = resource.size
        if not overwrite and size is not None and await _existing_size(path) == size:
            return job.result(path, size, await hash_file(path), skipped=True)
        async with await FileSink.create(path) as sink:
            await job.run(sink)
            await sink.commit(path)
        return job.result(path, sink.received, sink.sha256)

    async def aclose(self) -> None:
        self.closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _existing_size(path: Path) -> int | None:
    try:
        return (await anyio.Path(path).stat()).st_size
    except OSError:
        return None


class _Job:
    """One download or stream: resolving, the storage requests, retries, and their counts."""

    def __init__(
        self,
        downloader: Downloader,
        resolve: Resolve,
        kind: ResourceKind,
        progress: Progress | None,
    ) -> None:
        self._downloader = downloader
        self._resolve = resolve
        self._kind = kind
        self._progress = progress
        self._etag: str | None = None
        self.resource = RecordingResource(recording_id="")
        self.attempts = 0
        self.resolutions = 0

    @property
    def where(self) -> str:
        return f"{self.resource.recording_id}/{self._kind.value}"

    def _ids(self) -> dict[str, str]:
        return {"recording_id": self.resource.recording_id, "kind": self._kind.value}

    async def resolve(self) -> RecordingResource:
        """A fresh presigned URL from the API, just before it is used."""
        self.resource = await self._resolve()
        self.resolutions += 1
        if not self.resource.available:
            message = self.resource.message or f"{self.where} is not available"
            raise ResourceUnavailableError(
                message, capture_enabled=self.resource.capture_enabled, **self._ids()
            )
        return self.resource

    def result(
        self, path: Path, size: int, sha256: str, *, skipped: bool = False
    ) -> DownloadResult:
        return DownloadResult(
            path=path,
            size=size,
            sha256=sha256,
            content_type=self.resource.type,
            attempts=self.attempts,
            resolutions=self.resolutions,
            skipped=skipped,
        )

    async def retrying(
        self, step: Callable[[], Awaitable[T]], on_restart: Callable[[], Awaitable[None]]
    ) -> T:
        """Run ``step`` until it succeeds; before each retry, resolve a fresh URL (rule 1).

        Breaks resume after a jittered backoff, bounded by the retry policy's attempts; an
        expired URL is re-resolved at once, a bounded number of times; anything else raises.
        """
        policy, failures, expired = self._downloader.retry, 0, 0
        while True:
            try:
                return await step()
            except _Expired:
                expired += 1
                if expired > _MAX_EXPIRED:
                    message = (
                        f"the object store kept refusing fresh URLs for {self.where} as expired"
                    )
                    raise URLExpiredError(message, **self._ids()) from None
            except (_Restart, _Broken, TransportError, StorageError) as error:
                failures += 1
                if not _retryable(error) or failures >= policy.attempts:
                    raise self._final(error, failures) from None
                if isinstance(error, _Restart):
                    await on_restart()
                await self._downloader.clock.sleep(policy.backoff(failures) * policy.wait_scale)
            await self.resolve()

    def _final(self, error: Exception, failures: int) -> Exception:
        if isinstance(error, (_Restart, _Broken)):
            return IntegrityError(
                f"{self.where}: {error.args[0]}; gave up after {failures} attempts", **self._ids()
            )
        return error

    async def answer(self, offset: int) -> tuple[aiohttp.ClientResponse, int | None]:
        """One storage request from ``offset``: a 200 or an exact 206, and the object's size."""
        problem = storage_url_problem(self.resource.url)
        if problem is not None:
            raise URLPolicyError(f"refused the URL for {self.where}: {problem}", **self._ids())
        self.attempts += 1
        response = await self._downloader.open(self.resource.url or "", offset, self._etag)
        try:
            return response, await self._size_of(response, offset)
        except BaseException:
            response.close()
            raise

    async def _size_of(self, response: aiohttp.ClientResponse, offset: int) -> int | None:
        if response.status == 200:
            self._etag = response.headers.get("ETag")
            return response.content_length
        if response.status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if match is None or int(match[1]) != offset or int(match[2]) != int(match[3]) - 1:
                raise _Restart("the object store answered a different range than asked")
            return int(match[3])
        try:
            body = await response.content.read(_MAX_ERROR_BODY)
        except FOREIGN_ERRORS:
            body = b""
        raise _storage_error(response.status, body, self.where)

    async def run(self, sink: FileSink) -> None:
        """Fetch until the sink holds the whole object."""
        await self.retrying(lambda: self._attempt(sink), sink.restart)

    async def _attempt(self, sink: FileSink) -> None:
        async with self._downloader.limiter:
            response, total = await self.answer(sink.received)
            try:
                if response.status == 200 and sink.received:
                    await sink.restart()  # the whole object came back: start over, in place
                    self._report(0, total)
                await self._consume(response, total, sink)
            except FOREIGN_ERRORS as exc:
                response.close()  # never hand a half-read connection back to the pool
                error: Exception = translate(exc)
            except BaseException:
                response.close()
                raise
            else:
                response.release()
                return
        raise error

    async def _consume(
        self, response: aiohttp.ClientResponse, total: int | None, sink: FileSink
    ) -> None:
        announced = self.resource.size
        if total is not None and announced is not None and total != announced:
            message = f"{self.where}: the object store announced {total} bytes, the API {announced}"
            raise IntegrityError(message, **self._ids())
        expected = total if total is not None else announced
        async for chunk in response.content.iter_any():
            if await sink.send(chunk):
                self._report(sink.received, expected)
            if expected is not None and sink.received > expected:
                message = f"{self.where}: received more than the {expected} bytes announced"
                raise IntegrityError(message, **self._ids())
        if expected is not None and sink.received < expected:
            raise _Broken(f"the body stopped at {sink.received} of {expected} bytes")
        self._report(sink.received, expected)

    def _report(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(done, total)


class ResourceStream:
    """The bytes of one resource, for passing on: ``async for chunk in stream``.

    ``size`` is the whole object's size, ``offset`` where this stream starts in it. A break
    mid-body raises :class:`TransportError`; open a new stream at the offset reached to go on.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        content_type: str | None,
        size: int | None,
        offset: int,
        skip: int,
    ) -> None:
        self._response = response
        self._skip = skip
        self.content_type = content_type
        self.size = size
        self.etag = response.headers.get("ETag")
        self.offset = offset

    def __repr__(self) -> str:
        return (
            f"ResourceStream(content_type={self.content_type!r}, size={self.size}, "
            f"offset={self.offset})"
        )

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await self._response.content.readany()
            except FOREIGN_ERRORS as exc:
                error = translate(exc)
            else:
                if not chunk:
                    return
                if self._skip:  # the store ignored our Range: drop what was not asked for
                    dropped = min(self._skip, len(chunk))
                    chunk, self._skip = chunk[dropped:], self._skip - dropped
                if chunk:
                    yield chunk
                continue
            raise error


@asynccontextmanager
async def open_stream(
    downloader: Downloader, resolve: Resolve, kind: ResourceKind, offset: int
) -> AsyncIterator[ResourceStream]:
    """Open a resource for streaming, retrying the opening with fresh URLs; always closes it."""
    job = _Job(downloader, resolve, kind, None)

    async def past_the_end() -> None:
        raise StorageError(f"offset {offset} is past the end of {job.where}", status=416)

    async with downloader.limiter:
        await job.resolve()
        response, size = await job.retrying(lambda: job.answer(offset), past_the_end)
        try:
            yield ResourceStream(
                response,
                content_type=response.headers.get("Content-Type") or job.resource.type,
                size=size,
                offset=offset,
                skip=offset if response.status == 200 else 0,
            )
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()

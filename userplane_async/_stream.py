"""``recordings.stream()``: a resource's bytes handed on as they arrive, for web handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import attrs

from ._download import naming
from ._errors import RangeNotSatisfiableError, TransportError
from ._fetch import Changed, Fetch, Resolve, Restart, StorageSession, Unsatisfiable
from ._http import FOREIGN_ERRORS, translate
from ._models import ResourceKind
from ._ranges import ByteRange, content_range


@attrs.frozen
class _Slice:
    """Which bytes of the object a stream yields, and how to find them in the answer."""

    status: int  # what the stream's reader answers its own client: 200 whole, 206 a range
    size: int | None  # the whole object's
    first: int
    length: int | None  # None: up to the end of an object of unknown size
    skip: int = 0  # bytes before ``first`` in a 200 from a store that ignored our Range

    @property
    def content_range(self) -> str | None:
        if self.status != 206 or self.size is None or self.length is None:
            return None
        return content_range(self.first, self.first + self.length - 1, self.size)


def _past_end(wanted: ByteRange | None, size: int | None) -> RangeNotSatisfiableError:
    asked = wanted.header if wanted is not None else "the range"
    return RangeNotSatisfiableError(f"{asked} lies past the end of the object", size=size)


def _slice(response: aiohttp.ClientResponse, wanted: ByteRange | None, size: int | None) -> _Slice:
    """What the checked answer to a request for ``wanted`` gives the stream to yield."""
    if wanted is None:
        return _Slice(200, size, 0, size)
    if size is None:  # a 206 always says; a 200 without a length cannot be cut to a range
        raise Restart("the object store ignored the range and did not say the object's size")
    span = wanted.within(size)
    if span is None:  # a 200 from a store that ignored the range: the 416 it should have sent
        raise _past_end(wanted, size)
    first, last = span
    length = last - first + 1
    if response.status == 206 and response.content_length not in (None, length):
        raise Restart("the object store's Content-Length disagrees with its Content-Range")
    return _Slice(206, size, first, length, skip=first if response.status == 200 else 0)


class ResourceStream:
    """The bytes of one resource, or of a range of it, for passing on: ``async for chunk``.

    What a web handler needs to answer its own client: ``status`` (200 for the whole
    object, 206 for a range), ``content_range`` (the header to send with a 206, else None),
    ``content_length`` (the bytes this stream yields), ``size`` (the whole object's),
    ``content_type`` and ``etag``. ``offset`` is where the bytes start in the object.

    A break mid-body raises :class:`TransportError`; open a new stream at the offset reached
    to go on. Closing the client ends every open stream with :class:`ClientClosedError`.
    """

    def __init__(
        self, response: aiohttp.ClientResponse, part: _Slice, *, content_type: str | None
    ) -> None:
        self._response = response
        self._skip = part.skip
        self._left = part.length
        self.status = part.status
        self.size = part.size
        self.offset = part.first
        self.content_length = part.length
        self.content_range = part.content_range
        self.content_type = content_type
        self.etag = response.headers.get("ETag")

    def __repr__(self) -> str:
        return (
            f"ResourceStream(status={self.status}, content_type={self.content_type!r}, "
            f"size={self.size}, offset={self.offset}, content_length={self.content_length})"
        )

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while self._left is None or self._left > 0:
            chunk = await self._read()
            if not chunk:
                break
            if self._skip:  # the store ignored our Range: drop what was not asked for
                dropped = min(self._skip, len(chunk))
                chunk, self._skip = chunk[dropped:], self._skip - dropped
            if self._left is not None:
                if len(chunk) > self._left:  # the rest of a whole object we did not ask for
                    chunk = chunk[: self._left]
                self._left -= len(chunk)
            if chunk:
                yield chunk
        if self._left:  # an unframed body that closed early
            raise TransportError(f"the body ended {self._left} bytes short")

    async def _read(self) -> bytes:
        """The next buffered chunk, b"" at the end (readchunk does not join, unlike readany)."""
        while True:
            try:
                chunk, end_of_http_chunk = await self._response.content.readchunk()
            except FOREIGN_ERRORS as exc:
                error = translate(exc)
                break
            if chunk or not end_of_http_chunk:  # (b"", True) only marks a chunk boundary
                return chunk
        raise error


class _Opening:
    """The storage request that opens a stream, and what its answer gives to yield."""

    def __init__(self, fetch: Fetch, wanted: ByteRange | None, if_range: str | None) -> None:
        self.fetch = fetch
        self.wanted = wanted
        self.if_range = if_range

    async def open(self) -> tuple[aiohttp.ClientResponse, _Slice]:
        """The checked answer, retried with fresh URLs; the whole object if ``if_range``
        no longer names it (a second resolve: URLs serve one request)."""
        try:
            return await self.fetch.retrying(self._attempt, _start_over)
        except _Superseded:
            self.wanted = self.if_range = None
            await self.fetch.resolve()
            return await self.fetch.retrying(self._attempt, _start_over)

    async def _attempt(self) -> tuple[aiohttp.ClientResponse, _Slice]:
        fetch = self.fetch
        try:
            response, size = await fetch.request(self.wanted, self.if_range)
        except Changed:
            if self.if_range is None:
                raise
            raise _Superseded from None
        except Unsatisfiable as exc:  # final, unlike a download's (which starts over)
            raise _past_end(self.wanted, _known(exc.size, fetch.resource.size)) from None
        try:
            return response, _slice(response, self.wanted, _known(size, fetch.resource.size))
        except BaseException:
            response.close()
            raise


def _known(size: int | None, announced: int | None) -> int | None:
    """The object store's word on the size, else the API's."""
    return size if size is not None else announced


async def _start_over(_: Restart) -> None:
    """A stream has nothing to undo before the next attempt."""


class _Superseded(Exception):
    """412 to an ``If-Match`` that carried the caller's ``if_range``: send the whole object."""


@asynccontextmanager
async def open_stream(
    storage: StorageSession,
    resolve: Resolve,
    recording_id: str,
    kind: ResourceKind,
    wanted: ByteRange | None,
    if_range: str | None = None,
) -> AsyncIterator[ResourceStream]:
    """Open a resource for streaming, retrying the opening with fresh URLs; always closes it."""
    fetch = Fetch(storage, resolve, recording_id, kind)
    async with storage.stream_slot():  # not a download slot: the caller decides how long
        with naming(fetch):  # not around the yield: the body's errors are not ours
            await fetch.resolve()
            response, part = await _Opening(fetch, wanted, if_range).open()
        try:
            content_type = response.headers.get("Content-Type") or fetch.resource.type
            yield ResourceStream(response, part, content_type=content_type)
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()

"""``recordings.stream()``: a resource's bytes handed on as they arrive, for web handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from ._download import naming
from ._errors import StorageError, TransportError
from ._fetch import Fetch, Resolve, Restart, StorageSession, Unsatisfiable
from ._http import FOREIGN_ERRORS, translate
from ._models import ResourceKind


class ResourceStream:
    """The bytes of one resource, for passing on: ``async for chunk in stream``.

    ``size`` is the whole object's size, ``offset`` where this stream starts in it. A break
    mid-body raises :class:`TransportError`; open a new stream at the offset reached to go on.
    Closing the client ends every open stream with :class:`ClientClosedError`.
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
        self._left = None if size is None else size - offset
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
        while chunk := await self._read():
            if self._skip:  # the store ignored our Range: drop what was not asked for
                dropped = min(self._skip, len(chunk))
                chunk, self._skip = chunk[dropped:], self._skip - dropped
            if chunk:
                if self._left is not None:
                    self._left -= len(chunk)
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


@asynccontextmanager
async def open_stream(
    storage: StorageSession, resolve: Resolve, recording_id: str, kind: ResourceKind, offset: int
) -> AsyncIterator[ResourceStream]:
    """Open a resource for streaming, retrying the opening with fresh URLs; always closes it."""
    fetch = Fetch(storage, resolve, recording_id, kind)

    async def on_restart(error: Restart) -> None:
        if isinstance(error, Unsatisfiable):
            raise StorageError(f"offset {offset} is past the end of the object", status=416)

    async with storage.stream_slot():  # not a download slot: the caller decides how long
        with naming(fetch):  # not around the yield: the body's errors are not ours
            await fetch.resolve()
            response, size = await fetch.retrying(lambda: fetch.answer(offset), on_restart)
        try:
            yield ResourceStream(
                response,
                content_type=response.headers.get("Content-Type") or fetch.resource.type,
                size=size if size is not None else fetch.resource.size,
                offset=offset,
                skip=offset if response.status == 200 else 0,
            )
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()

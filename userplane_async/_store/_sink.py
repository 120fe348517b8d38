"""A :class:`~userplane_async._destination.Sink` for one object: whole or nothing, no temp file.

An object whose size the API announced and that fits in one part is kept in memory and sent
with a single PUT, its SHA-256 in the object's metadata. Anything larger streams into a
multipart upload as it arrives: obstore cuts it into parts and sends a bounded number at once,
and completes the upload only when our chunk iterator ends, which it does only from
:meth:`ObjectSink.commit`, after the downloader has checked the size and the SHA-256 is known.
On any error, a mismatch or a cancellation the iterator raises instead, and obstore aborts the
upload: nothing becomes visible. The upload is never cut short from outside (a thread cannot
be, and a cut upload would be left incomplete on the store), only ended through its iterator
and waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

import anyio.from_thread
import obstore
from obstore import exceptions

from .._errors import ObjectStoreError
from .._sinks import already_exists
from .._threads import in_thread, wait_out
from ._errors import store_error
from ._objects import Objects, blocking

BATCH = 1024 * 1024  # hashed in a thread and handed to the upload a MiB at a time
SHA256_KEY = "userplane-sha256"
RESOURCE_KEY = "userplane-resource"
SIZE_KEY = "userplane-size"


class _Aborted(Exception):
    """Raised inside the upload's iterator: the upload must not complete."""


class _Upload:
    """One multipart upload, run by obstore's blocking ``put`` in a worker thread, whose chunk
    iterator takes each chunk from a one-slot queue on the loop (so memory stays bounded)."""

    def __init__(
        self, store: Any, key: str, attributes: dict[str, str], part_size: int, in_flight: int
    ) -> None:
        self._queue: asyncio.Queue[bytes | _Aborted | None] = asyncio.Queue(maxsize=1)
        self.refused: BaseException | None = None  # why our iterator ended the upload
        self._before_end: Callable[[], Awaitable[object]] | None = None
        self._task = asyncio.ensure_future(
            self._run(
                lambda: obstore.put(
                    store,
                    key,
                    self._chunks(),
                    attributes=attributes or None,
                    use_multipart=True,
                    chunk_size=part_size,
                    max_concurrency=in_flight,
                )
            )
        )
        # An upload that failed takes no more: make room, so no sender waits for it forever.
        self._task.add_done_callback(lambda _: self._drain())

    async def _run(self, put: Callable[[], Any]) -> Any:
        running = asyncio.ensure_future(blocking(put))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:  # even a forgotten upload must not complete
            self._end(_Aborted())
            with contextlib.suppress(Exception):
                await wait_out(running)
            raise

    def _chunks(self) -> Iterator[bytes]:
        """Runs in the upload's thread (never on obstore's own, so it may block)."""
        while (chunk := anyio.from_thread.run(self._next)) is not None:
            yield chunk

    async def _next(self) -> bytes | None:
        item = await self._queue.get()
        try:
            if isinstance(item, _Aborted):
                raise item
            if item is None and self._before_end is not None:
                await self._before_end()
        except BaseException as exc:
            self.refused = exc
            raise
        return item

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def _end(self, item: _Aborted) -> None:
        self._drain()
        self._queue.put_nowait(item)

    async def feed(self, data: bytes) -> None:
        self._raise_if_ended()
        await self._queue.put(data)
        self._raise_if_ended()

    def _raise_if_ended(self) -> None:
        if self._task.done():
            exc = self._task.exception()
            raise store_error(exc or RuntimeError("ended early"), "upload")

    async def finish(self, before_end: Callable[[], Awaitable[object]]) -> Any:
        """End the upload; ``before_end()`` runs last and may still refuse it by raising."""
        self._before_end = before_end
        self._raise_if_ended()
        try:
            await self._queue.put(None)
        except BaseException:  # cancelled while the parts before it are still on their way
            await self.abort()
            raise
        try:
            return await wait_out(self._task)
        except BaseException:
            if self.refused is not None and not isinstance(self.refused, _Aborted):
                raise self.refused from None
            raise

    async def abort(self) -> None:
        """Make the upload fail (obstore aborts it), and wait until it has."""
        if not self._task.done():
            self._end(_Aborted())
        with contextlib.suppress(Exception):
            await wait_out(self._task)


class ObjectSink:
    """Bytes in, one object out: ``send``, then ``commit``, or ``aclose`` to leave nothing."""

    def __init__(
        self,
        objects: Objects,
        key: str,
        shown: str,
        *,
        resource: str,
        size: int | None,
        replace: bool,
        on_landed: Callable[[int], object] | None,
        part_size: int,
        parts_in_flight: int,
    ) -> None:
        self._store = objects.store
        self._keeps_attributes = objects.keeps_attributes
        self._key = key
        self._shown = shown  # the object's URL, for messages
        self._resource = resource
        self._size = size
        self._replace = replace
        self._on_landed = on_landed
        self._part_size = part_size
        self._in_flight = parts_in_flight
        self._single = size is not None and size <= part_size
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._hasher = hashlib.sha256()
        self._upload: _Upload | None = None
        self._landed = 0
        self._closed = False
        self.received = 0
        self.sha256 = ""
        self.etag: str | None = None

    async def send(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        self.received += len(chunk)
        if not self._single and self._pending_size >= BATCH:
            await self._hand_over()

    async def restart(self) -> None:
        await self._abort()
        self._pending, self._pending_size = [], 0
        self._hasher = hashlib.sha256()
        self.received = self._landed = 0

    async def commit(self) -> None:
        if self._single:
            await self._put_whole()
        else:
            await self._hand_over()
            if self._upload is None:  # an empty object of unknown size
                self._upload = self._start()
            self.sha256 = self._hasher.hexdigest()
            upload, self._upload = self._upload, None
            try:
                await upload.finish(self._check_free)
            except FileExistsError:
                raise already_exists(self._shown) from None
            except ObjectStoreError:
                raise
            except Exception as exc:
                raise store_error(exc, f"complete {self._shown}") from None
        self._closed = True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._abort()

    async def _put_whole(self) -> None:
        data = b"".join(self._pending)
        self._pending = []
        self.sha256 = await in_thread(lambda: hashlib.sha256(data).hexdigest())
        attributes = {**self._stamp(), SHA256_KEY: self.sha256} if self._keeps_attributes else {}
        try:
            await self._check_free()  # some S3-compatible stores ignore If-None-Match
            await blocking(
                lambda: obstore.put(
                    self._store,
                    self._key,
                    data,
                    attributes=attributes or None,
                    mode="overwrite" if self._replace else "create",
                )
            )
        except (FileExistsError, exceptions.AlreadyExistsError, exceptions.PreconditionError):
            raise already_exists(self._shown) from None
        except ObjectStoreError:
            raise
        except Exception as exc:
            raise store_error(exc, f"write {self._shown}") from None
        self._report(len(data))

    async def _check_free(self) -> None:
        """Without ``replace``, refuse if an object appeared at the key meanwhile."""
        if self._replace:
            return
        try:
            await blocking(lambda: obstore.head(self._store, self._key))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise store_error(exc, f"check {self._shown}") from None
        raise FileExistsError(self._shown)

    def _stamp(self) -> dict[str, str]:
        if not self._keeps_attributes:
            return {}
        stamp = {RESOURCE_KEY: self._resource}
        if self._size is not None:
            stamp[SIZE_KEY] = str(self._size)
        return stamp

    def _start(self) -> _Upload:
        return _Upload(self._store, self._key, self._stamp(), self._part_size, self._in_flight)

    async def _hand_over(self) -> None:
        chunks, size = self._pending, self._pending_size
        self._pending, self._pending_size = [], 0
        if not chunks:
            return
        data = b"".join(chunks)
        await in_thread(lambda: self._hasher.update(data))
        if self._upload is None:
            self._upload = self._start()
        await self._upload.feed(data)
        self._report(size)

    def _report(self, size: int) -> None:
        self._landed += size
        if self._on_landed is not None:
            self._on_landed(self._landed)

    async def _abort(self) -> None:
        upload, self._upload = self._upload, None
        if upload is not None:
            await upload.abort()

    async def __aenter__(self) -> ObjectSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

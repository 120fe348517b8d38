"""``recordings.download()``: one resource to its destination, whole and verified, or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from ._destination import Folder, Sink, download_place
from ._errors import DownloadError, IntegrityError
from ._fetch import Broken, Fetch, OnRetry, Resolve, StorageSession
from ._http import FOREIGN_ERRORS, translate
from ._models import ResourceKind
from ._provenance import Found
from ._results import DownloadResult
from ._sinks import already_exists

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


def file_name(kind: ResourceKind, content_type: str | None) -> str:
    """``<kind>.<ext>``, the extension taken from the MIME type."""
    mime = (content_type or "").split(";")[0].strip().lower()
    return f"{kind.value}.{EXTENSIONS.get(mime, 'bin')}"


@contextmanager
def naming(fetch: Fetch) -> Iterator[None]:
    """Give every download error the recording and kind it is about."""
    try:
        yield
    except DownloadError as exc:
        exc.recording_id, exc.kind = fetch.recording_id, fetch.kind.value
        raise


@attrs.frozen
class OnExisting:
    """What a download does with a file already at its target."""

    skip_same: bool  # keep our own unchanged earlier result of the same resource
    replace_foreign: bool  # replace anything else (once the new file is verified)

    @classmethod
    def for_overwrite(cls, overwrite: bool) -> OnExisting:
        """``download()``: replace only when asked; else keep only our own earlier result."""
        return cls(skip_same=not overwrite, replace_foreign=overwrite)


#: The archive's policy: its layout is ours, so what a re-run finds there that the manifest
#: does not vouch for is replaced, but only by a verified download.
ARCHIVE = OnExisting(skip_same=True, replace_foreign=True)


@attrs.frozen
class Where:
    """Which resource a download is of."""

    workspace_id: str
    recording_id: str
    kind: ResourceKind

    @property
    def resource(self) -> str:
        """How partial files and our files' records name it."""
        return f"{self.workspace_id}/{self.recording_id}/{self.kind.value}"


async def download(
    storage: StorageSession,
    resolve: Resolve,
    where: Where,
    dest: str | os.PathLike[str],
    *,
    store: Any,
    overwrite: bool,
    progress: Progress | None,
    on_retry: OnRetry | None,
) -> DownloadResult:
    """``recordings.download()``: ``dest`` is a user's path (followed like any other) or an
    object-store URL."""
    folder, name = await download_place(dest, store)
    try:
        return await download_into(
            storage,
            resolve,
            where,
            folder,
            OnExisting.for_overwrite(overwrite),
            name=name,
            progress=progress,
            on_retry=on_retry,
        )
    finally:
        await folder.aclose()


async def download_into(
    storage: StorageSession,
    resolve: Resolve,
    where: Where,
    folder: Folder,
    existing: OnExisting,
    *,
    name: str | None = None,
    progress: Progress | None,
    on_retry: OnRetry | None,
) -> DownloadResult:
    """Download one resource into ``folder`` (as ``name``, else ``<kind>.<ext>``), treating a
    file already there per ``existing``."""
    job = _Download(storage, resolve, where.recording_id, where.kind, progress, on_retry)
    # The slot first, then the URL: it is resolved right before its request, not before a wait.
    async with storage.slot():
        with naming(job):
            return await job.save(where.resource, folder, name, existing)


class _Download(Fetch):
    """The storage requests of one download, each continuing where the sink stopped."""

    def __init__(
        self,
        storage: StorageSession,
        resolve: Resolve,
        recording_id: str,
        kind: ResourceKind,
        progress: Progress | None,
        on_retry: OnRetry | None,
    ) -> None:
        super().__init__(storage, resolve, recording_id, kind, on_retry)
        self._progress = progress
        self._reported: tuple[int, int | None] | None = None
        self._total: int | None = None

    async def save(
        self, resource: str, folder: Folder, name: str | None, existing: OnExisting
    ) -> DownloadResult:
        api = await self.resolve()
        name = name or file_name(self.kind, api.type)
        path, url = folder.location(name)
        replace = existing.replace_foreign
        found = await folder.find(name, resource, api.size)
        if found is not None:
            kind, sha256 = found
            if kind is Found.SAME and existing.skip_same:
                assert api.size is not None  # noqa: S101 - SAME means the sizes agree
                return self.result(path, url, api.size, sha256, skipped=True)
            if kind is Found.FOREIGN and not replace:
                raise already_exists(url or path)
            replace = True  # our own file of this resource, or the caller said so
        sink = await folder.open_sink(
            name, resource=resource, size=api.size, replace=replace, on_landed=self.landed
        )
        async with sink:
            self.etag = sink.etag  # a dead download's partial resumes under its ETag
            await self.retrying(lambda: self.attempt(sink), lambda _: sink.restart())
            await sink.commit()
        self.report(sink.received, sink.received)
        return self.result(path, url, sink.received, sink.sha256)

    def result(
        self, path: Path, url: str | None, size: int, sha256: str, *, skipped: bool = False
    ) -> DownloadResult:
        return DownloadResult(
            path=path,
            size=size,
            sha256=sha256,
            content_type=self.resource.type,
            attempts=self.attempts,
            resolutions=self.resolutions,
            skipped=skipped,
            url=url,
        )

    def report(self, done: int, total: int | None) -> None:
        if self._progress is not None and (done, total) != self._reported:
            self._reported = (done, total)
            self._progress(done, total)

    def landed(self, done: int) -> None:
        self.report(done, self._total)

    async def attempt(self, sink: Sink) -> None:
        if sink.received and self.etag is None:
            await sink.restart()  # without an ETag, If-Match cannot stop a splice of two versions
        response, total = await self.answer(sink.received)
        try:
            if response.status == 200:
                if sink.received:
                    await sink.restart()  # the whole object came back: start over, in place
                    self.report(0, total)
                sink.etag = self.etag  # the validator of the bytes about to be written
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
        self, response: aiohttp.ClientResponse, total: int | None, sink: Sink
    ) -> None:
        expected = self._total = self._expected(response, total)
        # iter_chunks hands over aiohttp's buffers one by one; iter_any would join them first.
        async for chunk, _ in response.content.iter_chunks():
            await sink.send(chunk)
            if expected is not None and sink.received > expected:
                raise IntegrityError(f"received more than the {expected} bytes announced")
        if expected is not None and sink.received < expected:
            raise Broken(f"the body stopped at {sink.received} of {expected} bytes")

    def _expected(self, response: aiohttp.ClientResponse, total: int | None) -> int | None:
        """The object's size as both sides announced it: they must agree, and one must say,
        unless the body is chunked (then aiohttp itself notices a body cut short)."""
        announced = self.resource.size
        if total is not None and announced is not None and total != announced:
            raise IntegrityError(f"the object store announced {total} bytes, the API {announced}")
        expected = total if total is not None else announced
        chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
        if expected is None and not chunked:
            # Without a length anywhere, a body cut short cannot be told from a whole one.
            raise IntegrityError("neither the API nor the object store announced a size")
        return expected

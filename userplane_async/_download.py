"""``recordings.download()``: one resource to disk, whole and verified, or not at all."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import anyio

from ._errors import DestinationError, DownloadError, IntegrityError
from ._fetch import Broken, Fetch, OnRetry, Resolve, StorageSession
from ._http import FOREIGN_ERRORS, translate
from ._models import ResourceKind
from ._results import DownloadResult
from ._sinks import FileSink, hash_file

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
        message = f"cannot create {target.parent}: {exc.strerror}"
        raise DestinationError(message, errno=exc.errno) from None
    return target


async def _regular_file_size(path: Path) -> int | None:
    """The size of a regular file at ``path`` itself (a symlink there does not count)."""
    try:
        info = await anyio.Path(path).lstat()
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


@contextmanager
def naming(fetch: Fetch) -> Iterator[None]:
    """Give every download error the recording and kind it is about."""
    try:
        yield
    except DownloadError as exc:
        exc.recording_id, exc.kind = fetch.recording_id, fetch.kind.value
        raise


async def download(
    storage: StorageSession,
    resolve: Resolve,
    recording_id: str,
    kind: ResourceKind,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool,
    progress: Progress | None,
    on_retry: OnRetry | None,
) -> DownloadResult:
    job = _Download(storage, resolve, recording_id, kind, progress, on_retry)
    # The slot first, then the URL: it is resolved right before its request, not before a wait.
    async with storage.slot():
        with naming(job):
            return await job.save(dest, overwrite=overwrite)


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

    async def save(self, dest: str | os.PathLike[str], *, overwrite: bool) -> DownloadResult:
        resource = await self.resolve()
        path = await target_path(dest, self.kind, resource.type)
        size = resource.size
        if not overwrite and size is not None and await _regular_file_size(path) == size:
            return self.result(path, size, await hash_file(path), skipped=True)
        async with await FileSink.create(path, self.landed) as sink:
            await self.retrying(lambda: self.attempt(sink), lambda _: sink.restart())
            await sink.commit(path)
        self.report(sink.received, sink.received)
        return self.result(path, sink.received, sink.sha256)

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

    def report(self, done: int, total: int | None) -> None:
        if self._progress is not None and (done, total) != self._reported:
            self._reported = (done, total)
            self._progress(done, total)

    def landed(self, done: int) -> None:
        self.report(done, self._total)

    async def attempt(self, sink: FileSink) -> None:
        if sink.received and self.etag is None:
            await sink.restart()  # without an ETag, If-Match cannot stop a splice of two versions
        response, total = await self.answer(sink.received)
        try:
            if response.status == 200 and sink.received:
                await sink.restart()  # the whole object came back: start over, in place
                self.report(0, total)
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

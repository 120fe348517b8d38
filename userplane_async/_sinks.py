"""Where downloaded bytes go: a partial file beside the destination that appears whole or not at all.

File work runs in aiofiles' thread pool, about 1 MiB at a time, and overlaps with the network:
while the event loop reads the next batch, one thread hashes the previous one and another
writes it with one ``writev`` (and asks the kernel to start writing it back, so the final
fsync finds little left to do). At most one batch is in flight and one is being filled, so
memory stays flat. The in-flight work is always awaited to its end, through any
cancellation, before the file is closed, renamed or removed: no thread ever writes to a
file that is gone. Every few MiB the bytes so far are checkpointed (``_partials``), so a
process killed mid-download leaves something the next run resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from aiofiles.os import wrap

from ._errors import DestinationError
from ._localdir import LocalDir, destination_error
from ._partials import CHECKPOINT, Checkpoint, Partial, open_partial
from ._provenance import Record, stamp
from ._threads import in_thread, open_in_thread, wait_out

T = TypeVar("T")

BATCH = 1024 * 1024  # one thread hop per MiB: far fewer hops than chunks, memory stays flat
# Where hard links are not to be had, a no-clobber commit falls back to check-then-rename.
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK)


def already_exists(path: Path | str) -> DestinationError:
    return DestinationError(
        f"{path} already exists and was not saved by this SDK from the same resource; "
        "pass overwrite=True (--overwrite) to replace it",
        errno=errno.EEXIST,
    )


def _write(
    partial: Partial, chunks: list[bytes], offset: int, checkpoint: Checkpoint | None
) -> None:
    views = [memoryview(chunk) for chunk in chunks]
    size = sum(len(view) for view in views)
    while views:  # a nearly full disk may take part of a write without an error
        written = os.writev(partial.fd, views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views:
            views[0] = views[0][written:]
    if hasattr(os, "posix_fadvise"):
        # Linux starts writing dirty pages back on DONTNEED: the final fsync finds little left.
        os.posix_fadvise(partial.fd, offset, size, os.POSIX_FADV_DONTNEED)
    if checkpoint is not None:
        partial.checkpoint(checkpoint)


def _update(partial: Partial, chunks: list[bytes]) -> None:
    for chunk in chunks:
        partial.hasher.update(chunk)


def _truncate(partial: Partial) -> None:
    partial.forget()  # first: the sidecar must never vouch for bytes that are gone
    os.ftruncate(partial.fd, 0)
    os.lseek(partial.fd, 0, os.SEEK_SET)


def _finish(partial: Partial, final: str, record: Record | None, replace: bool) -> None:
    if record is not None:
        stamp(partial.fd, record)
    os.fsync(partial.fd)
    with partial.locked():
        partial.close()  # a full disk may only say so here
        directory = partial.directory
        if replace:
            directory.replace(partial.name, final)
        else:
            _rename_no_clobber(directory, partial.name, final)
        directory.unlink(partial.sidecar)
        directory.sync()


def _rename_no_clobber(directory: LocalDir, source: str, target: str) -> None:
    """Rename, failing with FileExistsError if ``target`` appeared meanwhile."""
    try:
        directory.link(source, target)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if directory.lstat(target) is not None:
            raise FileExistsError(errno.EEXIST, "exists", target) from None
        directory.replace(source, target)
    else:
        directory.unlink(source)


_write_async = wrap(_write)
_update_async = wrap(_update)
_truncate_async = wrap(_truncate)
_finish_async = wrap(_finish)


class FileSink:
    """A :class:`~._destination.Sink` for a local file. Bytes in, a verified file out: ``send`` chunks, then ``commit`` or ``aclose`` to discard.

    ``received`` counts every byte sent since the last ``restart`` (the resume offset; more
    than 0 at the start when a dead download's partial was adopted), ``landed`` the bytes
    already in the file; ``sha256`` is set by ``commit``. ``etag`` is the validator of the
    bytes in the file: the downloader sets it from the object store's answer, and it is what
    a resumed request must send as ``If-Match``.
    """

    def __init__(
        self,
        partial: Partial,
        final: str,
        resource: str | None,
        size: int | None,
        on_landed: Callable[[int], object] | None,
        replace: bool,
    ) -> None:
        self._partial = partial
        self._replace = replace
        self._final = final
        self._resource = resource
        self._size = size
        self._on_landed = on_landed
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._in_flight: asyncio.Future[tuple[None, None]] | None = None
        self._closed = False
        self.received = self.landed = partial.kept
        self._handed = partial.kept  # bytes given to write threads: the next write's offset
        self._checkpointed = partial.kept
        self.path = partial.directory.path / final
        self.sha256 = ""

    @property
    def etag(self) -> str | None:
        return self._partial.etag

    @etag.setter
    def etag(self, value: str | None) -> None:
        self._partial.etag = value

    @classmethod
    async def open(
        cls,
        directory: LocalDir,
        final: str,
        *,
        resource: str | None = None,
        size: int | None = None,
        on_landed: Callable[[int], object] | None = None,
        replace: bool = False,
    ) -> FileSink:
        """A partial file for ``final`` in ``directory``; fails here, before any download.

        With ``resource`` (and the object's ``size``), a dead download's partial of the same
        resource is resumed and the file is stamped as ours when committed.
        ``on_landed(bytes_in_file)`` is called each time a batch has been written. Without
        ``replace``, the commit keeps a file that appeared at the final name meanwhile.
        """
        try:
            partial = await open_in_thread(
                lambda: open_partial(directory, final, resource=resource, size=size),
                Partial.remove,
            )
        except OSError as exc:
            raise destination_error(exc, f"create a file in {directory.path}") from None
        return cls(partial, final, resource, size, on_landed, replace)

    async def send(self, chunk: bytes) -> None:
        """Take a chunk; a full batch goes to the disk while the next one fills."""
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        self.received += len(chunk)
        if self._pending_size >= BATCH:
            await self._hand_over()

    async def restart(self) -> None:
        """Forget everything received so far: the next byte is byte 0 again."""
        await self._settle()
        self._pending.clear()
        self._pending_size = 0
        await self._run(_truncate_async(self._partial), "truncate")
        self._partial.hasher = hashlib.sha256()
        self.received = self.landed = self._handed = self._checkpointed = 0

    async def commit(self) -> None:
        """Write the rest, fsync, close and rename to the final name; sets ``sha256``.

        Without ``replace``, a file that appeared at the final name meanwhile is kept and
        :class:`DestinationError` raised.
        """
        replace = self._replace
        await self._hand_over()
        await self._settle()
        sha256 = self._partial.hasher.hexdigest()
        record = None
        if self._resource is not None:
            record = Record(self._resource, self.received, sha256)
        try:
            await wait_out(_finish_async(self._partial, self._final, record, replace))
        except FileExistsError:
            raise already_exists(self.path) from None
        except OSError as exc:
            raise destination_error(exc, f"save {self.path.name}") from None
        self._closed = True
        self.sha256 = sha256

    async def aclose(self) -> None:
        """Discard the partial file unless it was committed; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(DestinationError):  # the file goes anyway
            await self._settle()
        await in_thread(self._partial.remove)

    async def _hand_over(self) -> None:
        """Start hashing and writing the pending batch once the previous one is done."""
        await self._settle()
        chunks, size = self._pending, self._pending_size
        self._pending, self._pending_size = [], 0
        if chunks:  # handed over as they came: joining them would copy every byte once more
            self._in_flight = asyncio.gather(
                _update_async(self._partial, chunks),
                _write_async(self._partial, chunks, self._handed, self._checkpoint(size)),
            )
            self._handed += size
            self._in_flight.add_done_callback(lambda done: self._landed(done, size))

    def _checkpoint(self, size: int) -> Checkpoint | None:
        """The checkpoint to take after the next batch, if one is due and resuming is possible."""
        written = self._handed + size
        if (
            written - self._checkpointed < CHECKPOINT
            or self._resource is None
            or self._size is None
            or not self.etag
        ):
            return None
        self._checkpointed = written
        return Checkpoint(self._resource, self._size, self.etag, written)

    def _landed(self, done: asyncio.Future[tuple[None, None]], size: int) -> None:
        # As soon as the batch is written, not when someone next awaits it: timely progress.
        if not done.cancelled() and done.exception() is None:
            self.landed += size
            if self._on_landed is not None:
                self._on_landed(self.landed)

    async def _settle(self) -> None:
        """Wait for the batch in flight, if any (it stays in flight until really done)."""
        if self._in_flight is not None:
            await self._run(self._in_flight, "write")
            self._in_flight = None

    async def _run(self, work: Awaitable[object], action: str) -> None:
        try:
            await wait_out(work)
        except OSError as exc:
            raise destination_error(exc, f"{action} {self.path.name}") from None

    async def __aenter__(self) -> FileSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _write_whole(directory: LocalDir, name: str, data: bytes) -> None:
    partial = open_partial(directory, name)
    try:
        _write(partial, [data], 0, None)
        os.fsync(partial.fd)
        with partial.locked():
            partial.close()
            directory.replace(partial.name, name)
    except BaseException:
        partial.remove()
        raise


async def write_atomically(directory: LocalDir, name: str, data: bytes) -> None:
    """Replace ``name`` with ``data`` in one step (temp file, fsync, rename): whole or absent."""
    try:
        await wait_out(wrap(_write_whole)(directory, name, data))
    except OSError as exc:
        raise destination_error(exc, f"write {directory.path / name}") from None

"""Where downloaded bytes go: a temp file beside the destination that appears whole or not at all.

File work runs in aiofiles' thread pool, about 1 MiB at a time, and overlaps with the network:
while the event loop reads the next batch, one thread hashes the previous one and another
writes it with one ``writev`` (and asks the kernel to start writing it back, so the final
fsync finds little left to do). At most one batch is in flight and one is being filled, so memory stays flat. The
in-flight work is always awaited to its end, through any cancellation, before the file is
closed, renamed or removed: no thread ever writes to a file that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import hashlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import anyio
from aiofiles.os import wrap

from ._errors import DestinationError

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from hashlib import _Hash

T = TypeVar("T")

BATCH = 1024 * 1024  # one thread hop per MiB: far fewer hops than chunks, memory stays flat


def _open_temp(final: Path) -> tuple[Path, BinaryIO]:
    _remove_stale_temps(final)
    # mkstemp opens with O_EXCL: it never follows or reuses an existing name (symlink attacks).
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    if sys.platform != "win32":  # held until closed: a live download's, not a dead one's
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return Path(name), os.fdopen(fd, "wb", buffering=0)


def _remove_stale_temps(final: Path) -> None:
    """Delete temp files of ``final`` whose download died (killed process): nobody locks them."""
    if sys.platform == "win32":  # no flock: leftovers stay
        return
    for temp in final.parent.glob(f".{glob.escape(final.name)}.*.part"):
        try:
            fd = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            temp.unlink(missing_ok=True)
        except OSError:
            pass  # locked: a download in progress owns it
        finally:
            os.close(fd)


def _write(file: BinaryIO, chunks: list[bytes], offset: int) -> None:
    views = [memoryview(chunk) for chunk in chunks]
    size = sum(len(view) for view in views)
    while views:  # a nearly full disk may take part of a write without an error
        written = os.writev(file.fileno(), views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views:
            views[0] = views[0][written:]
    if hasattr(os, "posix_fadvise"):
        # Linux starts writing dirty pages back on DONTNEED: the final fsync finds little left.
        os.posix_fadvise(file.fileno(), offset, size, os.POSIX_FADV_DONTNEED)


def _update(hasher: _Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


def _truncate(file: BinaryIO) -> None:
    file.seek(0)
    file.truncate()


def _finish(file: BinaryIO, temp: Path, final: Path) -> None:
    os.fsync(file.fileno())
    file.close()  # a full disk may only say so here
    os.replace(temp, final)


def _discard(file: BinaryIO, temp: Path) -> None:
    try:
        file.close()
    finally:
        temp.unlink(missing_ok=True)


def _hash_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(BATCH):
            hasher.update(chunk)
    return hasher.hexdigest()


_open_temp_async = wrap(_open_temp)
_write_async = wrap(_write)
_update_async = wrap(_update)
_truncate_async = wrap(_truncate)
_finish_async = wrap(_finish)
_discard_async = wrap(_discard)
hash_file = wrap(_hash_file)


async def _wait_out(work: Awaitable[T]) -> T:
    """Await ``work`` to its end, even through cancellation, then let the cancellation go on.

    The anyio shield keeps cancel scopes out; the loop absorbs a plain ``task.cancel()``,
    which no anyio shield stops: the thread behind ``work`` must not outlive its file.
    """
    future = asyncio.ensure_future(work)
    interrupted: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while True:
            try:
                result = await asyncio.shield(future)
                break
            except asyncio.CancelledError as exc:
                if future.cancelled():
                    raise
                interrupted = exc
    if interrupted is not None:
        raise interrupted
    return result


def _destination_error(exc: OSError, action: str) -> DestinationError:
    reason = exc.strerror or type(exc).__name__
    return DestinationError(f"cannot {action}: {reason}", errno=exc.errno)


class FileSink:
    """Bytes in, a verified file out: ``send`` chunks, then ``commit`` or ``aclose`` to discard.

    ``received`` counts every byte sent since the last ``restart`` (the resume offset),
    ``landed`` the bytes already written to the file; ``sha256`` is set by ``commit``.
    """

    def __init__(
        self, temp: Path, file: BinaryIO, on_landed: Callable[[int], object] | None = None
    ) -> None:
        self._temp = temp
        self._file = file
        self._on_landed = on_landed
        self._hasher = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._in_flight: asyncio.Future[tuple[None, None]] | None = None
        self._closed = False
        self.received = 0
        self.landed = 0
        self._handed = 0  # bytes given to write threads: the next write's file offset
        self.sha256 = ""

    @classmethod
    async def create(
        cls, final: Path, on_landed: Callable[[int], object] | None = None
    ) -> FileSink:
        """Open a temp file in ``final``'s directory; fails here, before any download.

        ``on_landed(bytes_in_file)`` is called each time a batch has been written.
        """
        opening = asyncio.ensure_future(_open_temp_async(final))
        try:
            temp, file = await _wait_out(opening)
        except OSError as exc:
            raise _destination_error(exc, f"create a file in {final.parent}") from None
        except asyncio.CancelledError:  # opened all the same: nobody else would remove it
            if not opening.cancelled() and opening.exception() is None:
                temp, file = opening.result()
                await _wait_out(_discard_async(file, temp))
            raise
        return cls(temp, file, on_landed)

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
        await self._run(_truncate_async(self._file), "truncate")
        self._hasher = hashlib.sha256()
        self.received = self.landed = self._handed = 0

    async def commit(self, final: Path) -> None:
        """Write the rest, fsync, close and rename to ``final``; sets ``sha256``."""
        await self._hand_over()
        await self._settle()
        await self._run(_finish_async(self._file, self._temp, final), "save")
        self._closed = True
        self.sha256 = self._hasher.hexdigest()

    async def aclose(self) -> None:
        """Discard the temp file unless it was committed; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(DestinationError):  # the file goes anyway
            await self._settle()
        await _wait_out(_discard_async(self._file, self._temp))

    async def _hand_over(self) -> None:
        """Start hashing and writing the pending batch once the previous one is done."""
        await self._settle()
        chunks, size = self._pending, self._pending_size
        self._pending, self._pending_size = [], 0
        if chunks:  # handed over as they came: joining them would copy every byte once more
            self._in_flight = asyncio.gather(
                _update_async(self._hasher, chunks), _write_async(self._file, chunks, self._handed)
            )
            self._handed += size
            self._in_flight.add_done_callback(lambda done: self._landed(done, size))

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
            await _wait_out(work)
        except OSError as exc:
            raise _destination_error(exc, f"{action} {self._temp.name}") from None

    async def __aenter__(self) -> FileSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _write_whole(path: Path, data: bytes) -> None:
    temp, file = _open_temp(path)
    try:
        with file:
            _write(file, [data], 0)
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


async def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (temp file, fsync, rename): whole or absent."""
    try:
        await _wait_out(wrap(_write_whole)(path, data))
    except OSError as exc:
        raise _destination_error(exc, f"write {path.name}") from None

"""Where downloaded bytes go: a temp file beside the destination that appears whole or not at all.

Every file operation runs in aiofiles' thread pool, and each one is one hop: a batch of about
1 MiB is hashed and written in the same hop, and a download's tail, ``fsync``, ``close`` and
``os.replace`` share one. The hops are shielded from cancellation, so a cancelled download
never closes or unlinks a file while a thread is still writing to it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import anyio
from aiofiles.os import wrap

from ._errors import DestinationError

if TYPE_CHECKING:
    from hashlib import _Hash

BATCH = 1024 * 1024  # one thread hop per MiB: far fewer hops than chunks, memory stays flat


def _open_temp(final: Path) -> tuple[Path, BinaryIO]:
    # mkstemp opens with O_EXCL: it never follows or reuses an existing name (symlink attacks).
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    return Path(name), os.fdopen(fd, "wb", buffering=0)


def _write(file: BinaryIO, hasher: _Hash, data: bytes) -> None:
    hasher.update(data)
    file.write(data)


def _truncate(file: BinaryIO) -> None:
    file.seek(0)
    file.truncate()


def _finish(file: BinaryIO, hasher: _Hash, data: bytes, temp: Path, final: Path) -> None:
    _write(file, hasher, data)
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
_truncate_async = wrap(_truncate)
_finish_async = wrap(_finish)
_discard_async = wrap(_discard)
hash_file = wrap(_hash_file)


def _destination_error(exc: OSError, action: str) -> DestinationError:
    reason = exc.strerror or type(exc).__name__
    return DestinationError(f"cannot {action}: {reason}", errno=exc.errno)


class FileSink:
    """Bytes in, a verified file out: ``send`` chunks, then ``commit`` or ``aclose`` to discard.

    ``received`` counts every byte sent since the last ``restart`` (the resume offset);
    ``sha256`` and ``size`` describe the file once committed.
    """

    def __init__(self, temp: Path, file: BinaryIO) -> None:
        self._temp = temp
        self._file = file
        self._hasher = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._closed = False
        self.received = 0
        self.sha256 = ""

    @classmethod
    async def create(cls, final: Path) -> FileSink:
        """Open a temp file in ``final``'s directory; fails here, before any download."""
        try:
            with anyio.CancelScope(shield=True):
                temp, file = await _open_temp_async(final)
        except OSError as exc:
            raise _destination_error(exc, f"create a file in {final.parent}") from None
        return cls(temp, file)

    async def send(self, chunk: bytes) -> bool:
        """Take a chunk; returns True when a batch went to disk (a moment to report progress)."""
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        self.received += len(chunk)
        if self._pending_size < BATCH:
            return False
        await self._run(_write_async, self._file, self._hasher, self._take(), action="write")
        return True

    async def restart(self) -> None:
        """Forget everything received so far: the next byte is byte 0 again."""
        self._take()
        await self._run(_truncate_async, self._file, action="truncate")
        self._hasher = hashlib.sha256()
        self.received = 0

    async def commit(self, final: Path) -> None:
        """Write the rest, fsync, close and rename to ``final``; sets ``sha256``."""
        data = self._take()
        await self._run(
            _finish_async, self._file, self._hasher, data, self._temp, final, action="save"
        )
        self._closed = True
        self.sha256 = self._hasher.hexdigest()

    async def aclose(self) -> None:
        """Discard the temp file unless it was committed; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await _discard_async(self._file, self._temp)

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return data

    async def _run(self, func: Callable[..., Awaitable[None]], *args: object, action: str) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await func(*args)
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

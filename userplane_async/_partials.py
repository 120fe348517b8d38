"""Partial files: the temp file of a download, and what lets a later run resume it.

A download writes ``.<name>.<token>.part`` beside its final ``<name>`` and holds an exclusive
``flock`` on it while it lives. Every few MiB it makes the bytes so far durable (fdatasync)
and then records how many they are in a sidecar, ``<part>.json``, with the object's ETag and
size. A process that dies (SIGKILL, power loss) leaves both behind, unlocked. The next
download of the same resource to the same name adopts the partial: it cuts it back to the
durable length (anything after it may be garbage after a power loss), re-hashes what is
kept and resumes from there with ``Range`` and ``If-Match``. A partial that belongs to
something else, has no usable sidecar, or is older than :data:`MAX_AGE` is removed instead;
a locked one belongs to a live download and is left alone. All functions block.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs

from ._localdir import LocalDir

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from hashlib import _Hash

#: Bytes between two checkpoints: what a killed download may have to fetch again.
CHECKPOINT = 8 * 1024 * 1024
#: Dead partials older than this are removed rather than resumed (seconds).
MAX_AGE = 7 * 24 * 3600

_HEADER_VALUE = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,1023}")
_SUFFIX, _SIDECAR, _SIDECAR_TEMP = ".part", ".part.json", ".part.json.tmp"
_READ = 1024 * 1024
_datasync = getattr(os, "fdatasync", os.fsync)  # the data, not the mtime: cheaper


@attrs.frozen
class Checkpoint:
    """What a sidecar says: whose bytes the partial holds, and how many are durable."""

    resource: str  # "<workspace>/<recording>/<kind>"
    size: int  # the object's size
    etag: str
    durable: int

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, **attrs.asdict(self)}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint | None:
        """The checkpoint a sidecar holds, or None if it is torn or not what we write."""
        try:
            fields = json.loads(data)
            resource, size, etag, durable = (
                fields[k] for k in ("resource", "size", "etag", "durable")
            )
        except (ValueError, KeyError, TypeError):
            return None
        if not (
            isinstance(resource, str)
            and all(type(n) is int and n >= 0 for n in (size, durable))
            # The ETag goes back on the wire as If-Match: nothing that could break a header.
            and isinstance(etag, str)
            and _HEADER_VALUE.fullmatch(etag)
        ):
            return None
        return cls(resource, size, etag, durable)


@attrs.define
class Partial:
    """An open, locked partial file: new (``kept == 0``) or adopted from a dead download."""

    directory: LocalDir
    name: str  # the partial's own name
    fd: int
    kept: int = 0  # bytes kept from an earlier run, already hashed into ``hasher``
    etag: str | None = None
    hasher: _Hash = attrs.field(factory=hashlib.sha256)

    @property
    def sidecar(self) -> str:
        return self.name + ".json"

    def checkpoint(self, record: Checkpoint) -> None:
        """Make the file's first ``record.durable`` bytes durable, then say so in the sidecar."""
        _datasync(self.fd)
        temp = self.name + ".json.tmp"
        self.directory.unlink(temp)
        fd = self.directory.create(temp)
        try:
            os.write(fd, record.to_json())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.directory.replace(temp, self.sidecar)

    def forget(self) -> None:
        """Drop the sidecar: the file's bytes no longer match it (a restart)."""
        self.directory.unlink(self.sidecar)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Keep the lock through a ``close()`` until the block ends (a rename): until the
        partial's name is gone, no other download may take it for a dead one's."""
        keep = os.dup(self.fd)  # a duplicate shares the lock of the open file
        try:
            yield
        finally:
            os.close(keep)

    def remove(self) -> None:
        """Delete the partial and its sidecar, then close it (locked until its name is gone)."""
        try:
            _remove(self.directory, self.name)
        finally:
            with contextlib.suppress(OSError):  # a full disk may say so here; it goes anyway
                self.close()


def open_partial(
    directory: LocalDir, final: str, *, resource: str | None = None, size: int | None = None
) -> Partial:
    """The partial to write ``final`` through: a dead download's to resume, or a new one.

    Only a partial whose sidecar names ``resource`` and ``size`` is resumed; other dead
    partials of ``final`` are removed.
    """
    adopted = None
    for name in _dead_partials(directory, final):
        fd = _lock(directory, name)
        if fd is None:
            continue  # a live download's
        if adopted is None and resource is not None:
            adopted = _adopt(directory, name, fd, resource, size)
            if adopted is not None:
                continue
        _remove(directory, name)  # while still locked: nobody else may adopt it meanwhile
        os.close(fd)
    return adopted or _create(directory, final)


def _dead_partials(directory: LocalDir, final: str) -> list[str]:
    prefix = f".{final}."
    names = [n for n in directory.names() if n.startswith(prefix)]
    parts = {n for n in names if n.endswith(_SUFFIX)}
    for name in names:  # a sidecar whose partial is gone was left by a commit cut short
        for suffix in (_SIDECAR, _SIDECAR_TEMP):
            if name.endswith(suffix) and name.removesuffix(suffix) + _SUFFIX not in parts:
                directory.unlink(name)
    return sorted(parts)


def _lock(directory: LocalDir, name: str) -> int | None:
    """Open and lock a partial, or None if a live download holds it (or it is not a file)."""
    if sys.platform == "win32":  # no flock: a live download's cannot be told from a dead one's
        return None
    try:
        fd = directory.open_file(name, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _adopt(
    directory: LocalDir, name: str, fd: int, resource: str, size: int | None
) -> Partial | None:
    """Resume ``name`` if its sidecar matches: cut to the durable length and re-hash it."""
    try:
        sidecar = directory.open_file(name + ".json")
    except OSError:
        return None
    try:
        checkpoint = Checkpoint.from_json(os.read(sidecar, 64 * 1024))
    finally:
        os.close(sidecar)
    info = os.fstat(fd)
    if (
        checkpoint is None
        or (checkpoint.resource, checkpoint.size) != (resource, size)
        or not 0 < checkpoint.durable <= min(info.st_size, checkpoint.size)
        or time.time() - info.st_mtime > MAX_AGE
    ):
        return None
    os.ftruncate(fd, checkpoint.durable)
    hasher = hashlib.sha256()
    offset = 0
    while offset < checkpoint.durable:
        chunk = os.pread(fd, min(_READ, checkpoint.durable - offset), offset)
        if not chunk:
            return None
        hasher.update(chunk)
        offset += len(chunk)
    os.lseek(fd, offset, os.SEEK_SET)
    return Partial(directory, name, fd, kept=offset, etag=checkpoint.etag, hasher=hasher)


def _create(directory: LocalDir, final: str) -> Partial:
    while True:
        name = f".{final}.{os.urandom(6).hex()}{_SUFFIX}"
        try:
            fd = directory.create(name)
        except FileExistsError:
            continue
        break
    if sys.platform != "win32":  # held until closed: a live download's, not a dead one's
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return Partial(directory, name, fd)


def _remove(directory: LocalDir, name: str) -> None:
    for each in (name, name + ".json", name + ".json.tmp"):
        directory.unlink(each)

"""Which files the SDK wrote: a record on the file itself, so a download can tell its own
earlier result from a file that merely sits at the same path.

The record is an extended attribute (``user.userplane_async``) set on the file before it
gets its final name: the resource it holds, its size and its SHA-256. A file whose record
names the same resource and whose bytes still hash to the recorded SHA-256 is ours and
unchanged; anything else (no record, another resource, edited bytes) is somebody else's
file and is never replaced unasked. Where the file system has no extended attributes,
nothing is recorded and every existing file counts as somebody else's. All functions block.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os

import attrs

from ._localdir import LocalDir

ATTRIBUTE = "user.userplane_async"
_READ = 1024 * 1024


@attrs.frozen
class Record:
    resource: str  # "<workspace>/<recording>/<kind>"
    size: int
    sha256: str


class Found(enum.Enum):
    """What a file already at a download's target is."""

    SAME = "same"  # our earlier result of this resource, unchanged, of the announced size
    OURS = "ours"  # our earlier result of this resource, unchanged, but of another size
    FOREIGN = "foreign"  # anything else: never replaced unasked


def stamp(fd: int, record: Record) -> None:
    """Record on an open file that the SDK wrote it (silently nothing where unsupported)."""
    if hasattr(os, "setxattr"):
        with contextlib.suppress(OSError):
            os.setxattr(fd, ATTRIBUTE, json.dumps(attrs.asdict(record)).encode())


def examine(directory: LocalDir, name: str, resource: str, size: int | None) -> tuple[Found, str]:
    """Classify the file at ``name`` against ``resource`` of ``size``; also its SHA-256."""
    try:
        fd = directory.open_file(name)
    except OSError:  # a link, a directory, unreadable: not a file of ours
        return Found.FOREIGN, ""
    try:
        record = _record(fd)
        if record is None or record.resource != resource:
            return Found.FOREIGN, ""
        sha256 = hash_fd(fd)
    finally:
        os.close(fd)
    if sha256 != record.sha256:
        return Found.FOREIGN, ""  # edited since we wrote it
    return (Found.SAME if record.size == size else Found.OURS), sha256


def _record(fd: int) -> Record | None:
    if not hasattr(os, "getxattr"):
        return None
    try:
        fields = json.loads(os.getxattr(fd, ATTRIBUTE))
        return Record(str(fields["resource"]), int(fields["size"]), str(fields["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def hash_fd(fd: int) -> str:
    """The SHA-256 of an open file's bytes, read from the start."""
    hasher, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, _READ, offset):
        hasher.update(chunk)
        offset += len(chunk)
    return hasher.hexdigest()

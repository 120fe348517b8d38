"""``DEST/manifest.jsonl``: an append-only record of every (recording, kind) outcome.

Each line is one JSON object, written with a single ``write`` on a file opened for appending,
so lines never interleave; a crash can only tear the last line, which reading ignores. The
latest line for a (recording, kind) wins. No URL is ever written here. The file (and DEST)
is created with the first line: a run that fails before it leaves nothing behind.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import attrs

from ._convert import json_key, structure
from ._errors import DestinationError, ResponseFormatError
from ._localdir import LocalDir, destination_error
from ._provenance import hash_fd
from ._results import ItemStatus, ManifestEntry, VerifyReport
from ._threads import in_thread

MANIFEST = "manifest.jsonl"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

Key = tuple[str, str]  # (recording_id, kind)


def read_entries(root: Path) -> Iterator[ManifestEntry]:
    """Every readable line of ``root``'s manifest, oldest first; torn or foreign lines skipped.

    A manifest that is a symbolic link is not followed: it could point anywhere.
    """
    try:
        fd = os.open(root / MANIFEST, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb") as file:  # line by line: a million items are never all in memory
        yield from parse_lines(file)


def parse_lines(lines: Iterable[bytes]) -> Iterator[ManifestEntry]:
    """The manifest entries among ``lines``; torn or foreign lines are skipped."""
    for line in lines:
        try:
            yield structure(json.loads(line), ManifestEntry)
        except (ValueError, ResponseFormatError):
            continue  # a line torn by a crash, or not ours


def entry_line(entry: ManifestEntry) -> bytes:
    """One manifest line: every field, nulls too."""
    fields = {json_key(f): getattr(entry, f.name) for f in attrs.fields(ManifestEntry)}
    return (json.dumps(fields, separators=(",", ":")) + "\n").encode()


def latest_entries(root: Path) -> dict[tuple[str, str, str], ManifestEntry]:
    """The last word of the manifest on each (workspace, recording, kind)."""
    return {(e.workspace_id, e.recording_id, e.kind): e for e in read_entries(root)}


def directory_owners(entries: Iterable[ManifestEntry]) -> dict[str, str]:
    """Which recording ID owns each case-folded directory name, as earlier runs decided.

    An ID with a file saved under its plain name owns it; otherwise the first ID seen does.
    """
    seen: dict[str, str] = {}
    plain: dict[str, str] = {}
    for entry in entries:
        key = entry.recording_id.casefold()
        seen.setdefault(key, entry.recording_id)
        if entry.path and PurePosixPath(entry.path).parts[1:2] == (entry.recording_id,):
            plain.setdefault(key, entry.recording_id)
    return seen | plain


def _check_usable(root: Path) -> None:
    """Fail now, before any API call, if ``root`` could not take an archive (nothing made)."""
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "not writable", str(existing))


class Manifest:
    """Appends outcome lines; ``previous`` and ``is_complete`` say what a re-run may skip."""

    def __init__(self, root: Path, done: dict[Key, ManifestEntry], owners: dict[str, str]) -> None:
        self.root = root
        self.owners = owners  # case-folded recording ID -> the ID whose directory it is
        self._done = done
        self._fd = -1
        self._made: list[Path] = []  # what this run created: the file, DEST and its parents

    @classmethod
    async def open(cls, root: Path, workspace_id: str) -> Manifest:
        """Read what ``root``'s manifest says about ``workspace_id`` (one archive may hold
        several workspaces) and check ``root`` can take the archive; creates nothing."""
        try:
            return await in_thread(lambda: cls._read(root, workspace_id))
        except OSError as exc:
            raise destination_error(exc, f"use {root} as an archive") from None

    @classmethod
    def _read(cls, root: Path, workspace_id: str) -> Manifest:
        _check_usable(root)
        entries = [e for e in read_entries(root) if e.workspace_id == workspace_id]
        done = {(e.recording_id, e.kind): e for e in entries}
        final = {key: e for key, e in done.items() if e.status in ItemStatus.FINAL}
        return cls(root, final, directory_owners(entries))

    def previous(self, recording_id: str, kind: str) -> ManifestEntry | None:
        """The final outcome an earlier run recorded for this item, if any."""
        return self._done.get((recording_id, kind))

    async def is_complete(self, entry: ManifestEntry | None, *, verify: bool) -> bool:
        """Whether the manifest and the file agree the item is done (``verify``: re-hash)."""
        if entry is None:
            return False
        if entry.status not in ItemStatus.ON_DISK:
            return entry.status in ItemStatus.FINAL  # nothing on disk to agree with
        return await in_thread(lambda: _matches(self.root, entry, verify=verify)) is True

    def append(self, entry: ManifestEntry) -> None:
        """Record one outcome (a single small append: no thread hop needed)."""
        line = entry_line(entry)
        try:
            if self._fd < 0:
                self._fd = self._create()
            os.write(self._fd, line)
        except OSError as exc:
            raise DestinationError(f"cannot append to the manifest: {exc.strerror}") from None

    def _create(self) -> int:
        path = self.root / MANIFEST
        self._made = [p for p in (path, self.root, *self.root.parents) if not p.exists()]
        self.root.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a manifest.jsonl that is a symlink could point anywhere outside DEST.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW
        fd = os.open(path, flags, 0o666)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")  # a line torn by a crash must not swallow the next one
        return fd

    async def aclose(self, *, discard: bool = False) -> None:
        """Make the lines durable and close; ``discard`` removes a manifest this run made."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            await in_thread(lambda: _sync_and_close(fd, self._made if discard else []))


def _inside(root: Path, relative: str | None) -> tuple[str, ...] | None:
    """The parts of ``relative`` if it names a file inside ``root``: lines are not trusted."""
    if not relative:
        return None
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or ".." in parts or "." in parts:
        return None
    return parts


def _matches(root: Path, entry: ManifestEntry, *, verify: bool) -> bool | None:
    """Whether ``entry``'s file is there, of its size (``verify``: and hash); None: missing.

    The file is reached without following a link below ``root``.
    """
    parts = _inside(root, entry.path)
    if parts is None:
        return None
    try:
        directory = LocalDir.open(root, parts[:-1], create=False)
    except DestinationError:
        return None
    try:
        fd = directory.open_file(parts[-1])
    except OSError:
        return None
    finally:
        directory.close()
    try:
        if os.fstat(fd).st_size != entry.size:
            return False
        return not verify or hash_fd(fd) == entry.sha256
    except OSError:
        return False  # unreadable: fetch it anew
    finally:
        os.close(fd)


def _sync_and_close(fd: int, remove: list[Path]) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for path in remove:  # deepest first; a directory something else was put in stays
        try:
            if path.name == MANIFEST:
                path.unlink()
            else:
                path.rmdir()
        except OSError:
            break


async def verify_local(root: Path) -> VerifyReport:
    """Re-hash every file the manifest in ``root`` says was saved."""
    entries = await in_thread(lambda: latest_entries(root))
    missing, mismatched, checked = [], [], 0
    for entry in entries.values():
        if entry.status not in ItemStatus.ON_DISK or not entry.path:
            continue
        checked += 1
        found = await in_thread(functools.partial(_matches, root, entry, verify=True))
        if found is None:
            missing.append(entry)
        elif not found:
            mismatched.append(entry)
    return VerifyReport(checked=checked, missing=tuple(missing), mismatched=tuple(mismatched))

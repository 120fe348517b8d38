"""``DEST/manifest.jsonl``: an append-only record of every (recording, kind) outcome.

Each line is one JSON object, written with a single ``write`` on a file opened for appending,
so lines never interleave; a crash can only tear the last line, which reading ignores. The
latest line for a (recording, kind) wins. No URL is ever written here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs

from ._convert import json_key, structure
from ._errors import DestinationError, ResponseFormatError
from ._results import ItemStatus, ManifestEntry, VerifyReport
from ._sinks import hash_file

MANIFEST = "manifest.jsonl"

Key = tuple[str, str]  # (recording_id, kind)


def read_entries(root: Path) -> Iterator[ManifestEntry]:
    """Every readable line of ``root``'s manifest, oldest first; torn or foreign lines skipped."""
    try:
        file = (root / MANIFEST).open("rb")
    except FileNotFoundError:
        return
    with file:  # line by line: a manifest of a million items is never in memory at once
        for line in file:
            try:
                yield structure(json.loads(line), ManifestEntry)
            except (ValueError, ResponseFormatError):
                continue  # a line torn by a crash, or not ours


def latest_entries(root: Path) -> dict[tuple[str, str, str], ManifestEntry]:
    """The last word of the manifest on each (workspace, recording, kind)."""
    return {(e.workspace_id, e.recording_id, e.kind): e for e in read_entries(root)}


class Manifest:
    """Appends outcome lines; ``complete`` says which items a re-run may leave alone."""

    def __init__(self, root: Path, fd: int, done: dict[Key, ManifestEntry]) -> None:
        self.root = root
        self._fd = fd
        self._done = done

    @classmethod
    async def open(cls, root: Path, workspace_id: str) -> Manifest:
        """Open (or create) ``root``'s manifest for appending, after reading what it says
        about ``workspace_id`` (one archive may hold several workspaces)."""
        try:
            return await anyio.to_thread.run_sync(cls._open, root, workspace_id)
        except OSError as exc:
            message = f"cannot use {root} as an archive: {exc.strerror or type(exc).__name__}"
            raise DestinationError(message, errno=exc.errno) from None

    @classmethod
    def _open(cls, root: Path, workspace_id: str) -> Manifest:
        root.mkdir(parents=True, exist_ok=True)
        done = {
            (e.recording_id, e.kind): e
            for e in latest_entries(root).values()
            if e.workspace_id == workspace_id and e.status in ItemStatus.FINAL
        }
        # O_NOFOLLOW: a manifest.jsonl that is a symlink could point anywhere outside DEST.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(root / MANIFEST, flags, 0o644)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")  # a line torn by a crash must not swallow the next one
        return cls(root, fd, done)

    def recording_ids(self) -> list[str]:
        """Recordings an earlier run recorded an outcome for, oldest first."""
        return list(dict.fromkeys(recording_id for recording_id, _ in self._done))

    def previous(self, recording_id: str, kind: str) -> ManifestEntry | None:
        """The final outcome an earlier run recorded for this item, if any."""
        return self._done.get((recording_id, kind))

    async def is_complete(self, entry: ManifestEntry | None, *, verify: bool) -> bool:
        """Whether the manifest and the file agree the item is done (``verify``: re-hash)."""
        if entry is None:
            return False
        if entry.status not in ItemStatus.ON_DISK:
            return entry.status in ItemStatus.FINAL  # nothing on disk to agree with
        path = _inside(self.root, entry.path)
        if path is None:
            return False
        try:
            info = await anyio.Path(path).lstat()
        except OSError:
            return False
        if info.st_size != entry.size:
            return False
        try:
            return not verify or await hash_file(path) == entry.sha256
        except OSError:
            return False  # unreadable: fetch it anew

    def append(self, entry: ManifestEntry) -> None:
        """Record one outcome (a single small append: no thread hop needed)."""
        fields = {json_key(f): getattr(entry, f.name) for f in attrs.fields(ManifestEntry)}
        line = json.dumps(fields, separators=(",", ":")) + "\n"  # every field, nulls too
        try:
            os.write(self._fd, line.encode())
        except OSError as exc:
            raise DestinationError(f"cannot append to the manifest: {exc.strerror}") from None

    async def aclose(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_sync_and_close, fd)


def _inside(root: Path, relative: str | None) -> Path | None:
    """``root / relative`` if that stays inside ``root``: a manifest line is not trusted."""
    if not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        return None
    return root / relative


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def verify_archive(dest: str | os.PathLike[str]) -> VerifyReport:
    """Re-hash every file the manifest of ``dest`` says was saved; no API call is made."""
    root = Path(dest)
    entries = await anyio.to_thread.run_sync(latest_entries, root)
    missing, mismatched, checked = [], [], 0
    for entry in entries.values():
        if entry.status not in ItemStatus.ON_DISK or not entry.path:
            continue
        checked += 1
        path = _inside(root, entry.path)
        if path is None or not await anyio.Path(path).is_file():
            missing.append(entry)
        elif await hash_file(path) != entry.sha256:
            mismatched.append(entry)
    return VerifyReport(checked=checked, missing=tuple(missing), mismatched=tuple(mismatched))

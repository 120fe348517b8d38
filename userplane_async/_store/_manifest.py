"""The manifest of an archive in a bucket: run segments under ``DEST/manifest.jsonl.d/``.

Object stores cannot append, so each run writes its lines as new segment objects, never
rewriting one: after 2 seconds, then at growing intervals up to 30 seconds (or every few
hundred lines), and at the end, when it merges its own segments into one. Segment names sort
by the time they were written, and reading applies them in that order, so the latest line
for an item wins, as in ``manifest.jsonl``. A run killed mid-way loses only the lines not
flushed yet: those items are found again by the next run, which cannot vouch for their
objects and so downloads them anew. When a run finds many segments it merges them into one.
A merged segment is written before the ones it merges are deleted (a bucket may deny the
deletes: then they stay, harmlessly), and named to sort right after the last of them, so a
crash between the two steps changes nothing. A re-run over a complete archive reads
the manifest with a list and a handful of GETs, and lists the workspace's objects once to
check their sizes, with no API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

import anyio

from .._errors import DestinationError
from .._manifest import Key, directory_owners, entry_line, parse_lines
from .._results import ItemStatus, ManifestEntry, VerifyReport
from .._threads import wait_out
from ._objects import Objects

logger = logging.getLogger("userplane_async")

SEGMENTS = "manifest.jsonl.d"
FLUSH_SECONDS = 2.0  # the first wait between segments; each wait is longer, up to
FLUSH_AT_MOST = 30.0  # this, so a run of hours writes hundreds of segments, not thousands
FLUSH_LINES = 500
COMPACT_OVER = 32  # segments; more than this at the start of a run are merged into one
_WRITE_CHECK = f"{SEGMENTS}/write-check"  # overwritten by every run: proves we may write


def _safe_key(path: str | None) -> str | None:
    """``path`` if it names an object inside the archive: manifest lines are not trusted."""
    if not path or path.startswith("/"):
        return None
    parts = path.split("/")
    return None if any(part in ("", ".", "..") for part in parts) else path


class StoreManifest:
    """The local :class:`~userplane_async._manifest.Manifest`'s job, on an object store."""

    def __init__(
        self,
        objects: Objects,
        done: dict[Key, ManifestEntry],
        owners: dict[str, str],
        sizes: dict[str, int],
    ) -> None:
        self.owners = owners
        self._objects = objects
        self._done = done
        self._sizes = sizes  # key -> size of every object under the workspace, as listed
        self._lines: list[bytes] = []
        self._mine: list[bytes] = []  # every line of this run, merged into one at the end
        self._written: list[str] = []  # this run's segments
        self._broken: DestinationError | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._token = os.urandom(4).hex()
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, objects: Objects, workspace_id: str) -> StoreManifest:
        segments = await segment_keys(objects)
        everything = await read_segments(objects, segments)
        sizes = await objects.sizes(f"{workspace_id}/")
        await objects.put(_WRITE_CHECK, b"userplane_async may write here\n", replace=True)
        entries = [e for e in everything if e.workspace_id == workspace_id]
        done = {(e.recording_id, e.kind): e for e in entries}
        final = {key: e for key, e in done.items() if e.status in ItemStatus.FINAL}
        manifest = cls(objects, final, directory_owners(entries), sizes)
        if len(segments) > COMPACT_OVER:
            await manifest._compact(segments, everything)
        return manifest

    def previous(self, recording_id: str, kind: str) -> ManifestEntry | None:
        return self._done.get((recording_id, kind))

    async def is_complete(self, entry: ManifestEntry | None, *, verify: bool) -> bool:
        if entry is None:
            return False
        if entry.status not in ItemStatus.ON_DISK:
            return entry.status in ItemStatus.FINAL
        key = _safe_key(entry.path)
        if key is None or self._sizes.get(key) != entry.size:
            return False
        return not verify or await self._objects.sha256(key) == entry.sha256

    def append(self, entry: ManifestEntry) -> None:
        if self._broken is not None:
            raise self._broken
        line = entry_line(entry)
        self._lines.append(line)
        self._mine.append(line)
        if self._flusher is None:  # started by the first line: a run that records nothing
            self._flusher = asyncio.ensure_future(self._flush_now_and_then())  # leaves no task
        if len(self._lines) >= FLUSH_LINES:
            self._wake.set()

    async def aclose(self, *, discard: bool = False) -> None:
        """Flush what is left (through any cancellation); ``discard``: remove this run's."""
        self._stopping = True
        self._wake.set()
        if self._flusher is not None:
            await wait_out(self._flusher)
        if discard:
            await wait_out(self._objects.delete(self._written))
        elif self._broken is not None:
            raise self._broken
        elif len(self._written) > 1:
            await wait_out(self._merge_mine())

    async def _merge_mine(self) -> None:
        """This run's segments as one, named to sort right after the last of them."""
        merged = f"{self._written[-1].removesuffix('.jsonl')}~run.jsonl"
        try:
            await self._objects.put(merged, b"".join(self._mine), replace=True)
        except DestinationError as exc:
            logger.warning("could not merge this run's manifest segments: %s", exc)
            return
        await _delete_quietly(self._objects, self._written)

    async def _flush_now_and_then(self) -> None:
        wait = FLUSH_SECONDS
        while not self._stopping:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            await self._flush()
            wait = min(wait * 1.5, FLUSH_AT_MOST)
        await self._flush()

    async def _flush(self) -> None:
        lines, self._lines = self._lines, []
        if not lines or self._broken is not None:
            return
        key = f"{SEGMENTS}/{time.time_ns():020d}-{self._token}-{len(self._written):06d}.jsonl"
        try:
            await self._objects.put(key, b"".join(lines), replace=False)
        except DestinationError as exc:
            self._broken = DestinationError(f"cannot write the manifest: {exc}")
            return
        self._written.append(key)

    async def _compact(self, segments: list[str], entries: list[ManifestEntry]) -> None:
        latest = {(e.workspace_id, e.recording_id, e.kind): e for e in entries}
        merged = f"{segments[-1].removesuffix('.jsonl')}~merged.jsonl"
        try:
            await self._objects.put(
                merged, b"".join(entry_line(e) for e in latest.values()), replace=True
            )
        except DestinationError as exc:
            logger.warning("could not merge the manifest's segments: %s", exc)
            return
        await _delete_quietly(self._objects, segments)


async def _delete_quietly(objects: Objects, keys: list[str]) -> None:
    """Merged segments may stay (a bucket may deny deletes): reading them again is harmless."""
    try:
        await objects.delete(keys)
    except DestinationError as exc:
        logger.warning("could not delete merged manifest segments: %s", exc)


async def segment_keys(objects: Objects) -> list[str]:
    """The manifest's segments, oldest first."""
    sizes = await objects.sizes(f"{SEGMENTS}/")
    return sorted(key for key in sizes if key.endswith(".jsonl"))


async def read_segments(objects: Objects, keys: list[str]) -> list[ManifestEntry]:
    """Every readable line of the segments ``keys``, in their order."""
    bodies: list[bytes] = [b""] * len(keys)
    limiter = anyio.CapacityLimiter(8)

    async def read(number: int, key: str) -> None:
        async with limiter:
            bodies[number] = await objects.read(key)

    async with anyio.create_task_group() as tasks:
        for number, key in enumerate(keys):
            tasks.start_soon(read, number, key)
    return [entry for body in bodies for entry in parse_lines(body.splitlines())]


async def verify_store(objects: Objects) -> VerifyReport:
    """Re-hash, by streaming, every object the manifest says was saved."""
    segments = await segment_keys(objects)
    if not segments:
        raise DestinationError(f"no manifest in {objects.shown}: is it an archive?")
    entries = await read_segments(objects, segments)
    latest = {(e.workspace_id, e.recording_id, e.kind): e for e in entries}
    saved = [e for e in latest.values() if e.status in ItemStatus.ON_DISK and e.path]
    found: list[str | None] = [None] * len(saved)
    limiter = anyio.CapacityLimiter(8)

    async def check(number: int, entry: ManifestEntry) -> None:
        key = _safe_key(entry.path)
        if key is not None:
            async with limiter:
                found[number] = await objects.sha256(key)

    async with anyio.create_task_group() as tasks:
        for number, entry in enumerate(saved):
            tasks.start_soon(check, number, entry)
    missing = tuple(e for e, sha in zip(saved, found, strict=True) if sha is None)
    mismatched = tuple(
        e for e, sha in zip(saved, found, strict=True) if sha is not None and sha != e.sha256
    )
    return VerifyReport(checked=len(saved), missing=missing, mismatched=mismatched)

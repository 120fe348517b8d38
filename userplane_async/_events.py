"""What an archive run reports as it goes: typed events for ``on_event`` callbacks.

Events name recordings and kinds, never URLs; they are frozen values a UI can keep.
"""

# No ``from __future__ import annotations``: see ``_models``.
from pathlib import Path

import attrs

from ._results import ArchiveReport, ManifestEntry


@attrs.frozen
class ArchiveStarted:
    workspace_id: str
    dest: Path | str  # the directory, or an object store's URL
    kinds: tuple[str, ...]


@attrs.frozen
class RecordingQueued:
    recording_id: str


@attrs.frozen
class DownloadStarted:
    recording_id: str
    kind: str


@attrs.frozen
class DownloadProgress:
    recording_id: str
    kind: str
    done: int  # bytes on disk
    total: int | None


@attrs.frozen
class DownloadRetried:
    recording_id: str
    kind: str
    attempt: int  # the attempt about to start, 2 for the first retry
    reason: str


@attrs.frozen
class DownloadFinished:
    """One (recording, kind) reached a good end: downloaded, skipped or unavailable."""

    entry: ManifestEntry


@attrs.frozen
class ItemFailed:
    """One (recording, kind) did not: failed, not_found, gone or deferred."""

    entry: ManifestEntry


@attrs.frozen
class ArchiveFinished:
    report: ArchiveReport


ArchiveEvent = (
    ArchiveStarted
    | RecordingQueued
    | DownloadStarted
    | DownloadProgress
    | DownloadRetried
    | DownloadFinished
    | ItemFailed
    | ArchiveFinished
)

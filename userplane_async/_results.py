"""What a download hands back."""

# No ``from __future__ import annotations``: see ``_models``.
from pathlib import Path

import attrs


@attrs.frozen
class DownloadResult:
    """A resource saved to ``path``: its size, SHA-256 and how much work it took.

    For an object store, ``url`` is the object's URL (``s3://bucket/key``) and ``path`` its
    key below the destination's prefix (not a local file); ``url`` is None for local files.
    """

    path: Path
    size: int
    sha256: str
    content_type: str | None
    attempts: int  # storage requests sent
    resolutions: int  # presigned URLs resolved through the API
    skipped: bool = False  # our own earlier download of the same resource was already there
    url: str | None = None  # the object's URL, when saved to an object store


class ItemStatus:
    """The outcomes a manifest line can record for one (recording, kind)."""

    DOWNLOADED = "downloaded"  # fetched now, verified
    SKIPPED = "skipped"  # already complete: recorded by an earlier run, or our own file
    UNAVAILABLE = "unavailable"  # the API has no URL for it (not captured)
    NOT_FOUND = "not_found"  # 404 for the recording
    GONE = "gone"  # 410: the recording was deleted
    FAILED = "failed"  # anything else; ``error`` says what
    DEFERRED = "deferred"  # the API budget ran out first; a re-run takes it up

    ON_DISK = frozenset({DOWNLOADED, SKIPPED})
    COMPLETE = frozenset({DOWNLOADED, SKIPPED, UNAVAILABLE})
    FINAL = frozenset({DOWNLOADED, SKIPPED, UNAVAILABLE, NOT_FOUND, GONE})
    MISSING = frozenset({NOT_FOUND, GONE})  # the recording is not there (any more)


@attrs.frozen
class ManifestEntry:
    """One line of ``DEST/manifest.jsonl``: what happened to one (recording, kind).

    ``path`` is relative to the archive's root. For the statuses that did not succeed (and
    for ``unavailable``), ``error`` is an error code (the API's such as ``RATE_LIMITED``, the
    object store's such as ``AccessDenied``, the OS's such as ``ENOSPC``, or ours such as
    ``invalid_id``), ``error_type`` the error's class and ``message`` what it said (never a
    URL or a key).
    """

    workspace_id: str
    recording_id: str
    kind: str
    status: str
    path: str | None = None
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    time: str | None = None
    error: str | None = None
    error_type: str | None = None
    message: str | None = None


@attrs.frozen
class ArchiveReport:
    """How an archive run went.

    ``counts`` maps each status to its number of (recording, kind) items (``skipped`` includes
    items an earlier run completed; an item an earlier run found ``not_found`` or ``gone`` is
    counted as such again), ``bytes`` is what was downloaded in this run, ``items`` holds the
    items that did not succeed (the manifest has every item), ``api_calls`` the API calls
    spent, ``elapsed`` seconds. ``missing_recordings`` are the recordings asked for by ID
    (``recording_ids``) that do not exist (404) or were deleted (410), in the order given.
    """

    workspace_id: str
    dest: Path | str  # the directory, or an object store's URL
    counts: dict[str, int]
    bytes: int
    items: tuple[ManifestEntry, ...]
    api_calls: int
    elapsed: float
    interrupted: str | None = None  # why the listing ended early (budget spent, an error)
    missing_recordings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when everything listed reached a final status, the listing was complete, and
        every recording asked for by ID was there: a typo in ``recording_ids`` is not ok."""
        unfinished = self.counts.get(ItemStatus.FAILED) or self.counts.get(ItemStatus.DEFERRED)
        return not unfinished and self.interrupted is None and not self.missing_recordings


@attrs.frozen
class VerifyReport:
    """What ``verify_archive`` found: files checked, and those missing or not matching."""

    checked: int
    missing: tuple[ManifestEntry, ...]
    mismatched: tuple[ManifestEntry, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched

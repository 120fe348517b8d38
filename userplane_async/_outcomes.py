"""How each item of an archive run ended: its manifest line, its count, the event that says so."""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from ._destination import Manifest
from ._errors import DestinationError, UserplaneError
from ._events import ArchiveEvent, DownloadFinished, ItemFailed
from ._models import ResourceKind
from ._results import DownloadResult, ItemStatus, ManifestEntry

About = dict[str, "str | None"]  # the error fields of a manifest line

_MAX_MESSAGE = 300


class Outcomes:
    """Records outcomes: appends each line to the manifest, counts it, emits its event.

    ``failures`` holds the items that did not succeed, ``bytes`` what was downloaded. If the
    manifest cannot be written, ``broken_manifest`` is set and ``on_broken`` called: without
    its manifest, a run cannot go on.
    """

    def __init__(
        self,
        workspace_id: str,
        relative: Callable[[Path], str],
        manifest: Manifest,
        emit: Callable[[ArchiveEvent], None],
        *,
        on_broken: Callable[[DestinationError], None],
    ) -> None:
        self._workspace_id = workspace_id
        self._relative = relative
        self._manifest = manifest
        self._emit = emit
        self._on_broken = on_broken
        self.broken_manifest: DestinationError | None = None
        self.counts: dict[str, int] = {}
        self.failures: list[ManifestEntry] = []
        self.bytes = 0

    @property
    def any_complete(self) -> bool:
        return any(self.counts.get(status) for status in ItemStatus.COMPLETE)

    def record_result(
        self, recording_id: str, kind: ResourceKind, result: DownloadResult
    ) -> ManifestEntry:
        self.bytes += 0 if result.skipped else result.size
        return self.record(
            recording_id,
            kind,
            ItemStatus.SKIPPED if result.skipped else ItemStatus.DOWNLOADED,
            path=self._relative(result.path),
            size=result.size,
            sha256=result.sha256,
            content_type=result.content_type,
        )

    def record_all(
        self,
        recording_id: str,
        kinds: Sequence[ResourceKind],
        status: str,
        about: About | None = None,
        /,
        **found: Any,
    ) -> None:
        for kind in kinds:
            self.record(recording_id, kind, status, about, **found)

    def record(
        self,
        recording_id: str,
        kind: ResourceKind,
        status: str,
        about: About | None = None,
        /,
        **found: Any,
    ) -> ManifestEntry:
        """Write the item's manifest line, count it and tell ``on_event``."""
        entry = ManifestEntry(
            workspace_id=self._workspace_id,
            recording_id=recording_id,
            kind=kind.value,
            status=status,
            time=_now(),
            **{**(about or {}), **found},
        )
        try:
            self._manifest.append(entry)
        except DestinationError as exc:
            self.broken_manifest = exc
            self._on_broken(exc)
        self.count(status)
        if status in ItemStatus.COMPLETE:
            self._emit(DownloadFinished(entry))
        else:
            self.failures.append(entry)
            self._emit(ItemFailed(entry))
        return entry

    def recall(self, entry: ManifestEntry) -> None:
        """An outcome an earlier run recorded and this run keeps: counted and told again, with
        no API call and no new line. Saved or unavailable, it is ``skipped``; a recording that
        was not found or gone stays so (it is not done by being asked for again)."""
        if entry.status in ItemStatus.MISSING:
            self.count(entry.status)
            self.failures.append(entry)
            self._emit(ItemFailed(entry))
        else:
            self.count(ItemStatus.SKIPPED)
            self._emit(DownloadFinished(attrs.evolve(entry, status=ItemStatus.SKIPPED)))

    def count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def about(exc: UserplaneError) -> About:
    """What a manifest line keeps of an error: its code, class and (short) message."""
    code = getattr(exc, "code", None)
    if code is None and isinstance(exc, DestinationError) and exc.errno is not None:
        code = errno.errorcode.get(exc.errno)
    message = str(exc)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return {
        "error": code or type(exc).__name__,
        "error_type": type(exc).__name__,
        "message": message,
    }


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

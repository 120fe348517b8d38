"""``client.archive()``: a whole workspace to disk, resumable, verified, within the API budget.

list pages lazily -> a bounded channel -> N workers -> download -> manifest. Each worker takes
one recording at a time; the client's limiter spaces their API calls, so while one waits for
budget the others download. A re-run leaves alone what the manifest and the files agree is
complete, without a single API call for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import (
    BUDGET_SPENT,
    AuthenticationError,
    DestinationError,
    GoneError,
    InvalidIDError,
    NotFoundError,
    RateLimitError,
    ResourceUnavailableError,
    UserplaneError,
)
from ._events import (
    ArchiveEvent,
    ArchiveFinished,
    ArchiveStarted,
    DownloadFinished,
    DownloadProgress,
    DownloadRetried,
    DownloadStarted,
    ItemFailed,
    RecordingQueued,
)
from ._manifest import Manifest
from ._models import ResourceKind
from ._names import unsafe_name_reason
from ._resources.recordings import resource_kind
from ._results import ArchiveReport, DownloadResult, ItemStatus, ManifestEntry
from ._sinks import write_atomically

if TYPE_CHECKING:
    from ._client import AsyncUserplane

OnEvent = Callable[[ArchiveEvent], object]


@attrs.frozen
class _Queued:
    recording_id: str
    listed: dict[str, Any] | None  # the list item, when it carries the Get Recording shape


class _Run:
    """The state of one archive run, shared by the lister and the workers."""

    def __init__(
        self,
        client: AsyncUserplane,
        workspace_id: str,
        root: Path,
        kinds: tuple[ResourceKind, ...],
        manifest: Manifest,
        on_event: OnEvent | None,
        verify: bool,
    ) -> None:
        self.client = client
        self.workspace_id = workspace_id
        self.root = root
        self.kinds = kinds
        self.manifest = manifest
        self._on_event = on_event
        self.verify = verify
        self.stopped_by: UserplaneError | None = None  # the budget ran out, or the key failed
        self.fatal: UserplaneError | None = None  # raised if nothing could be done at all
        self.broken_manifest: DestinationError | None = None  # raised in any case
        self.interrupted: str | None = None
        self.counts: dict[str, int] = {}
        self.failures: list[ManifestEntry] = []
        self.bytes = 0
        self._queued: set[str] = set()  # each recording is archived once per run
        # The first ID of each case-folded form, in this run or an earlier one: no two IDs
        # that differ only in case may share a directory (case-insensitive file systems).
        self._ids = {rec.casefold(): rec for rec in reversed(manifest.recording_ids())}

    def emit(self, event: ArchiveEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    # --- listing -----------------------------------------------------------------------------

    async def list_into(
        self, send: MemoryObjectSendStream[_Queued], recording_ids: Sequence[str] | None
    ) -> None:
        async with send:
            if recording_ids is not None:
                for recording_id in recording_ids:
                    await self._queue(send, recording_id, None)
                return
            try:
                async for item in self.client.recordings._list_raw(self.workspace_id):
                    listed = item if isinstance(item.get("meta"), dict) else None
                    await self._queue(send, item.get("recordingId"), listed)
                    if self.stopped_by is not None:
                        return  # what is not listed yet waits for the next run
            except UserplaneError as exc:
                # Stop listing; the workers finish what was queued. Nothing done: raised later.
                if isinstance(exc, RateLimitError) and self._out_of_budget(exc):
                    self._stop(exc, "the API budget ran out while listing; a re-run continues")
                else:
                    self.fatal = exc
                    self.interrupted = f"listing stopped: {type(exc).__name__}: {exc}"

    async def _queue(
        self, send: MemoryObjectSendStream[_Queued], recording_id: object, listed: Any
    ) -> None:
        recording_id = recording_id if isinstance(recording_id, str) else ""  # "": invalid
        if recording_id in self._queued:
            return  # page-based listing may repeat items
        self._queued.add(recording_id)
        self._ids.setdefault(recording_id.casefold(), recording_id)
        self.emit(RecordingQueued(recording_id))
        await send.send(_Queued(recording_id, listed))

    # --- working -----------------------------------------------------------------------------

    async def work(self, receive: MemoryObjectReceiveStream[_Queued]) -> None:
        async with receive:
            async for queued in receive:
                await self._archive(queued)

    async def _archive(self, queued: _Queued) -> None:
        recording_id = queued.recording_id
        problem = self._id_problem(recording_id)
        if problem is not None:
            self._record_all(recording_id, self.kinds, ItemStatus.FAILED, "invalid_id")
            return
        todo, replace = [], set()
        for kind in self.kinds:
            previous = self.manifest.previous(recording_id, kind.value)
            if await self.manifest.is_complete(previous, verify=self.verify):
                assert previous is not None  # noqa: S101 - is_complete says so
                self._count(ItemStatus.SKIPPED)  # complete already: no call, no new line
                self.emit(DownloadFinished(attrs.evolve(previous, status=ItemStatus.SKIPPED)))
                continue
            todo.append(kind)
            if previous is not None and previous.status in ItemStatus.ON_DISK:
                replace.add(kind)  # the file no longer matches what was saved: fetch it anew
        if not todo:
            return
        if self.stopped_by is not None:  # only what is still to do waits for the next run
            self._record_all(recording_id, todo, *self._deferred())
            return
        directory = self.root / self.workspace_id / recording_id
        try:
            metadata = queued.listed or await self.client.recordings._get_raw(
                self.workspace_id, recording_id
            )
            await _save_metadata(directory, metadata)
        except UserplaneError as exc:
            self._record_all(recording_id, todo, *self._failure(exc))
            return
        for number, kind in enumerate(todo):
            entry = await self._download(recording_id, kind, directory, kind in replace)
            if entry.status in (ItemStatus.NOT_FOUND, ItemStatus.GONE):  # so for every kind
                self._record_all(recording_id, todo[number + 1 :], entry.status, entry.error)
                return

    async def _download(
        self, recording_id: str, kind: ResourceKind, directory: Path, overwrite: bool
    ) -> ManifestEntry:
        """Download one item and record its outcome."""
        if self.stopped_by is not None:
            return self._record(recording_id, kind, *self._deferred())
        self.emit(DownloadStarted(recording_id, kind.value))
        try:
            result = await self.client.recordings.download(
                self.workspace_id,
                recording_id,
                kind,
                f"{directory}{os.sep}",
                overwrite=overwrite,
                progress=lambda done, total: self.emit(
                    DownloadProgress(recording_id, kind.value, done, total)
                ),
                on_retry=lambda attempt, reason: self.emit(
                    DownloadRetried(recording_id, kind.value, attempt, reason)
                ),
            )
        except ResourceUnavailableError:
            return self._record(recording_id, kind, ItemStatus.UNAVAILABLE)
        except UserplaneError as exc:
            return self._record(recording_id, kind, *self._failure(exc))
        return self._record_result(recording_id, kind, result)

    def _failure(self, exc: UserplaneError) -> tuple[str, str | None]:
        """The status and error code an error leaves an item in; some errors stop the run."""
        if isinstance(exc, RateLimitError) and self._out_of_budget(exc):
            self._stop(exc, "the API budget ran out; a re-run continues")
            return self._deferred()
        if isinstance(exc, AuthenticationError) or getattr(exc, "code", None) == "API_KEY_DISABLED":
            self._stop(exc, f"the API key was refused: {exc}")
            self.fatal = self.fatal or exc
        if isinstance(exc, NotFoundError):
            return ItemStatus.NOT_FOUND, exc.code
        if isinstance(exc, GoneError):
            return ItemStatus.GONE, exc.code
        return ItemStatus.FAILED, getattr(exc, "code", None) or type(exc).__name__

    def _stop(self, exc: UserplaneError, why: str) -> None:
        """Take no new work: what is left is deferred to the next run."""
        if self.stopped_by is None:
            self.stopped_by, self.interrupted = exc, why

    def _deferred(self) -> tuple[str, str | None]:
        return ItemStatus.DEFERRED, getattr(self.stopped_by, "code", None)

    def _out_of_budget(self, exc: RateLimitError) -> bool:
        """The daily budget, not a passing 429 storm: waiting would take longer than allowed."""
        longest = self.client.retry.max_retry_after
        return exc.code == BUDGET_SPENT or (exc.retry_after or 0.0) > longest

    def _id_problem(self, recording_id: str) -> str | None:
        problem = unsafe_name_reason(recording_id)
        if problem is None and self._ids[recording_id.casefold()] != recording_id:
            return "the ID differs only in case from another one"
        return problem

    # --- recording outcomes ------------------------------------------------------------------

    def _record_result(
        self, recording_id: str, kind: ResourceKind, result: DownloadResult
    ) -> ManifestEntry:
        self.bytes += 0 if result.skipped else result.size
        return self._record(
            recording_id,
            kind,
            ItemStatus.SKIPPED if result.skipped else ItemStatus.DOWNLOADED,
            path=result.path.relative_to(self.root).as_posix(),
            size=result.size,
            sha256=result.sha256,
            content_type=result.content_type,
        )

    def _record_all(
        self,
        recording_id: str,
        kinds: Sequence[ResourceKind],
        status: str,
        error: str | None = None,
    ) -> None:
        for kind in kinds:
            self._record(recording_id, kind, status, error=error)

    def _record(
        self,
        recording_id: str,
        kind: ResourceKind,
        status: str,
        error: str | None = None,
        **found: Any,
    ) -> ManifestEntry:
        """Write the item's manifest line, count it and tell ``on_event``."""
        entry = ManifestEntry(
            workspace_id=self.workspace_id,
            recording_id=recording_id,
            kind=kind.value,
            status=status,
            error=error,
            time=_now(),
            **found,
        )
        try:
            self.manifest.append(entry)
        except DestinationError as exc:  # without its manifest the run cannot go on
            self._stop(exc, f"the manifest cannot be written: {exc}")
            self.broken_manifest = exc
        self._count(status)
        if status in ItemStatus.COMPLETE:
            self.emit(DownloadFinished(entry))
        else:
            self.failures.append(entry)
            self.emit(ItemFailed(entry))
        return entry

    def _count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def _save_metadata(directory: Path, metadata: Any) -> None:
    try:
        await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"cannot create the recording's directory: {exc.strerror}"
        raise DestinationError(message, errno=exc.errno) from None
    data = json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n"
    await write_atomically(directory / "recording.json", data)


async def archive(
    client: AsyncUserplane,
    workspace_id: str,
    dest: str | os.PathLike[str],
    *,
    kinds: Sequence[ResourceKind | str] | None,
    recording_ids: Sequence[str] | None,
    concurrency: int,
    on_event: OnEvent | None,
    verify: bool,
) -> ArchiveReport:
    """Archive ``workspace_id`` into ``dest``; see :meth:`AsyncUserplane.archive`."""
    if unsafe_name_reason(workspace_id) is not None:
        raise InvalidIDError("the workspace ID cannot be a directory name in the archive")
    chosen = tuple(dict.fromkeys(resource_kind(k) for k in (kinds or list(ResourceKind))))
    root = Path(dest)
    started, calls = client.clock.monotonic(), client.api_calls
    manifest = await Manifest.open(root, workspace_id)
    run = _Run(client, workspace_id, root, chosen, manifest, on_event, verify)
    run.emit(ArchiveStarted(workspace_id, root, tuple(k.value for k in chosen)))
    try:
        send, receive = anyio.create_memory_object_stream[_Queued](concurrency)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run.list_into, send, recording_ids)
            with receive:
                for _ in range(concurrency):
                    tasks.start_soon(run.work, receive.clone())
    finally:
        await manifest.aclose()
    if run.broken_manifest is not None:
        raise run.broken_manifest
    if run.fatal is not None and not any(run.counts.get(s) for s in ItemStatus.COMPLETE):
        raise run.fatal  # nothing could be done: the error is the whole story
    report = ArchiveReport(
        workspace_id=workspace_id,
        dest=root,
        counts=dict(run.counts),
        bytes=run.bytes,
        items=tuple(run.failures),
        api_calls=client.api_calls - calls,
        elapsed=client.clock.monotonic() - started,
        interrupted=run.interrupted,
    )
    run.emit(ArchiveFinished(report))
    return report

"""``client.archive()``: a whole workspace to a directory or a bucket, resumable, verified, within the API budget.

list pages lazily -> a bounded channel -> N workers -> download -> manifest. Each worker takes
one recording at a time; the client's limiter spaces their API calls, so while one waits for
budget the others download. A re-run leaves alone what the manifest and the files agree is
complete, without a single API call for it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._destination import Destination, Folder, Manifest, open_destination
from ._errors import (
    BUDGET_SPENT,
    AuthenticationError,
    DestinationError,
    GoneError,
    InvalidIDError,
    NotFoundError,
    ObjectStoreError,
    RateLimitError,
    ResourceUnavailableError,
    UserplaneError,
)
from ._events import (
    ArchiveEvent,
    ArchiveFinished,
    ArchiveStarted,
    DownloadProgress,
    DownloadRetried,
    DownloadStarted,
    RecordingQueued,
)
from ._models import ResourceKind
from ._names import unsafe_name_reason
from ._outcomes import About, Outcomes, about
from ._resources.recordings import resource_kind
from ._results import ArchiveReport, ItemStatus, ManifestEntry

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
        destination: Destination,
        kinds: tuple[ResourceKind, ...],
        manifest: Manifest,
        on_event: OnEvent | None,
        verify: bool,
    ) -> None:
        self.client = client
        self.workspace_id = workspace_id
        self.destination = destination
        self.kinds = kinds
        self.manifest = manifest
        self._on_event = on_event
        self.verify = verify
        self.stopped_by: UserplaneError | None = None  # the budget ran out, or the key failed
        self.fatal: UserplaneError | None = None  # raised if nothing could be done at all
        self.interrupted: str | None = None
        self.outcomes = Outcomes(
            workspace_id,
            destination.relative,
            manifest,
            self.emit,
            on_broken=lambda exc: self._stop(exc, f"the manifest cannot be written: {exc}"),
        )
        self._queued: set[str] = set()  # each recording is archived once per run
        # Which ID owns each case-folded directory name (an earlier run's choice first): an
        # ID that differs only in case from the owner gets a directory of its own, so no two
        # share one on a case-insensitive file system.
        self._owners = manifest.owners

    @property
    def nothing_done(self) -> bool:
        """A fatal error came before any item could be completed."""
        return self.fatal is not None and not self.outcomes.any_complete

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
        self._owners.setdefault(recording_id.casefold(), recording_id)
        self.emit(RecordingQueued(recording_id))
        await send.send(_Queued(recording_id, listed))

    # --- working -----------------------------------------------------------------------------

    async def work(self, receive: MemoryObjectReceiveStream[_Queued]) -> None:
        async with receive:
            async for queued in receive:
                await self._archive(queued)

    async def _archive(self, queued: _Queued) -> None:
        recording_id = queued.recording_id
        problem = unsafe_name_reason(recording_id)
        if problem is not None:
            invalid: About = {
                "error": "invalid_id",
                "error_type": "InvalidIDError",
                "message": problem,
            }
            self.outcomes.record_all(recording_id, self.kinds, ItemStatus.FAILED, invalid)
            return
        todo = []
        for kind in self.kinds:
            previous = self.manifest.previous(recording_id, kind.value)
            if await self.manifest.is_complete(previous, verify=self.verify):
                assert previous is not None  # noqa: S101 - is_complete says so
                self.outcomes.recall(previous)  # final already: no call, no new line
            else:
                todo.append(kind)  # a file that no longer matches its line is fetched anew
        if not todo:
            return
        if self.stopped_by is not None:  # only what is still to do waits for the next run
            self.outcomes.record_all(recording_id, todo, *self._deferred())
            return
        try:
            metadata = queued.listed or await self.client.recordings._get_raw(
                self.workspace_id, recording_id
            )
            parts = (self.workspace_id, self._directory_name(recording_id))
            folder = await self.destination.folder(parts)
        except UserplaneError as exc:
            self.outcomes.record_all(recording_id, todo, *self._failure(exc))
            return
        try:
            await self._save(recording_id, todo, folder, metadata)
        finally:
            await folder.aclose()

    async def _save(
        self, recording_id: str, todo: list[ResourceKind], folder: Folder, metadata: Any
    ) -> None:
        """The recording's metadata, then each resource still to do, into ``folder``."""
        data = json.dumps(metadata, indent=2, sort_keys=True).encode() + b"\n"
        try:
            await folder.write_whole("recording.json", data)
        except DestinationError as exc:
            self.outcomes.record_all(recording_id, todo, *self._failure(exc))
            return
        for number, kind in enumerate(todo):
            entry = await self._download(recording_id, kind, folder)
            if entry.status in (ItemStatus.NOT_FOUND, ItemStatus.GONE):  # so for every kind
                same = {
                    "error": entry.error,
                    "error_type": entry.error_type,
                    "message": entry.message,
                }
                self.outcomes.record_all(recording_id, todo[number + 1 :], entry.status, same)
                return

    def _directory_name(self, recording_id: str) -> str:
        """The recording's own ID, unless another ID that differs only in case has it."""
        if self._owners[recording_id.casefold()] == recording_id:
            return recording_id
        return f"{recording_id}~{hashlib.sha256(recording_id.encode()).hexdigest()[:10]}"

    async def _download(
        self, recording_id: str, kind: ResourceKind, folder: Folder
    ) -> ManifestEntry:
        """Download one item and record its outcome."""
        if self.stopped_by is not None:
            return self.outcomes.record(recording_id, kind, *self._deferred())
        self.emit(DownloadStarted(recording_id, kind.value))
        try:
            result = await self.client.recordings._archive_one(
                self.workspace_id,
                recording_id,
                kind,
                folder,
                progress=lambda done, total: self.emit(
                    DownloadProgress(recording_id, kind.value, done, total)
                ),
                on_retry=lambda attempt, reason: self.emit(
                    DownloadRetried(recording_id, kind.value, attempt, reason)
                ),
            )
        except ResourceUnavailableError as exc:
            return self.outcomes.record(
                recording_id, kind, ItemStatus.UNAVAILABLE, message=exc.message
            )
        except UserplaneError as exc:
            return self.outcomes.record(recording_id, kind, *self._failure(exc))
        return self.outcomes.record_result(recording_id, kind, result)

    def _failure(self, exc: UserplaneError) -> tuple[str, About]:
        """The status an error leaves an item in, and what it said; some errors stop the run."""
        if isinstance(exc, RateLimitError) and self._out_of_budget(exc):
            self._stop(exc, "the API budget ran out; a re-run continues")
            return self._deferred()
        if isinstance(exc, ObjectStoreError) and exc.refuses_all:
            self._stop(exc, f"the object store refused us: {exc}")
        if isinstance(exc, AuthenticationError) or getattr(exc, "code", None) == "API_KEY_DISABLED":
            self._stop(exc, f"the API key was refused: {exc}")
            self.fatal = self.fatal or exc
        if isinstance(exc, NotFoundError):
            return ItemStatus.NOT_FOUND, about(exc)
        if isinstance(exc, GoneError):
            return ItemStatus.GONE, about(exc)
        return ItemStatus.FAILED, about(exc)

    def _stop(self, exc: UserplaneError, why: str) -> None:
        """Take no new work: what is left is deferred to the next run."""
        if self.stopped_by is None:
            self.stopped_by, self.interrupted = exc, why

    def _deferred(self) -> tuple[str, About]:
        return ItemStatus.DEFERRED, about(self.stopped_by) if self.stopped_by else {}

    def _out_of_budget(self, exc: RateLimitError) -> bool:
        """The daily budget, not a passing 429 storm: waiting would take longer than allowed."""
        longest = self.client.retry.max_retry_after
        return exc.code == BUDGET_SPENT or (exc.retry_after or 0.0) > longest


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
    store: Any = None,
) -> ArchiveReport:
    """Archive ``workspace_id`` into ``dest``; see :meth:`AsyncUserplane.archive`."""
    if unsafe_name_reason(workspace_id) is not None:
        raise InvalidIDError("the workspace ID cannot be a directory name in the archive")
    chosen = tuple(dict.fromkeys(resource_kind(k) for k in (kinds or list(ResourceKind))))
    destination = open_destination(dest, store)
    try:
        return await _archive(
            client, workspace_id, destination, chosen, recording_ids, concurrency, on_event, verify
        )
    finally:
        await destination.aclose()


async def _archive(
    client: AsyncUserplane,
    workspace_id: str,
    destination: Destination,
    chosen: tuple[ResourceKind, ...],
    recording_ids: Sequence[str] | None,
    concurrency: int,
    on_event: OnEvent | None,
    verify: bool,
) -> ArchiveReport:
    started, calls = client.clock.monotonic(), client.api_calls
    manifest = await destination.manifest(workspace_id)
    run = _Run(client, workspace_id, destination, chosen, manifest, on_event, verify)
    run.emit(ArchiveStarted(workspace_id, destination.shown, tuple(k.value for k in chosen)))
    try:
        send, receive = anyio.create_memory_object_stream[_Queued](concurrency)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run.list_into, send, recording_ids)
            with receive:
                for _ in range(concurrency):
                    tasks.start_soon(run.work, receive.clone())
    finally:
        # Nothing could be done (a refused key): leave no manifest of failures behind.
        await manifest.aclose(discard=run.nothing_done)
    if run.outcomes.broken_manifest is not None:
        raise run.outcomes.broken_manifest
    if run.nothing_done:
        assert run.fatal is not None  # noqa: S101 - nothing_done says so
        raise run.fatal  # the error is the whole story
    report = ArchiveReport(
        workspace_id=workspace_id,
        dest=destination.shown,
        counts=dict(run.outcomes.counts),
        bytes=run.outcomes.bytes,
        items=tuple(run.outcomes.failures),
        api_calls=client.api_calls - calls,
        elapsed=client.clock.monotonic() - started,
        interrupted=run.interrupted,
        missing_recordings=_missing(recording_ids, run.outcomes.failures),
    )
    run.emit(ArchiveFinished(report))
    return report


def _missing(
    recording_ids: Sequence[str] | None, failures: Sequence[ManifestEntry]
) -> tuple[str, ...]:
    """The recordings asked for by ID that are not there: not found, or deleted."""
    if recording_ids is None:
        return ()  # a recording the listing named and then lost was deleted meanwhile: fine
    missing = {entry.recording_id for entry in failures if entry.status in ItemStatus.MISSING}
    return tuple(r for r in dict.fromkeys(recording_ids) if r in missing)

"""``client.recordings``: list, get, delete, and the five presigned resource URLs."""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs

from .._convert import structure
from .._destination import Folder
from .._download import ARCHIVE, Progress, Where, download, download_into
from .._errors import ConfigurationError
from .._fetch import OnRetry, StorageSession
from .._http import ApiTransport
from .._models import DeletedRecording, Recording, RecordingResource, ResourceKind
from .._pagination import AsyncPaginator
from .._ranges import ByteRange, is_strong_etag
from .._results import DownloadResult
from .._stream import ResourceStream, open_stream
from ._base import Namespace, QueryValue, workspace_path


def resource_kind(kind: ResourceKind | str) -> ResourceKind:
    try:
        return ResourceKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in ResourceKind)
        raise ConfigurationError(
            f"unknown resource kind {kind!r}; expected one of {choices}"
        ) from None


def _offset(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("offset must be a non-negative int")
    return value


def _wanted(offset: object, byte_range: object) -> ByteRange | None:
    """The bytes a stream asks for: ``range``, or from ``offset``; None for all of them."""
    start = _offset(offset)
    if byte_range is None:
        return ByteRange(start) if start else None
    if not isinstance(byte_range, ByteRange):
        raise ConfigurationError(f"range must be a ByteRange, not {type(byte_range).__name__}")
    if start:
        raise ConfigurationError("pass either offset or range, not both")
    return byte_range


def _if_range(etag: object) -> str | None:
    if etag is None:
        return None
    if not is_strong_etag(etag):
        raise ConfigurationError('if_range must be a strong ETag such as "abc" (in its quotes)')
    return etag


def _recording(workspace_id: str, recording_id: str, *rest: str) -> list[str]:
    return workspace_path(workspace_id, "recordings", ("recording_id", recording_id), *rest)


class Recordings(Namespace):
    """Recordings of a workspace and their resources."""

    def __init__(self, http: ApiTransport, storage: StorageSession) -> None:
        super().__init__(http)
        self._storage = storage

    def list(
        self,
        /,
        workspace_id: str,
        *,
        project_id: str | None = None,
        link_id: str | None = None,
        created_by: str | None = None,
        per_page: int = 20,
        **params: QueryValue,
    ) -> AsyncPaginator[Recording]:
        """Active recordings, newest first; extra keyword arguments pass through as filters."""
        return self._paginate(
            workspace_path(workspace_id, "recordings"),
            "recordings",
            Recording,
            per_page=per_page,
            max_per_page=20,
            params={
                "project_id": project_id,
                "link_id": link_id,
                "created_by": created_by,
                **params,
            },
        )

    async def get(self, workspace_id: str, recording_id: str) -> Recording:
        return structure(
            await self._get_raw(workspace_id, recording_id), Recording, path="$.data.recording"
        )

    async def _get_raw(self, workspace_id: str, recording_id: str) -> Any:
        """The recording object exactly as the API sent it (the archive keeps it whole)."""
        return (await self._get(_recording(workspace_id, recording_id))).get("recording")

    def _list_raw(self, workspace_id: str) -> AsyncPaginator[dict[str, Any]]:
        """Listed recordings exactly as the API sent them, page by page."""
        return self._paginate(
            workspace_path(workspace_id, "recordings"),
            "recordings",
            dict[str, Any],
            per_page=20,
            max_per_page=20,
            params={},
        )

    async def delete(self, workspace_id: str, recording_id: str) -> DeletedRecording:
        """Soft-delete a recording; later calls for it raise :class:`GoneError`."""
        data = await self._http.request("DELETE", _recording(workspace_id, recording_id))
        return structure(data, DeletedRecording, path="$.data")

    async def resource(
        self, workspace_id: str, recording_id: str, kind: ResourceKind | str
    ) -> RecordingResource:
        """Resolve a fresh presigned URL for one resource (``url`` is None if unavailable)."""
        kind = resource_kind(kind)
        data = await self._get(_recording(workspace_id, recording_id, kind.value))
        resource: Any = data.get("resource")
        if isinstance(resource, dict):
            resource = {"recordingId": data.get("recordingId", recording_id), **resource}
        parsed = structure(resource, RecordingResource, path="$.data.resource")
        return attrs.evolve(parsed, kind=kind)

    async def video(self, workspace_id: str, recording_id: str) -> RecordingResource:
        return await self.resource(workspace_id, recording_id, ResourceKind.VIDEO)

    async def thumbnail(self, workspace_id: str, recording_id: str) -> RecordingResource:
        return await self.resource(workspace_id, recording_id, ResourceKind.THUMBNAIL)

    async def console_log(self, workspace_id: str, recording_id: str) -> RecordingResource:
        return await self.resource(workspace_id, recording_id, ResourceKind.CONSOLE_LOG)

    async def network_log(self, workspace_id: str, recording_id: str) -> RecordingResource:
        return await self.resource(workspace_id, recording_id, ResourceKind.NETWORK_LOG)

    async def action(self, workspace_id: str, recording_id: str) -> RecordingResource:
        return await self.resource(workspace_id, recording_id, ResourceKind.ACTION)

    async def download(
        self,
        workspace_id: str,
        recording_id: str,
        kind: ResourceKind | str,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        on_retry: OnRetry | None = None,
        store: Any = None,
    ) -> DownloadResult:
        """Save one resource to ``dest`` (a file, or a directory for ``<kind>.<ext>``).

        ``dest`` may be an object-store URL instead (``s3://bucket/key``, or with a trailing
        slash a prefix for ``<kind>.<ext>``; also ``gs://``, ``az://``, ``file://``), with
        credentials from the cloud's usual environment variables; or, with ``store`` (a
        configured obstore store), a key inside that store. Needs the ``objectstore`` extra.

        The file appears whole and verified or not at all. Breaks resume with a fresh URL,
        and a download killed mid-way resumes where it stopped the next time it is asked for.
        A file already at the target is kept: if it is this SDK's earlier download of the same
        resource, unchanged, the result says ``skipped``; anything else raises
        :class:`DestinationError` unless ``overwrite``, which replaces it once the new file
        is verified. ``progress(bytes_written, total_or_None)`` is called as batches reach
        the disk, ``on_retry(attempt, reason)`` before each further storage attempt.
        """
        kind = resource_kind(kind)
        return await download(
            self._storage,
            lambda: self.resource(workspace_id, recording_id, kind),
            Where(workspace_id, recording_id, kind),
            dest,
            store=store,
            overwrite=overwrite,
            progress=progress,
            on_retry=on_retry,
        )

    async def _archive_one(
        self,
        workspace_id: str,
        recording_id: str,
        kind: ResourceKind,
        folder: Folder,
        *,
        progress: Progress | None,
        on_retry: OnRetry | None,
    ) -> DownloadResult:
        """Download into an archive's folder, under the archive's existing-file policy."""
        return await download_into(
            self._storage,
            lambda: self.resource(workspace_id, recording_id, kind),
            Where(workspace_id, recording_id, kind),
            folder,
            ARCHIVE,
            progress=progress,
            on_retry=on_retry,
        )

    def stream(
        self,
        workspace_id: str,
        recording_id: str,
        kind: ResourceKind | str,
        *,
        offset: int = 0,
        range: ByteRange | None = None,  # HTTP's name for it; keyword-only, so no clash
        if_range: str | None = None,
    ) -> AbstractAsyncContextManager[ResourceStream]:
        """``async with ...stream(...) as body: async for chunk in body`` (closed on exit).

        ``range=ByteRange(start, end)`` streams those bytes (``offset=n`` is
        ``ByteRange(n)``); a range that starts past the end raises
        :class:`RangeNotSatisfiableError`. ``if_range=etag`` serves the range only if the
        object still has that ETag, else the whole object (HTTP's ``If-Range``; the whole
        object costs one more API call). ``body.status`` says which: 206 or 200.

        An open stream holds one of the client's ``stream_concurrency`` slots, apart from
        the download slots: viewers and downloads never wait for each other.
        """
        kind = resource_kind(kind)
        wanted, etag = _wanted(offset, range), _if_range(if_range)
        return open_stream(
            self._storage,
            lambda: self.resource(workspace_id, recording_id, kind),
            recording_id,
            kind,
            wanted,
            etag if wanted is not None else None,  # without a range there is nothing to drop
        )

"""Where downloads and archives go: the small interfaces the downloader and the archiver write
through, so neither knows whether it has a local directory or an object store.

A :class:`Destination` is an archive's root; its :class:`Folder` s hold one recording's files;
a :class:`Sink` takes one file's bytes and makes them appear whole and verified, or not at all.
Local paths are served by ``_localdest``; ``s3://``, ``gs://``, ``az://`` and ``file://`` URLs
(or a configured ``store=``) by ``_store``, imported only when one is asked for, since it
needs the ``objectstore`` extra.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ._errors import ConfigurationError
from ._provenance import Found
from ._results import ManifestEntry, VerifyReport

#: The URL schemes that name an object store rather than a local path. (``file://`` names a
#: local directory, served by the local sink: fsync, atomic rename, resumable partials.)
STORE_SCHEMES = (
    *("s3://", "s3a://", "gs://", "az://", "azure://", "abfs://", "abfss://"),
    *("https://", "http://"),  # obstore knows S3, R2 and Azure hosts (and plain WebDAV)
)


def is_store_url(dest: object) -> bool:
    return isinstance(dest, str) and dest.lower().startswith(STORE_SCHEMES)


def shown_url(url: str) -> str:
    """``url`` without a query, fragment or user info (an Azure SAS, a password): how
    messages and results name it."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


class Sink(Protocol):
    """One file's bytes on their way: ``send`` them, then ``commit`` or ``aclose`` to discard.

    ``received`` counts the bytes sent since the last ``restart`` (more than 0 at the start
    when a dead download's partial was adopted); ``etag`` is the storage validator of those
    bytes (a resume sends it as ``If-Match``); ``sha256`` is set by ``commit``.
    """

    received: int
    sha256: str
    etag: str | None

    async def send(self, chunk: bytes) -> None: ...

    async def restart(self) -> None:
        """Forget everything received so far: the next byte is byte 0 again."""

    async def commit(self) -> None:
        """Make the bytes appear at the final name, whole; raises if they cannot."""

    async def aclose(self) -> None:
        """Discard what was not committed (nothing is left visible); safe to call twice."""

    async def __aenter__(self) -> Sink: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Folder(Protocol):
    """A place that holds files by name: a directory, or a key prefix in a bucket."""

    async def find(self, name: str, resource: str, size: int | None) -> tuple[Found, str] | None:
        """What is at ``name`` already, against ``resource`` of ``size`` (None: nothing), and
        its SHA-256 when it is ours."""

    async def open_sink(
        self,
        name: str,
        *,
        resource: str,
        size: int | None,
        replace: bool,
        on_landed: Callable[[int], object],
    ) -> Sink:
        """A sink for ``name``; without ``replace`` it never takes the place of anything."""

    async def write_whole(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data`` in one step: whole or absent."""

    def location(self, name: str) -> tuple[Path, str | None]:
        """A result's ``path`` and ``url`` for ``name``."""

    async def aclose(self) -> None: ...


class Manifest(Protocol):
    """What earlier runs recorded, and the record of this one."""

    owners: dict[str, str]  # case-folded recording ID -> the ID whose folder it is

    def previous(self, recording_id: str, kind: str) -> ManifestEntry | None:
        """The final outcome an earlier run recorded for this item, if any."""

    async def is_complete(self, entry: ManifestEntry | None, *, verify: bool) -> bool:
        """Whether the manifest and the stored file agree the item is done (``verify``:
        re-hash it)."""

    def append(self, entry: ManifestEntry) -> None:
        """Record one outcome; raises :class:`DestinationError` if it cannot."""

    async def aclose(self, *, discard: bool = False) -> None:
        """Make the record durable; ``discard`` removes what this run made of it."""


class Destination(Protocol):
    """An archive's root: its folders, its manifest, and what its outcomes are called."""

    shown: Path | str  # how reports and events name it: a directory, or a URL

    async def manifest(self, workspace_id: str) -> Manifest:
        """Read what the manifest says about ``workspace_id``, and check the destination can
        take an archive, before any API call is spent; creates nothing."""

    async def folder(self, parts: Sequence[str]) -> Folder:
        """The folder ``parts`` below the root, made if it has to be."""

    def relative(self, path: Path) -> str:
        """The manifest's name for a result's ``path`` inside this destination."""

    async def verify(self) -> VerifyReport:
        """Re-hash every file the manifest says was saved."""

    async def aclose(self) -> None: ...


def local_path(dest: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """A path, or the path a ``file://`` URL names (a trailing slash kept: it names a
    folder)."""
    if isinstance(dest, str) and dest.lower().startswith("file://"):
        parts = urlsplit(dest)
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError("a file:// URL names this machine: file:///path")
        return unquote(parts.path)
    return dest


def store_module() -> ModuleType:
    """``_store``, which needs obstore: a clear error where the extra is not installed."""
    try:
        return importlib.import_module("userplane_async._store")
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "obstore":
            raise
        raise ConfigurationError(
            "object-store destinations need obstore: pip install 'userplane-async[objectstore]'"
        ) from None


def open_destination(dest: str | os.PathLike[str], store: Any = None) -> Destination:
    """The destination ``dest`` names: a local path, an object-store URL, or, with ``store``
    (a configured obstore store), a key prefix inside that store."""
    if store is not None or is_store_url(dest):
        from ._store import store_destination

        return store_destination(str(os.fspath(dest)), store)
    from ._localdest import LocalDestination

    return LocalDestination(Path(local_path(dest)))


async def download_place(
    dest: str | os.PathLike[str], store: Any = None
) -> tuple[Folder, str | None]:
    """The folder and file name a single download's ``dest`` names (no name: it names a
    folder, and the file is ``<kind>.<ext>``)."""
    if store is not None or is_store_url(dest):
        from ._store import store_place

        return store_place(str(os.fspath(dest)), store)
    from ._localdest import local_place

    return await local_place(local_path(dest))


async def verify_archive(dest: str | os.PathLike[str], *, store: Any = None) -> VerifyReport:
    """Re-hash every file the manifest of ``dest`` (a directory, an object-store URL, or a
    prefix in ``store``) says was saved; no API call is made."""
    destination = open_destination(dest, store)
    try:
        return await destination.verify()
    finally:
        await destination.aclose()

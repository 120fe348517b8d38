"""An object store as an archive's destination, or a single download's."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore.store

from .._destination import shown_url
from .._errors import ConfigurationError
from .._provenance import Found
from .._results import VerifyReport
from ._manifest import StoreManifest, verify_store
from ._objects import Objects
from ._sink import RESOURCE_KEY, SHA256_KEY, ObjectSink

if TYPE_CHECKING:
    from obstore.store import ClientConfig

#: 8 concurrent downloads x 6 MiB parts x (2 in flight + 1 filling) stays under 256 MiB.
PART_SIZE = 6 * 1024 * 1024
PARTS_IN_FLIGHT = 2


class StoreFolder:
    """The objects of one folder of the layout: keys ``<folder>/<name>``."""

    def __init__(self, objects: Objects, folder: str) -> None:
        self._objects = objects
        self._folder = folder.strip("/")

    def _relative(self, name: str) -> str:
        return f"{self._folder}/{name}" if self._folder else name

    async def find(self, name: str, resource: str, size: int | None) -> tuple[Found, str] | None:
        relative = self._relative(name)
        attributes = await self._objects.attributes(relative)
        if attributes is None:
            return None
        recorded = attributes.get(SHA256_KEY)
        if attributes.get(RESOURCE_KEY) != resource or not recorded:
            return Found.FOREIGN, ""  # not ours, or too big to carry its hash: not adopted
        sha256 = await self._objects.sha256(relative)
        if sha256 != recorded:
            return Found.FOREIGN, ""  # changed since we wrote it
        meta_size = attributes.get("userplane-size")
        return (Found.SAME if meta_size == str(size) else Found.OURS), recorded

    async def open_sink(
        self,
        name: str,
        *,
        resource: str,
        size: int | None,
        replace: bool,
        on_landed: Callable[[int], object],
    ) -> ObjectSink:
        relative = self._relative(name)
        return ObjectSink(
            self._objects,
            self._objects.key(relative),
            self._objects.url(relative),
            resource=resource,
            size=size,
            replace=replace,
            on_landed=on_landed,
            part_size=PART_SIZE,
            parts_in_flight=PARTS_IN_FLIGHT,
        )

    async def write_whole(self, name: str, data: bytes) -> None:
        await self._objects.put(self._relative(name), data, replace=True)

    def location(self, name: str) -> tuple[Path, str | None]:
        relative = self._relative(name)
        return Path(self._objects.path(relative)), self._objects.url(relative)

    async def aclose(self) -> None:
        pass


class StoreDestination:
    """An archive under a prefix of an object store: keys are the local layout's paths."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self.shown: Path | str = objects.shown

    async def manifest(self, workspace_id: str) -> StoreManifest:
        return await StoreManifest.open(self.objects, workspace_id)

    async def folder(self, parts: Sequence[str]) -> StoreFolder:
        return StoreFolder(self.objects, "/".join(parts))

    def relative(self, path: Path) -> str:
        key, prefix = path.as_posix(), self.objects.path("")
        return key[len(prefix) :] if key.startswith(prefix) else key

    async def verify(self) -> VerifyReport:
        return await verify_store(self.objects)

    async def aclose(self) -> None:
        pass


def store_destination(dest: str, store: Any) -> StoreDestination:
    return StoreDestination(_objects(dest, store))


def store_place(dest: str, store: Any) -> tuple[StoreFolder, str | None]:
    """A single download's folder and object name; a trailing slash (or a bare bucket)
    names a folder, and the object is ``<kind>.<ext>`` in it."""
    path = dest if store is not None else urlsplit(dest).path
    if not path.strip("/") or dest.endswith("/"):
        return StoreFolder(_objects(dest, store), ""), None
    head, _, name = dest.rpartition("/")
    return StoreFolder(_objects(head, store), ""), name


def _objects(dest: str, store: Any) -> Objects:
    if store is not None:
        shown = f"{_describe(store)}/{dest.strip('/')}".rstrip("/")
        return Objects(store, dest, shown, getattr(store, "prefix", None) or "")
    try:
        opened = obstore.store.from_url(dest, client_options=_client_options())
    except Exception:  # its text may repeat the URL, and with it any credentials in it
        message = f"cannot use {shown_url(dest)} as a destination: obstore does not recognise it"
        raise ConfigurationError(message) from None
    return Objects(opened, "", shown_url(dest), urlsplit(shown_url(dest)).path)


def _client_options() -> ClientConfig:
    """HTTP to a store endpoint on this machine (moto, MinIO, SeaweedFS) needs no extra step:
    as for Userplane's storage, plain HTTP is allowed to loopback hosts only."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT") or ""
    host = urlsplit(endpoint).hostname or ""
    if endpoint.startswith("http://") and _is_loopback(host):
        return {"allow_http": True}
    return {}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _describe(store: Any) -> str:
    """A URL-like name for a configured store (its bucket and prefix), never its credentials."""
    config = getattr(store, "config", None) or {}
    prefix = (getattr(store, "prefix", None) or "").strip("/")
    for scheme, field in (("s3", "bucket"), ("gs", "bucket"), ("az", "container_name")):
        bucket = config.get(field) if isinstance(config, dict) else None
        if bucket:
            return f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else "")
    return type(store).__name__

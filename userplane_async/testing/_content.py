"""Resource content: given bytes, or deterministic bytes generated on demand from a size."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator

import attrs

RESOURCE_KINDS = ("video", "thumbnail", "console-log", "network-log", "action")

DEFAULT_TYPES = {
    "video": "video/webm",
    "thumbnail": "image/jpeg",
    "console-log": "application/x-ndjson",
    "network-log": "application/json",
    "action": "application/json",
}

DEFAULT_SIZES = {
    "video": 32 * 1024,
    "thumbnail": 4 * 1024,
    "console-log": 2 * 1024,
    "network-log": 2 * 1024,
    "action": 2 * 1024,
}

_BLOCK = 64 * 1024


def _nonnegative(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0")


@attrs.frozen
class FakeResource:
    """One resource of a fake recording.

    ``content`` is served as is. Without it, ``size`` bytes are generated on demand from a
    pattern derived from the recording ID and kind (cheap even for gigabytes). With both,
    ``content`` is served and ``size`` is what the API declares (a way to make them disagree).
    ``captured=False`` makes the API answer ``url: null, captureEnabled: false``.
    ``content_encoding`` is sent as ``Content-Encoding`` while the stored bytes go out as they
    are (store gzip bytes with ``"gzip"``, as S3 does for objects uploaded that way).
    """

    content: bytes | None = None
    size: int | None = attrs.field(default=None, kw_only=True, validator=_nonnegative)
    type: str | None = attrs.field(default=None, kw_only=True)
    captured: bool = attrs.field(default=True, kw_only=True)
    content_encoding: str | None = attrs.field(default=None, kw_only=True)


@functools.lru_cache(maxsize=16)
def _digest(content: bytes) -> bytes:
    # Every GET needs the ETag; large given content is hashed once, not per request.
    return hashlib.sha256(content).digest()


@functools.lru_cache(maxsize=64)
def _pattern(seed: str) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(_BLOCK)


@attrs.define
class StoredObject:
    """A resource as the fake stores it: what the API declares and what storage serves."""

    kind: str
    resource: FakeResource
    seed: str
    version: int = 0

    @property
    def captured(self) -> bool:
        return self.resource.captured

    @property
    def type(self) -> str:
        return self.resource.type or DEFAULT_TYPES[self.kind]

    @property
    def content_encoding(self) -> str | None:
        return self.resource.content_encoding

    def replace(self, resource: FakeResource) -> None:
        """Put a new object under this key: a new version, so a new ETag (and new bytes)."""
        self.resource = resource
        self.version += 1

    @property
    def size(self) -> int:
        """Number of bytes storage serves."""
        if self.resource.content is not None:
            return len(self.resource.content)
        if self.resource.size is not None:
            return self.resource.size
        return DEFAULT_SIZES[self.kind]

    @property
    def declared_size(self) -> int:
        """The ``size`` the API reports."""
        return self.resource.size if self.resource.size is not None else self.size

    @property
    def etag(self) -> str:
        """A quoted change detector: new content or a new version gives a new ETag."""
        h = hashlib.sha256(f"{self.seed}\0{self.version}\0{self.size}\0".encode())
        if self.resource.content is not None:
            h.update(_digest(self.resource.content))
        return f'"{h.hexdigest()[:32]}"'

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the served content."""
        end = min(end, self.size)
        if start >= end:
            return b""
        if self.resource.content is not None:
            return self.resource.content[start:end]
        pattern = _pattern(f"{self.seed}\0{self.version}")
        parts = []
        while start < end:
            offset = start % _BLOCK
            take = min(_BLOCK - offset, end - start)
            parts.append(pattern[offset : offset + take])
            start += take
        return b"".join(parts)

    def chunks(self, start: int = 0, end: int | None = None, size: int = _BLOCK) -> Iterator[bytes]:
        """The served content from ``start`` to ``end`` in chunks of at most ``size`` bytes."""
        stop = self.size if end is None else min(end, self.size)
        for offset in range(start, stop, size):
            yield self.read(offset, min(offset + size, stop))

"""A store and a key prefix in it: the few object operations the destination needs, each with
obstore's errors turned into ours."""

from __future__ import annotations

import hashlib
from typing import Any

import obstore
from obstore import exceptions
from obstore.store import LocalStore, MemoryStore

from .._threads import in_thread
from ._errors import is_missing, store_error

_READ = 1024 * 1024


class Objects:
    """Keys below ``prefix`` in ``store``; ``url(key)`` is how messages and results name one,
    ``path(key)`` its whole key in the bucket (below ``outer``, the store's own prefix)."""

    def __init__(self, store: Any, prefix: str, shown: str, outer: str = "") -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.shown = shown.rstrip("/")
        self._outer = outer.strip("/")
        # obstore's local and in-memory stores keep no attributes (they raise instead).
        self.keeps_attributes = not isinstance(store, (LocalStore, MemoryStore))

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def url(self, relative: str) -> str:
        return f"{self.shown}/{relative}"

    def path(self, relative: str) -> str:
        key = self.key(relative)
        return f"{self._outer}/{key}" if self._outer else key

    async def sizes(self, below: str) -> dict[str, int]:
        """Every object under ``below`` (relative), by relative key, with its size."""
        found: dict[str, int] = {}
        start = len(self.key(""))
        try:
            async for batch in obstore.list(self.store, self.key(below), chunk_size=1000):
                for meta in batch:
                    found[meta["path"][start:]] = meta["size"]
        except Exception as exc:
            raise store_error(exc, f"list {self.url(below)}") from None
        return found

    async def read(self, relative: str) -> bytes:
        try:
            result = await obstore.get_async(self.store, self.key(relative))
            return bytes(await result.bytes_async())
        except Exception as exc:
            raise store_error(exc, f"read {self.url(relative)}") from None

    async def put(
        self,
        relative: str,
        data: bytes,
        *,
        replace: bool,
        attributes: dict[str, str] | None = None,
    ) -> None:
        try:
            await obstore.put_async(
                self.store,
                self.key(relative),
                data,
                attributes=attributes if self.keeps_attributes else None,
                mode="overwrite" if replace else "create",
            )
        except Exception as exc:
            raise store_error(exc, f"write {self.url(relative)}") from None

    async def delete(self, relatives: list[str]) -> None:
        if not relatives:
            return
        try:
            await obstore.delete_async(self.store, [self.key(r) for r in relatives])
        except Exception as exc:
            raise store_error(exc, "delete " + self.shown) from None

    async def attributes(self, relative: str) -> dict[str, Any] | None:
        """The object's attributes (its metadata among them), or None if there is none."""
        try:
            result = await obstore.get_async(self.store, self.key(relative))
        except Exception as exc:
            if is_missing(exc):
                return None
            raise store_error(exc, f"read {self.url(relative)}") from None
        return dict(result.attributes)

    async def sha256(self, relative: str) -> str | None:
        """The SHA-256 of the object's bytes, streamed; None if there is no such object."""
        hasher = hashlib.sha256()
        try:
            result = await obstore.get_async(self.store, self.key(relative))
            async for chunk in result.stream(min_chunk_size=_READ):
                await in_thread(lambda chunk=chunk: hasher.update(chunk))  # type: ignore[misc]
        except (exceptions.BaseError, OSError) as exc:
            if is_missing(exc):
                return None
            raise store_error(exc, f"read {self.url(relative)}") from None
        return hasher.hexdigest()

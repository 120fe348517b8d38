"""A store and a key prefix in it: the few object operations the destination needs, each with
obstore's errors turned into ours.

Every call goes through obstore's blocking API in a worker thread (:func:`blocking`), never
its async API: an async call completes on one of obstore's Rust threads, which then wakes our
loop through Python; if the loop's program ends meanwhile, that thread meets a finalising
interpreter and the process dies with SIGABRT after its work is done (a short CLI run did,
1 time in 4). A blocking call wakes only the thread that made it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import obstore
from obstore import exceptions
from obstore.store import LocalStore, MemoryStore

from .._threads import wait_out
from ._errors import is_missing, store_error

if TYPE_CHECKING:
    from obstore import BytesStream

T = TypeVar("T")

_READ = 1024 * 1024


async def blocking(call: Callable[[], T]) -> T:
    """``call()`` (a blocking obstore call) in a worker thread, waited out through cancellation.

    Each call gets a limiter of its own: an upload holds its thread until it ends, and must
    never wait for a thread that another upload holds. What bounds the threads is what bounds
    the SDK's transfers.
    """
    return await wait_out(anyio.to_thread.run_sync(call, limiter=anyio.CapacityLimiter(1)))


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
            batches = obstore.list(self.store, self.key(below), chunk_size=1000)
            while batch := await blocking(lambda: next(batches, None)):
                for meta in batch:
                    found[meta["path"][start:]] = meta["size"]
        except Exception as exc:
            raise store_error(exc, f"list {self.url(below)}") from None
        return found

    async def read(self, relative: str) -> bytes:
        key = self.key(relative)
        try:
            return await blocking(lambda: bytes(obstore.get(self.store, key).bytes()))
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
        key = self.key(relative)
        try:
            await blocking(
                lambda: obstore.put(
                    self.store,
                    key,
                    data,
                    attributes=attributes if self.keeps_attributes else None,
                    mode="overwrite" if replace else "create",
                )
            )
        except Exception as exc:
            raise store_error(exc, f"write {self.url(relative)}") from None

    async def delete(self, relatives: list[str]) -> None:
        if not relatives:
            return
        keys = [self.key(r) for r in relatives]
        try:
            await blocking(lambda: obstore.delete(self.store, keys))
        except Exception as exc:
            raise store_error(exc, "delete " + self.shown) from None

    async def attributes(self, relative: str) -> dict[str, Any] | None:
        """The object's attributes (its metadata among them), or None if there is none."""
        key = self.key(relative)
        try:
            result = await blocking(lambda: obstore.get(self.store, key, options={"head": True}))
        except Exception as exc:
            if is_missing(exc):
                return None
            raise store_error(exc, f"read {self.url(relative)}") from None
        return dict(result.attributes)

    async def sha256(self, relative: str) -> str | None:
        """The SHA-256 of the object's bytes, streamed; None if there is no such object."""
        hasher = hashlib.sha256()
        key = self.key(relative)

        def hash_next(chunks: BytesStream) -> bool:
            chunk = next(chunks, None)
            if chunk is not None:
                hasher.update(chunk)
            return chunk is not None

        try:
            chunks = await blocking(
                lambda: obstore.get(self.store, key).stream(min_chunk_size=_READ)
            )
            while await blocking(lambda: hash_next(chunks)):
                pass
        except (exceptions.BaseError, OSError) as exc:
            if is_missing(exc):
                return None
            raise store_error(exc, f"read {self.url(relative)}") from None
        return hasher.hexdigest()

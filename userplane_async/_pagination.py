"""Lazy, page-at-a-time iteration over the API's list endpoints."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from ._convert import structure
from ._errors import ConfigurationError
from ._models import Page, Pagination

T = TypeVar("T")


class AsyncPaginator(Generic[T]):
    """``async for item in paginator`` walks every page lazily; ``pages()`` and ``page(n)`` too.

    Iteration stops when the API says ``hasMore: false``, or on an empty page, so a server
    that keeps saying "more" without giving any cannot loop it forever.
    """

    def __init__(self, fetch: Callable[[int], Awaitable[Page[T]]]) -> None:
        self._fetch = fetch

    async def page(self, number: int) -> Page[T]:
        """Fetch one page (1-based)."""
        if number < 1:
            raise ConfigurationError("page numbers start at 1")
        return await self._fetch(number)

    def pages(self) -> _PageIterator[T]:
        """Iterate over whole pages, fetching each only when it is asked for."""
        return _PageIterator(self._fetch)

    def __aiter__(self) -> _ItemIterator[T]:
        return _ItemIterator(_PageIterator(self._fetch))


class _PageIterator(Generic[T]):
    def __init__(self, fetch: Callable[[int], Awaitable[Page[T]]]) -> None:
        self._fetch = fetch
        self._next = 1
        self._done = False

    def __aiter__(self) -> _PageIterator[T]:
        return self

    async def __anext__(self) -> Page[T]:
        if self._done:
            raise StopAsyncIteration
        page = await self._fetch(self._next)
        self._next += 1
        last = page.pagination.total_pages
        # hasMore decides; an empty page or the stated last page stops a server that lies.
        self._done = (
            not page.pagination.has_more
            or not page.items
            or (last is not None and self._next > last)
        )
        return page


class _ItemIterator(Generic[T]):
    def __init__(self, pages: _PageIterator[T]) -> None:
        self._pages = pages
        self._buffer: deque[T] = deque()

    def __aiter__(self) -> _ItemIterator[T]:
        return self

    async def __anext__(self) -> T:
        while not self._buffer:
            page = await self._pages.__anext__()
            self._buffer.extend(page.items)
        return self._buffer.popleft()


def parse_page(data: dict[str, Any], key: str, item: type[T], path: str) -> Page[T]:
    """Build a :class:`Page` from a list answer whose items sit under ``data[key]``."""
    items = structure(data.get(key), tuple[item, ...], path=f"{path}.{key}")  # type: ignore[valid-type]
    pagination = structure(data.get("pagination"), Pagination, path=f"{path}.pagination")
    return Page(items=items, pagination=pagination)

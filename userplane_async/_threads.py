"""File work in worker threads that no cancellation cuts short.

A thread cannot be stopped, so the task that started it waits for it to end, through any
cancellation, before it touches the file again or lets it go: no thread ever writes to a file
that is gone, and nothing a thread opened is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def wait_out(work: Awaitable[T]) -> T:
    """Await ``work`` to its end, even through cancellation, then let the cancellation go on.

    The anyio shield keeps cancel scopes out; the loop absorbs a plain ``task.cancel()``,
    which no anyio shield stops: the thread behind ``work`` must not outlive its file.
    """
    future = asyncio.ensure_future(work)
    interrupted: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while True:
            try:
                result = await asyncio.shield(future)
                break
            except asyncio.CancelledError as exc:
                if future.cancelled():
                    raise
                interrupted = exc
    if interrupted is not None:
        raise interrupted
    return result


async def open_in_thread(opener: Callable[[], T], close: Callable[[T], object]) -> T:
    """``opener()`` in a thread; if cancelled meanwhile, ``close`` what it opened, then re-raise."""
    opening = asyncio.ensure_future(anyio.to_thread.run_sync(opener))
    try:
        return await wait_out(opening)
    except asyncio.CancelledError:  # opened all the same: nobody else would close it
        if not opening.cancelled() and opening.exception() is None:
            await wait_out(anyio.to_thread.run_sync(close, opening.result()))
        raise


async def in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a thread, waited out through any cancellation."""
    return await wait_out(anyio.to_thread.run_sync(work))

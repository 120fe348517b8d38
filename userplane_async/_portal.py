"""An event loop of its own in a background thread, and calls into it from any other thread.

The blocking client runs every call as a task of this loop (anyio's blocking portal) and waits
for it in the calling thread. A ``KeyboardInterrupt`` that arrives while a thread waits cancels
that task and waits for it to unwind (files closed, slots given back) before it goes on up:
``portal.call`` alone would leave the task running. The calling thread's own event loop, if it
has one (a notebook cell's), plays no part.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import anyio
import anyio.from_thread

from ._errors import ClientClosedError

T = TypeVar("T")

_JOIN_TIMEOUT = 5.0  # seconds for an idle worker thread to end once told to


class _Interrupted(Exception):
    """The end of a task the calling thread cancelled; that thread raises its own exception."""


def _closed() -> ClientClosedError:
    return ClientClosedError("this Userplane client is closed")


def _forked() -> ClientClosedError:
    # A forked child has a copy of the loop's state but not its thread: a call would hang.
    return ClientClosedError(
        "this Userplane client was made in another process (before a fork): "
        "make one in each process"
    )


class _Task(Generic[T]):
    """One call running as a task of the loop, which a waiting thread can cancel."""

    def __init__(
        self, portal: anyio.from_thread.BlockingPortal, fn: Callable[[], Awaitable[T]]
    ) -> None:
        self._portal = portal
        self._fn = fn
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self.future: Future[T] = portal.start_task_soon(self._run)

    async def _run(self) -> T:
        with anyio.CancelScope() as self._scope:
            if self._cancel_requested:  # cancelled before it began
                self._scope.cancel()
            return await self._fn()
        raise _Interrupted

    def _cancel_in_loop(self) -> None:
        self._cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    def wait(self, until: Future[Any] | None = None) -> None:
        """Block until the task ends (or ``until`` is done); an interrupt cancels the task."""
        try:
            wait([self.future] if until is None else [self.future, until], None, FIRST_COMPLETED)
        except BaseException:  # KeyboardInterrupt, or another signal's exception, in this thread
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancel the task and wait until it has unwound (a second interrupt stops the wait)."""
        if not self.future.done():
            with contextlib.suppress(RuntimeError):  # the loop is stopping: it cancels the task
                self._portal.call(self._cancel_in_loop)
            wait([self.future])

    def result(self) -> T:
        """Wait for the task, then return its value or raise its exception."""
        self.wait()
        try:
            return self.future.result()
        except CancelledError:  # the loop stopped under it
            raise ClientClosedError(
                "the Userplane client was closed while this was under way"
            ) from None


class LoopThread:
    """A daemon thread running one event loop, with calls into it from any other thread.

    ``close()`` stops the loop and joins its thread and the worker threads it started.
    Code running on the loop (progress callbacks) cannot call back in: it would wait for itself.
    """

    def __init__(self) -> None:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._thread_id, self._loop = self._portal.call(_loop_identity)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.closed = False

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` on the loop and wait for its result."""
        return self._start(fn).result()

    @contextlib.contextmanager
    def hold(self, cm: AbstractAsyncContextManager[T]) -> Iterator[T]:
        """Enter ``cm`` in a task of the loop, give its value here, and exit it in that task.

        One task for both ends, as anyio's cancel scopes and capacity limiters require. If the
        client closes meanwhile, the loop's end exits ``cm`` and leaving the block is quiet.
        """
        entered: Future[tuple[T, anyio.Event]] = Future()

        async def host() -> None:
            leave = anyio.Event()
            async with cm as value:
                entered.set_result((value, leave))
                await leave.wait()

        task = self._start(host)
        task.wait(until=entered)
        if not entered.done():
            task.result()  # the opening failed: its error
        value, leave = entered.result()
        try:
            yield value
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone, and cm was exited with it
                self._portal.call(leave.set)
            task.wait()
        if not task.future.cancelled():
            task.future.result()  # an error from exiting cm itself

    def close(self, aclose: Callable[[], Awaitable[object]] | None) -> None:
        """Run ``aclose()`` on the loop, then stop it and join its threads; idempotent."""
        self._check_caller()
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if os.getpid() != self._pid:
            return  # the loop is the parent's to stop
        try:
            if aclose is not None:
                self._portal.call(aclose)
        finally:
            # Whatever aclose() did not end (an open stream's host task) is cancelled now.
            with contextlib.suppress(RuntimeError):
                self._portal.call(self._portal.stop, True)
            self._portal_cm.__exit__(None, None, None)  # joins the loop's thread
            self._join_workers()

    def _start(self, fn: Callable[[], Awaitable[T]]) -> _Task[T]:
        self._check_caller()
        if self.closed:
            raise _closed()
        if os.getpid() != self._pid:
            raise _forked()
        try:
            return _Task(self._portal, fn)
        except RuntimeError:  # closed by another thread since the check
            raise _closed() from None

    def _check_caller(self) -> None:
        if threading.get_ident() == self._thread_id:
            raise RuntimeError(
                "a callback of the blocking Userplane client called the client: callbacks run "
                "on the client's own loop thread, which would wait for itself"
            )

    def _join_workers(self) -> None:
        """anyio tells its worker threads to end with the loop but does not wait for them."""
        for thread in threading.enumerate():
            if getattr(thread, "loop", None) is self._loop:
                thread.join(_JOIN_TIMEOUT)


async def _loop_identity() -> tuple[int, asyncio.AbstractEventLoop]:
    return threading.get_ident(), asyncio.get_running_loop()


def iterate(loop: LoopThread, items: AsyncIterator[T]) -> Iterator[T]:
    """The items of an async iterator, each fetched on the loop."""
    while True:
        try:
            yield loop.call(items.__anext__)
        except StopAsyncIteration:
            return

"""The client-side budget every API call passes: sliding windows, plus a shared 429 pause.

The server's window algorithm is undocumented, so the limiter guarantees the strictest reading:
never more than ``limit`` calls in any span of ``seconds``, whenever the server counts them.
A call occupies its slot from the moment it is let through until ``seconds`` after its answer
arrived; the server saw it somewhere in between, so no server-side window can hold more.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs

from ._clock import Clock
from ._errors import BUDGET_SPENT, RateLimitError


def _optional_positive(
    _: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value < 1:  # a zero limit would wait forever
        raise ValueError(f"{attribute.name} must be at least 1, or None for no limit")


@attrs.frozen
class RateLimit:
    """How many API calls the client may make: per minute, per day, or ``None`` for no limit.

    A wait longer than ``max_wait`` seconds (the daily window running out, or a server's long
    ``Retry-After``) is not slept through: calls raise :class:`RateLimitError` at once.
    """

    per_minute: int | None = 120
    per_day: int | None = 10_000
    max_wait: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        for name, limit in (("per_minute", self.per_minute), ("per_day", self.per_day)):
            if limit is not None and limit < 1:  # a zero limit would wait forever
                raise ValueError(f"{name} must be at least 1, or None for no limit")

    def windows(self) -> tuple[tuple[int, float], ...]:
        """The ``(limit, seconds)`` pairs this budget enforces."""
        pairs = ((self.per_minute, 60.0), (self.per_day, 86_400.0))
        return tuple((limit, seconds) for limit, seconds in pairs if limit is not None)


@attrs.define
class _Window:
    limit: int
    seconds: float
    finished: deque[float] = attrs.field(factory=deque)  # answer times still inside the window

    def delay(self, now: float, in_flight: int) -> float | None:
        """Seconds until a slot frees; 0 if one is free; None if all wait on in-flight calls."""
        while self.finished and self.finished[0] + self.seconds <= now:
            self.finished.popleft()
        if len(self.finished) + in_flight < self.limit:
            return 0.0
        if not self.finished:
            return None
        return self.finished[0] + self.seconds - now


class RateLimiter:
    """Admits API calls in FIFO order within every window of a :class:`RateLimit`."""

    def __init__(self, limit: RateLimit | None, clock: Clock) -> None:
        self._limit = limit or RateLimit(per_minute=None, per_day=None)
        self._windows = [_Window(n, s) for n, s in self._limit.windows()]
        self._clock = clock
        self._lock = anyio.Lock()
        self._answered = anyio.Event()
        self._in_flight = 0
        self._paused_until = -math.inf
        self.calls = 0  # API calls let through, retries included

    def pause(self, seconds: float) -> None:
        """Hold back every call of this client for ``seconds`` (after a 429); never shortens."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for budget, then hold a slot for the duration of one API call."""
        async with self._lock:
            await self._wait_for_budget()
            self._in_flight += 1
            self.calls += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            now = self._clock.monotonic()
            for window in self._windows:
                window.finished.append(now)
            self._answered.set()
            self._answered = anyio.Event()

    async def _wait_for_budget(self) -> None:
        while True:
            now = self._clock.monotonic()
            pause = self._paused_until - now
            delays = [w.delay(now, self._in_flight) for w in self._windows]
            if None in delays:
                await self._answered.wait()
                continue
            budget = max((d for d in delays if d is not None), default=0.0)
            wait = max(pause, budget)
            if wait > self._limit.max_wait:
                raise RateLimitError(
                    f"the API budget is spent; the next call is possible in {wait:.0f} s",
                    code=BUDGET_SPENT if budget >= pause else "RATE_LIMITED",
                    retry_after=wait,
                )
            if wait <= 0:
                return
            await self._clock.sleep(wait)

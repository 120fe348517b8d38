"""Time as the SDK sees it: one seam for the rate limiter, retries and the fake's windows.

Production code uses :data:`SYSTEM_CLOCK`. Tests pass a faster or a virtual clock (see
``userplane_async.testing``) to the client and the fake alike, so that both agree on time.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """A source of time and a way to wait for it to pass."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for windows and deadlines)."""

    def time(self) -> float:
        """Seconds since the Unix epoch (for HTTP dates such as ``Retry-After``)."""

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock."""


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()

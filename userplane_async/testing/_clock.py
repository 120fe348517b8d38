"""Clocks for tests: time that runs faster, or only when someone sleeps."""

from __future__ import annotations

import time

import anyio


class ScaledClock:
    """Real time sped up ``factor`` times: with ``factor=1000`` a minute passes in 60 ms.

    Share one instance between the client and the fake so both see the same windows.
    """

    def __init__(self, factor: float = 1000.0) -> None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.factor = factor
        self._real_start = time.monotonic()
        self._epoch_start = time.time()

    def _elapsed(self) -> float:
        return (time.monotonic() - self._real_start) * self.factor

    def monotonic(self) -> float:
        return self._elapsed()

    def time(self) -> float:
        return self._epoch_start + self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(seconds, 0.0) / self.factor)

    def __repr__(self) -> str:
        return f"ScaledClock(factor={self.factor})"


class FakeClock:
    """Virtual time that moves only when a task sleeps; every sleep is recorded.

    Meant for one task at a time (retry and backoff tests): a sleep advances time at once
    and yields to the event loop, so the wait it asked for can be asserted exactly.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = 0.0
        self._epoch = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward without sleeping."""
        self._now += max(seconds, 0.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now})"

"""The in-process budget every API call passes: sliding windows, a 429 pause, an adaptive rate.

The server's window algorithm is undocumented, so the limiter guarantees the strictest reading:
never more than ``limit`` calls in any span of ``seconds``, whenever the server counts them.
A call occupies its slot from the moment it is let through until ``seconds`` after its answer
arrived; the server saw it somewhere in between, so no server-side window can hold more.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import anyio
import attrs

from ._budget import Turn
from ._clock import Clock
from ._errors import BUDGET_SPENT, RateLimitError
from ._models import BudgetStatus

if TYPE_CHECKING:
    from ._budget import BudgetOwner
    from ._retry import RetryPolicy

logger = logging.getLogger("userplane_async")

MINUTE = 60.0
DAY = 86_400.0
#: After a 429 the budget had room for, the per-minute rate drops to this share of itself...
DECREASE = 0.7
#: ...and climbs back by this share of the configured limit per minute (botocore-style AIMD).
RECOVERY = 0.1
#: The rate drops at most once a window: a storm of 429s (a window someone else filled, each
#: retry refused again) lowers it once, not down to nothing.
LOWER_EVERY = MINUTE


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
        pairs = ((self.per_minute, MINUTE), (self.per_day, DAY))
        return tuple((limit, seconds) for limit, seconds in pairs if limit is not None)


@attrs.define
class _Window:
    limit: int
    seconds: float
    finished: deque[float] = attrs.field(factory=deque)  # answer times still inside the window

    def used(self, now: float, in_flight: int) -> int:
        while self.finished and self.finished[0] + self.seconds <= now:
            self.finished.popleft()
        return len(self.finished) + in_flight

    def delay(self, now: float, in_flight: int, limit: int) -> float | None:
        """Seconds until a slot frees; 0 if one is free; None if all wait on in-flight calls."""
        if self.used(now, in_flight) < limit:
            return 0.0
        if not self.finished:
            return None
        return self.finished[0] + self.seconds - now


class Throttle:
    """What 429s teach a budget: a pause for every caller, and a per-minute rate to keep to.

    A 429 arriving while the budget still had room means someone outside the SDK spends the
    same quota (a dashboard, another tool): the rate then drops multiplicatively and climbs
    back linearly, like botocore's adaptive retry mode.
    """

    def __init__(self, per_minute: int | None, clock: Clock) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self.paused_until = -math.inf
        self._strikes = 0  # 429s in a row: the backoff without Retry-After grows with them
        self._floor: float | None = None  # the rate right after the last decrease
        self._lowered_at = -math.inf

    def pause(self, seconds: float) -> None:
        """Hold back every call for ``seconds``; never shortens a pause already set."""
        self.paused_until = max(self.paused_until, self._clock.monotonic() + seconds)

    def rate(self, now: float) -> float | None:
        """The per-minute limit in force at ``now`` (None: no per-minute limit)."""
        if self._per_minute is None or self._floor is None:
            return self._per_minute
        rate = self._floor + self._per_minute * RECOVERY * (now - self._lowered_at) / MINUTE
        if rate >= self._per_minute:
            self._floor = None
            return float(self._per_minute)
        return rate

    def rate_limited(self, retry_after: float | None, policy: RetryPolicy, *, room: bool) -> float:
        """Note a 429; pause for ``retry_after`` or the backoff; lower the rate if ``room``."""
        now = self._clock.monotonic()
        self._strikes += 1
        if retry_after is None:
            seconds = policy.backoff(self._strikes) * policy.wait_scale
        else:
            seconds = retry_after * policy.wait_scale
        self.pause(seconds)
        rate = self.rate(now)
        if room and rate is not None and now - self._lowered_at >= LOWER_EVERY:
            self._floor, self._lowered_at = max(1.0, rate * DECREASE), now
            logger.warning(
                "429 although the API budget had room: someone else spends this user's "
                "quota; keeping to %.0f calls a minute for now",
                self._floor,
            )
        return max(self.paused_until - now, 0.0)

    def answered(self, turn: Turn) -> None:
        if turn.status is not None and not turn.throttled:
            self._strikes = 0


class RateLimiter:
    """Admits API calls in FIFO order within every window of a :class:`RateLimit`.

    ``history`` seeds the windows with answer times of calls made before (on ``clock``).
    """

    def __init__(
        self, limit: RateLimit | None, clock: Clock, *, history: Iterable[float] = ()
    ) -> None:
        self._limit = limit or RateLimit(per_minute=None, per_day=None)
        self._windows = [_Window(n, s, deque(sorted(history))) for n, s in self._limit.windows()]
        self._clock = clock
        self._lock = anyio.Lock()
        self._answered = anyio.Event()
        self._in_flight = 0
        self.throttle = Throttle(self._limit.per_minute, clock)
        self.calls = 0  # API calls let through, retries included

    def pause(self, seconds: float) -> None:
        """Hold back every call of this client for ``seconds`` (after a 429); never shortens."""
        self.throttle.pause(seconds)

    async def rate_limited(self, retry_after: float | None, policy: RetryPolicy) -> float:
        return self.throttle.rate_limited(retry_after, policy, room=True)  # our count is exact

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Turn]:
        """Wait for budget, then hold a slot for the duration of one API call."""
        async with self._lock:
            await self._wait_for_budget()
            self._in_flight += 1
            self.calls += 1
        turn = Turn()
        try:
            yield turn
        finally:
            self._in_flight -= 1
            now = self._clock.monotonic()
            for window in self._windows:
                window.finished.append(now)
            self.throttle.answered(turn)
            self._answered.set()
            self._answered = anyio.Event()

    def _limit_of(self, window: _Window, now: float) -> int:
        rate = self.throttle.rate(now) if window.seconds == MINUTE else None
        return window.limit if rate is None else min(window.limit, max(1, int(rate)))

    async def _wait_for_budget(self) -> None:
        while True:
            now = self._clock.monotonic()
            pause = self.throttle.paused_until - now
            delays = [w.delay(now, self._in_flight, self._limit_of(w, now)) for w in self._windows]
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

    async def status(self) -> BudgetStatus:
        now = self._clock.monotonic()
        used = {w.seconds: w.used(now, self._in_flight) for w in self._windows}
        paused = self.throttle.paused_until - now
        return BudgetStatus(
            shared=False,
            group=None,
            used_last_minute=used.get(MINUTE, 0),
            used_today=used.get(DAY, 0),
            remaining_today=(
                None if self._limit.per_day is None else max(self._limit.per_day - used[DAY], 0)
            ),
            paused_until=wall_time(self._clock, paused) if paused > 0 else None,
            rate_per_minute=self.throttle.rate(now),
            processes=1,
        )

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def wall_time(clock: Clock, seconds_from_now: float) -> datetime:
    """The UTC time ``seconds_from_now`` on ``clock``."""
    return datetime.fromtimestamp(clock.time() + seconds_from_now, tz=timezone.utc)


class LocalBudget:
    """The default budget: each client counts its own calls, in its own process.

    Exact for one process; several processes of one user each spend the user's whole quota,
    so share it through :class:`RedisBudget` there.
    """

    def open(self, owner: BudgetOwner) -> RateLimiter:
        return RateLimiter(owner.rate_limit, owner.clock)

    def __repr__(self) -> str:
        return "LocalBudget()"

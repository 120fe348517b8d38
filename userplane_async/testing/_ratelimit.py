"""The fake API's rate limit: a sliding log of accepted requests per user.

It can also play **foreign traffic**: calls of a user's quota spent outside the SDK (their
dashboard, another tool), evenly spaced, fed into the log just before each request of that
user is decided, so no background task is needed and any clock works.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import defaultdict
from collections.abc import Sequence

import attrs


@attrs.define
class _Foreign:
    every: float  # seconds between two foreign calls
    next_at: float
    accepted: int = 0


class SlidingWindowLimiter:
    """Refuse a request if ``limit`` requests were already accepted in the last ``seconds``.

    Every ``(limit, seconds)`` pair is checked against the same log of acceptance times;
    refused requests are not logged, so they do not count.
    """

    def __init__(self, windows: Sequence[tuple[int, float]]) -> None:
        for limit, seconds in windows:
            if limit < 1 or seconds <= 0:
                raise ValueError("each rate limit needs limit >= 1 and seconds > 0")
        self._windows = tuple(windows)
        self._horizon = max((seconds for _, seconds in windows), default=0.0)
        self._accepted: dict[str, list[float]] = {}
        self._foreign: dict[str, _Foreign] = {}
        self.ours: defaultdict[str, list[float]] = defaultdict(list)  # SDK calls let through

    def foreign_traffic(self, user_id: str, per_minute: float, now: float) -> None:
        """Spend ``per_minute`` calls a minute of the user's quota from ``now`` (0: stop)."""
        if per_minute < 0:
            raise ValueError("per_minute must be >= 0")
        kept = self._foreign.get(user_id)
        every = 60.0 / per_minute if per_minute else math.inf
        self._foreign[user_id] = _Foreign(every, now + every, kept.accepted if kept else 0)

    def foreign_calls(self, user_id: str) -> int:
        """Foreign calls the limit let through so far."""
        foreign = self._foreign.get(user_id)
        return foreign.accepted if foreign else 0

    def acquire(self, user_id: str, now: float) -> bool:
        """Log and allow the request at ``now``, or refuse it without logging it."""
        foreign = self._foreign.get(user_id)
        while foreign is not None and foreign.next_at <= now:
            foreign.accepted += self._take(user_id, foreign.next_at)
            foreign.next_at += foreign.every
        if not self._take(user_id, now):
            return False
        self.ours[user_id].append(now)
        return True

    def _take(self, user_id: str, now: float) -> bool:
        log = self._accepted.setdefault(user_id, [])
        del log[: bisect_right(log, now - self._horizon)]
        for limit, seconds in self._windows:
            if len(log) - bisect_right(log, now - seconds) >= limit:
                return False
        insort(log, now)
        return True

"""The fake API's rate limit: a sliding log of accepted requests per user."""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Sequence


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

    def acquire(self, user_id: str, now: float) -> bool:
        """Log and allow the request at ``now``, or refuse it without logging it."""
        log = self._accepted.setdefault(user_id, [])
        del log[: bisect_right(log, now - self._horizon)]
        for limit, seconds in self._windows:
            if len(log) - bisect_right(log, now - seconds) >= limit:
                return False
        insort(log, now)
        return True

"""Each user's calls against the fake's limits: ours over HTTP, and foreign ones.

Foreign traffic is someone else spending the same user's quota (a dashboard, another tool).
It is simulated lazily, without a background task: before the limiter decides on a call of
that user at ``now``, the foreign calls due up to ``now`` go through the limiter first, each
at its own time, so any clock (virtual, sped up or real) works.
"""

from __future__ import annotations

import math
from bisect import insort

import attrs

from ._ratelimit import SlidingWindowLimiter


@attrs.define
class _Schedule:
    """Foreign calls one ``interval`` apart from ``start`` on (not at it: ``per_minute`` calls
    fall in every minute after it); ``sent`` of them so far."""

    start: float
    interval: float
    sent: int = 0

    def due(self, now: float) -> list[float]:
        """The times of the calls due up to ``now`` not sent yet; they count as sent."""
        times = []
        # Multiplied, not summed, so that thousands of calls do not drift off the schedule.
        while (at := self.start + (self.sent + 1) * self.interval) <= now:
            times.append(at)
            self.sent += 1
        return times


class Quota:
    """Admits calls per user through an optional limiter and logs the ones it accepted."""

    def __init__(self, limiter: SlidingWindowLimiter | None) -> None:
        self._limiter = limiter
        self._accepted: dict[str, list[float]] = {}
        self._foreign: dict[str, list[float]] = {}
        self._schedules: dict[str, _Schedule] = {}

    def admit(self, user_id: str, now: float) -> bool:
        """Decide on one API call of ``user_id`` at ``now``: ``True`` and logged if the limit
        has room, after the foreign calls due by then took theirs."""
        self.settle(user_id, now)
        if not self._take(user_id, now):
            return False
        insort(self._accepted.setdefault(user_id, []), now)
        return True

    @property
    def limited(self) -> bool:
        """Whether there is a limit at all (without one, every call is accepted)."""
        return self._limiter is not None

    def set_foreign(self, user_id: str, per_minute: float, now: float) -> None:
        """From ``now`` on, ``per_minute`` foreign calls a minute for ``user_id`` (0: none)."""
        if not math.isfinite(per_minute) or per_minute < 0:
            raise ValueError(f"per_minute must be a finite number >= 0, not {per_minute!r}")
        self.settle(user_id, now)
        if per_minute == 0:
            self._schedules.pop(user_id, None)
        else:
            self._schedules[user_id] = _Schedule(now, 60.0 / per_minute)

    def settle(self, user_id: str, now: float) -> None:
        """Put the foreign calls due up to ``now`` through the limiter, in order."""
        schedule = self._schedules.get(user_id)
        if schedule is None:
            return
        for at in schedule.due(now):
            if self._take(user_id, at):
                self._foreign.setdefault(user_id, []).append(at)

    def accepted(self, user_id: str) -> list[float]:
        """Arrival times of ``user_id``'s API calls the limit let through, in order."""
        return list(self._accepted.get(user_id, ()))

    def foreign(self, user_id: str) -> list[float]:
        """Times of ``user_id``'s foreign calls the limit let through (settled so far)."""
        return list(self._foreign.get(user_id, ()))

    def _take(self, user_id: str, at: float) -> bool:
        return self._limiter is None or self._limiter.acquire(user_id, at)

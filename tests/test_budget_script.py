"""The budget's Lua script, against an independent model of its windows, on a real server.

Hypothesis draws sequences of calls being admitted and answered. The script reports the
server time it decided at, so the model replays each decision at that very time, and says
whether the call should have been admitted and, if not, how long it should wait.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from userplane_async._redislimiter import SCRIPT

SCALE = 10_000.0  # a minute passes in 6 ms: sequences of a few dozen steps cross windows
LEASE, POLL = 30.0, 0.5
MINUTE, DAY = 60.0, 86_400.0
KEYS = [f"test:{{g}}:{name}" for name in ("minute", "day", "queue", "deadlines", "state", "procs")]


@attrs.define
class Call:
    admitted: float
    answered: float | None = None

    def frees(self, window: float) -> float:
        """When the call's slot in ``window`` frees (leased while it is unanswered)."""
        end = self.admitted + LEASE if self.answered is None else self.answered
        return end + window


@attrs.define
class Model:
    """The rules, written again: strict windows, a token bucket for pacing, FIFO of one."""

    per_minute: int
    per_day: int
    calls: list[Call] = attrs.Factory(list)
    tokens: float | None = None
    tokens_at: float = 0.0

    def decide(self, now: float) -> tuple[bool, float]:
        """Whether a call asking at ``now`` is admitted, else how long it must wait."""
        capacity = max(1, math.ceil(self.per_minute * 0.1))
        tokens = capacity if self.tokens is None else self.tokens
        tokens = min(capacity, tokens + max(now - self.tokens_at, 0.0) * self.per_minute / MINUTE)
        self.tokens, self.tokens_at = tokens, now
        waits = [0.0 if tokens >= 1 else (1 - tokens) * MINUTE / self.per_minute]
        for window, limit in ((MINUTE, self.per_minute), (DAY, self.per_day)):
            frees = sorted(f for c in self.calls if (f := c.frees(window)) > now)
            if len(frees) >= limit:
                first = frees[len(frees) - limit]
                waits.append(POLL if first > now + window else first - now)
        wait = max(waits)
        if wait <= 0:
            self.tokens -= 1
            self.calls.append(Call(now))
            return True, 0.0
        return False, wait


def run(r: redis.Redis, op: str, *args: str | float) -> list[Any]:
    reply: list[Any] = r.eval(SCRIPT, len(KEYS), *KEYS, op, SCALE, "epoch", *args)
    return reply


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as r:
        yield r


steps = st.lists(st.one_of(st.just("ask"), st.integers(0, 30)), min_size=1, max_size=40)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps, per_minute=st.integers(1, 6), per_day=st.integers(1, 12))
def test_script_decides_like_the_model(
    connection: redis.Redis, steps: list[str | int], per_minute: int, per_day: int
) -> None:
    """Each call is admitted exactly when the model admits it, a refused one is told the
    model's wait, and no span of a window ever holds more admitted calls than its limit."""
    connection.delete(*KEYS)
    model = Model(per_minute, per_day)
    in_flight: list[tuple[str, Call]] = []
    for step in steps:
        if step == "ask":
            call_id = secrets.token_hex(4)
            reply = run(
                connection, "acquire", "proc", "", call_id, per_minute, per_day, LEASE, POLL, 1.0
            )
            admitted, ticket, wait, now = bool(reply[0]), reply[1], float(reply[2]), float(reply[5])
            expected, expected_wait = model.decide(now)
            assert admitted == expected, (now, model)
            if admitted:
                in_flight.append((call_id, model.calls[-1]))
            else:
                assert wait == pytest.approx(expected_wait, abs=0.01)
                run(connection, "cancel", ticket)  # the waiter gives up: the queue stays empty
        elif in_flight and isinstance(step, int):
            call_id, call = in_flight.pop(step % len(in_flight))
            call.answered = float(run(connection, "release", call_id, "1")[0])

    for window, limit in ((MINUTE, per_minute), (DAY, per_day)):
        for call in model.calls:  # at each admission, every slot held then, this one included
            held = [c for c in model.calls if c.admitted <= call.admitted < c.frees(window)]
            assert len(held) <= limit

"""When and how long to wait before trying an API call again (stamina's policy, our own code).

Capped exponential backoff with full jitter; bounded attempts and total time; ``Retry-After``
(seconds or an HTTP date) overrides the backoff; after the last attempt the last error is
re-raised as it was. A 429 pauses every caller of the budget through the limiter (the whole
client, or every process sharing a Redis budget), not just one task.
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from ._clock import Clock
from ._errors import (
    BUDGET_SPENT,
    ConnectError,
    RateLimitError,
    ServerError,
    TLSError,
    TransportError,
    UserplaneError,
)

if TYPE_CHECKING:
    from ._budget import Limiter

T = TypeVar("T")

logger = logging.getLogger("userplane_async")


@attrs.frozen
class RetryPolicy:
    """How the client retries 429s, 5xx answers and network failures.

    ``attempts`` counts the first try. ``timeout`` bounds the time from the first try to the
    start of the last one. A ``Retry-After`` longer than ``max_retry_after`` is not slept
    through: the :class:`RateLimitError` is raised at once with its ``retry_after``.
    A 429 with no usable ``Retry-After`` (the real API sends none) says neither when nor how
    long: its window may need up to a minute to free up, so such 429s are retried until
    ``timeout`` runs out, for at most ``rate_limited_attempts`` tries (or ``attempts``, if
    larger), each wait drawn from the same growing backoff.
    ``wait_scale`` multiplies every wait; :meth:`no_wait` sets it to 0 for tests.
    """

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    rate_limited_attempts: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    timeout: float = 300.0
    wait_initial: float = 0.5
    wait_max: float = 30.0
    wait_exp_base: float = 2.0
    max_retry_after: float = 120.0
    wait_scale: float = 1.0

    @classmethod
    def no_wait(cls, attempts: int = 3) -> RetryPolicy:
        """Retry like the real policy, but never wait: for tests."""
        return cls(attempts=attempts, wait_scale=0.0)

    def backoff(self, retry: int) -> float:
        """Full-jitter wait before retry number ``retry`` (1 for the first retry)."""
        try:
            grown = self.wait_initial * self.wait_exp_base ** (retry - 1)
        except OverflowError:  # a long retry series: the cap applies, unless nothing grows
            grown = math.inf if self.wait_initial > 0 else 0.0
        return random.uniform(0.0, min(self.wait_max, grown))  # noqa: S311 - jitter, not cryptography


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), or None.

    ``now`` is the current Unix time. Anything malformed (``soon``, ``-5``, ``1e12``) is None,
    so the caller falls back to its backoff.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)


def retry_delay(
    error: UserplaneError, policy: RetryPolicy, retry: int, *, idempotent: bool
) -> float | None:
    """How long to wait before retrying after ``error``, or None if it must not be retried.

    Only 429 and connection failures are retried for create/update/delete: anything else may
    have reached the server, and doing it twice is worse than failing once.
    """
    if isinstance(error, RateLimitError):
        if error.code == BUDGET_SPENT:  # the client's own daily budget: waiting is no option
            return None
        if error.retry_after is None:
            return policy.backoff(retry) * policy.wait_scale
        if error.retry_after > policy.max_retry_after:
            return None
        return error.retry_after * policy.wait_scale
    if isinstance(error, TLSError):
        return None
    retryable = isinstance(error, ConnectError) or (
        idempotent and isinstance(error, (ServerError, TransportError))
    )
    return policy.backoff(retry) * policy.wait_scale if retryable else None


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    limiter: Limiter,
    what: str,
    idempotent: bool,
) -> T:
    """Run ``attempt`` until it succeeds or ``policy`` says stop; re-raise the last error."""
    started = clock.monotonic()
    for number in itertools.count(1):
        try:
            return await attempt()
        except UserplaneError as error:
            throttled = False
            if isinstance(error, RateLimitError) and error.code != BUDGET_SPENT:
                throttled = True  # every caller of the budget waits this pause out, once
                pause = await limiter.rate_limited(error.retry_after, policy)
                too_long = (error.retry_after or 0.0) > policy.max_retry_after
                delay = None if too_long else pause
            else:
                delay = retry_delay(error, policy, number, idempotent=idempotent)
            limit = _attempts_for(error, policy)
            out_of_time = delay is not None and (
                clock.monotonic() - started + delay > policy.timeout
            )
            if delay is None or number >= limit or out_of_time:
                raise
            logger.info(
                "retrying %s after %s (attempt %d of %d) in %.2f s",
                what,
                _reason(error),
                number + 1,
                limit,
                delay,
            )
            if not throttled:  # a throttled retry waits in the limiter's next slot instead
                await clock.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _attempts_for(error: UserplaneError, policy: RetryPolicy) -> int:
    """How many tries a call may have had when it fails with ``error``."""
    if isinstance(error, RateLimitError) and error.retry_after is None:
        return max(policy.attempts, policy.rate_limited_attempts)
    return policy.attempts


def _reason(error: UserplaneError) -> str:
    status = getattr(error, "status", None)
    code = getattr(error, "code", None)
    if status is not None:
        return f"HTTP {status}" + (f" {code}" if code else "")
    return type(error).__name__

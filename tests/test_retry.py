"""The retry policy: Retry-After parsing, backoff bounds, the retry decision, the retry loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from email.utils import formatdate

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from userplane_async import (
    AuthenticationError,
    ConnectError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    TransportError,
    UserplaneAPIError,
    UserplaneError,
)
from userplane_async._errors import BUDGET_SPENT
from userplane_async._ratelimit import RateLimiter
from userplane_async._retry import call_with_retries, parse_retry_after, retry_delay
from userplane_async.testing._clock import FakeClock

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0  # a fixed Unix time for HTTP-date tests


class FixedBackoff(RetryPolicy):
    """The real policy with a backoff that is always ``wait_initial``, so waits are exact."""

    def backoff(self, retry: int) -> float:
        return self.wait_initial


def _503(n: int = 0) -> ServerError:
    return ServerError(f"unavailable #{n}", status=503, code="SERVICE_UNAVAILABLE")


def _429(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError("slow down", retry_after=retry_after)


def _failing(
    errors: list[UserplaneError], result: str = "ok", clock: FakeClock | None = None
) -> tuple[Callable[[], Awaitable[str]], list[float]]:
    """An attempt that raises ``errors`` one by one, then returns ``result``; and its start times."""
    started: list[float] = []
    pending = list(errors)

    async def attempt() -> str:
        started.append(clock.monotonic() if clock else 0.0)
        if pending:
            raise pending.pop(0)
        return result

    return attempt, started


# --- parse_retry_after -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("0", 0.0, id="zero"),
        pytest.param("2", 2.0, id="seconds"),
        pytest.param("120", 120.0, id="two-minutes"),
        pytest.param(" 7 ", 7.0, id="surrounding-space"),
        pytest.param(formatdate(NOW + 30, usegmt=True), 30.0, id="http-date-future"),
        pytest.param(formatdate(NOW + 3600, usegmt=True), 3600.0, id="http-date-hour"),
        pytest.param(formatdate(NOW - 30, usegmt=True), 0.0, id="http-date-past"),
        pytest.param(formatdate(NOW, usegmt=True), 0.0, id="http-date-now"),
        pytest.param("soon", None, id="word"),
        pytest.param("-5", None, id="negative"),
        pytest.param("+5", None, id="plus-sign"),
        pytest.param("1e12", None, id="exponent"),
        pytest.param("2.5", None, id="fraction"),
        pytest.param("\u0661\u0662", None, id="non-ascii-digits"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param(None, None, id="absent"),
        pytest.param("Wed, 32 Oct 2015 07:28:00 GMT", None, id="impossible-date"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 -0000", None, id="date-without-zone"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After gives seconds from delay-seconds or an HTTP date, and None for anything else."""
    assert parse_retry_after(value, NOW) == expected


# --- backoff ---------------------------------------------------------------------------------


@given(
    wait_initial=st.floats(0.0, 10.0),
    wait_max=st.floats(0.0, 100.0),
    wait_exp_base=st.floats(1.0, 4.0),
    retry=st.integers(1, 5_000),
)
@example(wait_initial=0.5, wait_max=30.0, wait_exp_base=2.0, retry=2_000)
def test_backoff_stays_within_bounds(
    wait_initial: float, wait_max: float, wait_exp_base: float, retry: int
) -> None:
    """The jittered wait lies in [0, min(wait_max, wait_initial * base ** (retry - 1))]."""
    policy = RetryPolicy(wait_initial=wait_initial, wait_max=wait_max, wait_exp_base=wait_exp_base)

    delay = policy.backoff(retry)

    try:
        ceiling = min(wait_max, wait_initial * wait_exp_base ** (retry - 1))
    except OverflowError:  # the exponential is beyond float range, so wait_max is the minimum
        ceiling = wait_max if wait_initial > 0 else 0.0
    assert 0.0 <= delay <= ceiling


def test_backoff_grows_then_caps() -> None:
    """The backoff ceiling doubles per retry until wait_max."""
    policy = RetryPolicy(wait_initial=1.0, wait_max=4.0)

    samples = {retry: [policy.backoff(retry) for _ in range(200)] for retry in (1, 2, 3, 10)}

    assert max(samples[1]) <= 1.0
    assert max(samples[2]) <= 2.0
    assert max(samples[2]) > 1.0
    assert max(samples[10]) <= 4.0
    assert max(samples[10]) > 2.0


def test_attempts_must_be_positive() -> None:
    """A policy with fewer than one attempt is refused."""
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


# --- retry_delay -----------------------------------------------------------------------------

BACKOFF = FixedBackoff(wait_initial=0.75, max_retry_after=60.0)


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "not-idempotent"])
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(_429(), 0.75, id="429-without-retry-after"),
        pytest.param(_429(retry_after=2.0), 2.0, id="429-retry-after"),
        pytest.param(_429(retry_after=60.0), 60.0, id="429-retry-after-at-max"),
        pytest.param(_429(retry_after=61.0), None, id="429-retry-after-above-max"),
        pytest.param(
            RateLimitError("budget", code=BUDGET_SPENT, retry_after=5.0), None, id="client-budget"
        ),
        pytest.param(ConnectError("refused"), 0.75, id="connect-error"),
        pytest.param(AuthenticationError("no", status=401), None, id="401"),
        pytest.param(PermissionDeniedError("no", status=403), None, id="403"),
        pytest.param(NotFoundError("no", status=404), None, id="404"),
        pytest.param(GoneError("no", status=410), None, id="410"),
        pytest.param(UserplaneAPIError("bad", status=400), None, id="400"),
        pytest.param(ResponseFormatError("bad", path="$.data"), None, id="response-format"),
    ],
)
def test_retry_delay_regardless_of_idempotency(
    error: UserplaneError, expected: float | None, idempotent: bool
) -> None:
    """429s and connect errors are retried for every call; 4xx and bad payloads never are."""
    assert retry_delay(error, BACKOFF, 1, idempotent=idempotent) == expected


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_503(), id="503"),
        pytest.param(ServerError("oops", status=500), id="500"),
        pytest.param(ServerError("bad gateway", status=502), id="502"),
        pytest.param(RequestTimeoutError("slow"), id="request-timeout"),
        pytest.param(TransportError("cut short"), id="transport"),
    ],
)
@pytest.mark.parametrize(
    ("idempotent", "expected"),
    [pytest.param(True, 0.75, id="idempotent"), pytest.param(False, None, id="not-idempotent")],
)
def test_retry_delay_only_when_idempotent(
    error: UserplaneError, idempotent: bool, expected: float | None
) -> None:
    """5xx answers, timeouts and broken transfers are retried only for idempotent calls."""
    assert retry_delay(error, BACKOFF, 1, idempotent=idempotent) == expected


def test_retry_delay_uses_backoff_for_the_retry_number() -> None:
    """Without Retry-After, the wait is the policy's backoff for that retry."""
    policy = RetryPolicy(wait_initial=1.0, wait_max=100.0)

    delays = [retry_delay(_503(), policy, 1, idempotent=True) for _ in range(100)]
    later = [retry_delay(_503(), policy, 5, idempotent=True) for _ in range(100)]

    assert all(d is not None and 0.0 <= d <= 1.0 for d in delays)
    assert all(d is not None and 0.0 <= d <= 16.0 for d in later)
    assert any(d is not None and d > 1.0 for d in later)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(_429(), id="429"),
        pytest.param(_429(retry_after=30.0), id="429-retry-after"),
        pytest.param(_503(), id="503"),
        pytest.param(ConnectError("refused"), id="connect"),
        pytest.param(RequestTimeoutError("slow"), id="timeout"),
    ],
)
def test_no_wait_gives_zero_delays(error: UserplaneError) -> None:
    """RetryPolicy.no_wait() still retries, but every delay is zero."""
    policy = RetryPolicy.no_wait()

    assert policy.attempts == 3
    assert retry_delay(error, policy, 2, idempotent=True) == 0.0


def test_no_wait_keeps_the_retry_decision() -> None:
    """no_wait() does not make non-retryable errors retryable."""
    policy = RetryPolicy.no_wait(attempts=7)

    assert policy.attempts == 7
    assert retry_delay(_503(), policy, 1, idempotent=False) is None
    assert retry_delay(NotFoundError("no", status=404), policy, 1, idempotent=True) is None


# --- call_with_retries -----------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> RateLimiter:
    return RateLimiter(None, clock)


@pytest.mark.parametrize("failures", [0, 1, 2, 4])
async def test_succeeds_after_failures(
    failures: int, clock: FakeClock, limiter: RateLimiter
) -> None:
    """A call failing N times and then succeeding is attempted exactly N + 1 times."""
    attempt, started = _failing([_503(n) for n in range(failures)], clock=clock)
    policy = FixedBackoff(attempts=5, wait_initial=1.5)

    result = await call_with_retries(
        attempt, policy=policy, clock=clock, limiter=limiter, what="GET /x", idempotent=True
    )

    assert result == "ok"
    assert len(started) == failures + 1
    assert clock.sleeps == [1.5] * failures
    assert started == [1.5 * n for n in range(failures + 1)]


@pytest.mark.parametrize("attempts", [1, 2, 3, 5])
async def test_reraises_the_last_error_after_attempts(
    attempts: int, clock: FakeClock, limiter: RateLimiter
) -> None:
    """After the last attempt the last error object itself is raised, not a wrapper."""
    errors: list[UserplaneError] = [_503(n) for n in range(10)]
    attempt, started = _failing(errors)
    policy = RetryPolicy(attempts=attempts)

    with pytest.raises(ServerError) as info:
        await call_with_retries(
            attempt, policy=policy, clock=clock, limiter=limiter, what="GET /x", idempotent=True
        )

    assert info.value is errors[attempts - 1]
    assert len(started) == attempts
    assert len(clock.sleeps) == attempts - 1


@pytest.mark.parametrize(
    ("error", "idempotent"),
    [
        pytest.param(NotFoundError("gone", status=404), True, id="404"),
        pytest.param(_503(), False, id="503-not-idempotent"),
        pytest.param(RequestTimeoutError("slow"), False, id="timeout-not-idempotent"),
        pytest.param(_429(retry_after=500.0), True, id="429-retry-after-too-long"),
        pytest.param(
            RateLimitError("spent", code=BUDGET_SPENT, retry_after=1.0), True, id="budget"
        ),
    ],
)
async def test_non_retryable_error_is_raised_at_once(
    error: UserplaneError, idempotent: bool, clock: FakeClock, limiter: RateLimiter
) -> None:
    """An error the policy does not retry is raised after one attempt, without waiting."""
    attempt, started = _failing([error])

    with pytest.raises(UserplaneError) as info:
        await call_with_retries(
            attempt,
            policy=RetryPolicy(),
            clock=clock,
            limiter=limiter,
            what="POST /x",
            idempotent=idempotent,
        )

    assert info.value is error
    assert len(started) == 1
    assert clock.sleeps == []


async def test_many_attempts_end_with_the_last_error(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """A policy with over a thousand attempts and a small wait_max still ends with our error."""
    errors: list[UserplaneError] = [ConnectError(f"refused #{n}") for n in range(1_100)]
    attempt, started = _failing(errors)
    policy = RetryPolicy(attempts=1_100, timeout=1e9, wait_initial=0.001, wait_max=0.01)

    with pytest.raises(ConnectError) as info:
        await call_with_retries(
            attempt, policy=policy, clock=clock, limiter=limiter, what="GET /x", idempotent=True
        )

    assert info.value is errors[-1]
    assert len(started) == 1_100


async def test_connect_error_retried_when_not_idempotent(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """A refused connection is retried even for a create: the request never left."""
    attempt, started = _failing([ConnectError("refused"), ConnectError("refused")])

    result = await call_with_retries(
        attempt,
        policy=FixedBackoff(wait_initial=0.25),
        clock=clock,
        limiter=limiter,
        what="POST /links",
        idempotent=False,
    )

    assert result == "ok"
    assert len(started) == 3
    assert clock.sleeps == [0.25, 0.25]


async def test_stops_when_timeout_would_be_exceeded(clock: FakeClock, limiter: RateLimiter) -> None:
    """No retry starts when its wait would end after the policy's total timeout."""
    errors: list[UserplaneError] = [_503(n) for n in range(10)]
    attempt, started = _failing(errors, clock=clock)
    policy = FixedBackoff(attempts=10, timeout=2.5, wait_initial=1.0)

    with pytest.raises(ServerError) as info:
        await call_with_retries(
            attempt, policy=policy, clock=clock, limiter=limiter, what="GET /x", idempotent=True
        )

    assert started == [0.0, 1.0, 2.0]
    assert info.value is errors[2]
    assert clock.sleeps == [1.0, 1.0]


async def test_timeout_counts_time_spent_in_attempts(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """Time spent inside slow attempts counts against the total timeout."""
    calls = 0

    async def slow_attempt() -> str:
        nonlocal calls
        calls += 1
        clock.advance(4.0)
        raise _503(calls)

    with pytest.raises(ServerError):
        await call_with_retries(
            slow_attempt,
            policy=FixedBackoff(attempts=10, timeout=9.5, wait_initial=1.0),
            clock=clock,
            limiter=limiter,
            what="GET /x",
            idempotent=True,
        )

    assert calls == 2  # 4 s in the call + 1 s wait fit; 9 s + 1 s would end after 9.5 s
    assert clock.sleeps == [1.0]


async def test_rate_limit_pauses_the_limiter(clock: FakeClock, limiter: RateLimiter) -> None:
    """A 429 with retry_after=2 is waited out by the limiter's next slot, not by the retry loop."""
    errors: list[UserplaneError] = [_429(retry_after=2.0)]

    async def attempt() -> str:
        async with limiter.slot():
            if errors:
                raise errors.pop()
            return "ok"

    result = await call_with_retries(
        attempt,
        policy=RetryPolicy(),
        clock=clock,
        limiter=limiter,
        what="GET /x",
        idempotent=True,
    )

    assert result == "ok"
    assert clock.sleeps == [2.0]
    assert limiter.calls == 2


async def test_rate_limit_pause_holds_back_other_callers(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """After a retried 429, any other call through the same limiter also waits the pause out."""
    attempt, _ = _failing([_429(retry_after=3.0)])

    await call_with_retries(
        attempt, policy=RetryPolicy(), clock=clock, limiter=limiter, what="GET /x", idempotent=True
    )
    assert clock.sleeps == []  # the retry loop itself never sleeps for a 429

    async with limiter.slot():
        assert clock.monotonic() == 3.0
    assert clock.sleeps == [3.0]


async def test_rate_limit_retry_after_is_checked_against_timeout(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """Repeated 429s stop once the next Retry-After would pass the total timeout."""
    errors: list[UserplaneError] = [_429(retry_after=2.0) for _ in range(10)]
    starts: list[float] = []

    async def attempt() -> str:
        async with limiter.slot():
            starts.append(clock.monotonic())
            raise errors.pop(0)

    with pytest.raises(RateLimitError):
        await call_with_retries(
            attempt,
            policy=RetryPolicy(attempts=10, timeout=5.0),
            clock=clock,
            limiter=limiter,
            what="GET /x",
            idempotent=True,
        )

    assert starts == [0.0, 2.0, 4.0]


async def test_429s_without_retry_after_get_their_own_attempts(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """429s with no Retry-After are tried rate_limited_attempts times, then the last is raised."""
    errors: list[UserplaneError] = [_429() for _ in range(100)]
    attempt, started = _failing(errors)
    policy = RetryPolicy.no_wait(attempts=3)

    with pytest.raises(RateLimitError) as info:
        await call_with_retries(
            attempt, policy=policy, clock=clock, limiter=limiter, what="GET /x", idempotent=True
        )

    assert len(started) == policy.rate_limited_attempts == 30
    assert info.value is errors[29]


async def test_429s_without_retry_after_stop_at_the_timeout(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """A 429 storm without Retry-After is waited out only while the total timeout has room."""
    errors: list[UserplaneError] = [_429() for _ in range(100)]
    starts: list[float] = []

    async def attempt() -> str:
        async with limiter.slot():
            starts.append(clock.monotonic())
            raise errors.pop(0)

    with pytest.raises(RateLimitError):
        await call_with_retries(
            attempt,
            policy=FixedBackoff(attempts=2, timeout=10.0, wait_initial=3.0),
            clock=clock,
            limiter=limiter,
            what="GET /x",
            idempotent=True,
        )

    assert starts == [0.0, 3.0, 6.0, 9.0]


async def test_other_failures_after_a_429_storm_get_no_extra_attempts(
    clock: FakeClock, limiter: RateLimiter
) -> None:
    """A 503 after more 429s than ``attempts`` is raised at once: only 429s get more tries."""
    errors: list[UserplaneError] = [_429(), _429(), _429(), _503()]
    attempt, started = _failing(errors)

    with pytest.raises(ServerError):
        await call_with_retries(
            attempt,
            policy=RetryPolicy.no_wait(attempts=2),
            clock=clock,
            limiter=limiter,
            what="GET /x",
            idempotent=True,
        )

    assert len(started) == 4


async def test_logs_one_info_record_per_retry(
    clock: FakeClock, limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    """Every retry logs one INFO record naming the reason, the next attempt and the delay."""
    attempt, _ = _failing([_503(), ConnectError("refused")])
    caplog.set_level(logging.INFO, logger="userplane_async")

    await call_with_retries(
        attempt,
        policy=FixedBackoff(attempts=4, wait_initial=1.25),
        clock=clock,
        limiter=limiter,
        what="GET /public/me",
        idempotent=True,
    )

    records = [r for r in caplog.records if r.name == "userplane_async"]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO]
    assert [r.getMessage() for r in records] == [
        "retrying GET /public/me after HTTP 503 SERVICE_UNAVAILABLE (attempt 2 of 4) in 1.25 s",
        "retrying GET /public/me after ConnectError (attempt 3 of 4) in 1.25 s",
    ]


async def test_logs_rate_limit_delay(
    clock: FakeClock, limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    """A retried 429 logs its status, code and the Retry-After delay."""
    attempt, _ = _failing([_429(retry_after=2.0)])
    caplog.set_level(logging.INFO, logger="userplane_async")

    await call_with_retries(
        attempt, policy=RetryPolicy(), clock=clock, limiter=limiter, what="GET /x", idempotent=True
    )

    assert [r.getMessage() for r in caplog.records] == [
        "retrying GET /x after HTTP 429 RATE_LIMITED (attempt 2 of 5) in 2.00 s"
    ]


async def test_no_log_when_not_retrying(
    clock: FakeClock, limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    """A call that fails without a retry, or succeeds at once, logs nothing."""
    caplog.set_level(logging.DEBUG, logger="userplane_async")
    attempt, _ = _failing([NotFoundError("no", status=404)])

    with pytest.raises(NotFoundError):
        await call_with_retries(
            attempt,
            policy=RetryPolicy(),
            clock=clock,
            limiter=limiter,
            what="GET /x",
            idempotent=True,
        )

    assert caplog.records == []


async def test_no_wait_policy_never_advances_time(clock: FakeClock, limiter: RateLimiter) -> None:
    """With RetryPolicy.no_wait() a retried call takes no time on the clock."""
    attempt, started = _failing([_503(), _429(retry_after=30.0)])

    async def through_limiter() -> str:
        async with limiter.slot():
            return await attempt()

    result = await call_with_retries(
        through_limiter,
        policy=RetryPolicy.no_wait(),
        clock=clock,
        limiter=limiter,
        what="GET /x",
        idempotent=True,
    )

    assert result == "ok"
    assert len(started) == 3
    assert clock.monotonic() == 0.0

"""Retries, Retry-After, backoff and the shared rate limiter, against the fake over sockets."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from email.utils import formatdate
from itertools import pairwise

import aiohttp
import anyio
import attrs
import pytest

from userplane_async import (
    AsyncUserplane,
    ConnectError,
    NotFoundError,
    RateLimit,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    Timeout,
)
from userplane_async.testing import FakeClock, FakeUserplane, ScaledClock

pytestmark = pytest.mark.anyio


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[FakeUserplane, FakeClock]]:
    """A fake on virtual time, so waits can be asserted exactly."""
    clock = FakeClock()
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        yield fake, clock


def _client(fake: FakeUserplane, **options: object) -> AsyncUserplane:
    return AsyncUserplane(fake.api_key, base_url=fake.base_url, **options)  # type: ignore[arg-type]


async def test_5xx_burst_then_success(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """Two 503s then an answer: the call succeeds on its third attempt."""
    fake_userplane.script("me", status=503, times=2)
    me = await client.me()
    assert me.user.id == "usr_default"
    assert [r.status for r in fake_userplane.api_requests()] == [503, 503, 200]


async def test_persistent_5xx_gives_up(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """A 503 that never ends raises ServerError after exactly the allowed attempts."""
    fake_userplane.script("me", status=503, times=100)
    with pytest.raises(ServerError) as caught:
        await client.me()
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    assert len(fake_userplane.api_requests()) == client.retry.attempts


async def test_retry_after_seconds_is_honoured(
    clocked: tuple[FakeUserplane, FakeClock],
) -> None:
    """A 429 with Retry-After: 2 delays the retry by exactly 2 s on the shared clock."""
    fake, clock = clocked
    fake.script("me", status=429, retry_after="2")
    async with _client(fake, clock=clock, rate_limit=None) as client:
        await client.me()
    first, second = fake.api_requests()
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time == pytest.approx(2.0)


async def test_retry_after_http_date_is_honoured(
    clocked: tuple[FakeUserplane, FakeClock],
) -> None:
    """A Retry-After HTTP date is waited for until that moment."""
    fake, clock = clocked
    fake.script("me", status=429, retry_after=formatdate(clock.time() + 30, usegmt=True))
    async with _client(fake, clock=clock, rate_limit=None) as client:
        await client.me()
    first, second = fake.api_requests()
    assert 29.0 <= second.time - first.time <= 30.0


@pytest.mark.parametrize("garbage", ["soon", "-5", "1e12", ""])
async def test_garbage_retry_after_falls_back_to_backoff(
    clocked: tuple[FakeUserplane, FakeClock], garbage: str
) -> None:
    """A malformed Retry-After is ignored: the wait is the bounded jittered backoff."""
    fake, clock = clocked
    fake.script("me", status=429, retry_after=garbage)
    policy = RetryPolicy(wait_initial=1.0, wait_max=4.0)
    async with _client(fake, clock=clock, rate_limit=None, retry=policy) as client:
        await client.me()
    first, second = fake.api_requests()
    assert 0.0 <= second.time - first.time <= 1.0


def ceilings(policy: RetryPolicy, retries: int) -> list[float]:
    """The most the policy may wait before each of ``retries`` retries (full jitter below it)."""
    return [
        min(policy.wait_max, policy.wait_initial * policy.wait_exp_base ** (retry - 1))
        for retry in range(1, retries + 1)
    ]


async def gaps_between_retries(
    fake: FakeUserplane, client: AsyncUserplane, *, runs: int, status: int, failures: int
) -> list[list[float]]:
    """Per run of one call through ``failures`` scripted answers: the gaps the fake saw."""
    series = []
    for _ in range(runs):
        fake.clear_requests()
        fake.script("me", status=status, times=failures)
        await client.me()
        seen = fake.api_requests()
        assert [r.status for r in seen] == [status] * failures + [200]
        series.append([later.time - earlier.time for earlier, later in pairwise(seen)])
    return series


def assert_gaps_grow_and_are_capped(series: list[list[float]], limits: list[float]) -> None:
    """No gap passes its ceiling, and each ceiling that grew is used past the one before.

    With full jitter a single gap may be short, so growth is checked across runs: a wait
    drawn below ceiling c(k) exceeds c(k-1) with probability 1 - c(k-1)/c(k), and across
    every run at least one does unless the backoff is zero, flat or shrinking.
    """
    for retry, limit in enumerate(limits):
        column = [gaps[retry] for gaps in series]
        assert min(column) >= 0.0
        assert max(column) <= limit + 1e-9, f"retry {retry + 1} waited past its ceiling"
        if retry and limit > limits[retry - 1]:
            assert max(column) > limits[retry - 1], f"the wait before retry {retry + 1} never grew"


async def test_backoff_grows_and_is_capped(clocked: tuple[FakeUserplane, FakeClock]) -> None:
    """Waits between 5xx retries stay under the doubling ceiling and the cap, and do grow."""
    fake, clock = clocked
    policy = RetryPolicy(attempts=6, wait_initial=1.0, wait_max=7.0)
    runs = 96  # a correct policy fails this by chance with probability < 3 * (4/7) ** 96 ~ 1e-23
    async with _client(fake, clock=clock, rate_limit=None, retry=policy) as client:
        series = await gaps_between_retries(fake, client, runs=runs, status=500, failures=5)
    assert len(clock.sleeps) == 5 * runs
    assert_gaps_grow_and_are_capped(series, ceilings(policy, 5))  # 1, 2, 4, 7, 7 s


async def test_429_storm_without_retry_after_backs_off_growing_and_capped(
    clocked: tuple[FakeUserplane, FakeClock],
) -> None:
    """Eight 429s without Retry-After are outlasted by gaps that grow up to the cap (#3)."""
    fake, clock = clocked
    policy = RetryPolicy()  # 5 attempts for other failures: these 429s need 9
    runs, storm = 64, 8  # growth fails by chance with probability < 6 * (16/30) ** 64 ~ 2e-17
    async with _client(fake, clock=clock, rate_limit=None, retry=policy) as client:
        series = await gaps_between_retries(fake, client, runs=runs, status=429, failures=storm)
    limits = ceilings(policy, storm)  # 0.5, 1, 2, 4, 8, 16, 30, 30 s
    assert_gaps_grow_and_are_capped(series, limits)
    # How long the storm takes to clear: never past the sum of the ceilings (91.5 s), and on
    # average half of it, about 46 s (Hoeffding: outside this band with probability < 1e-13).
    cleared = [sum(gaps) for gaps in series]
    assert max(cleared) <= sum(limits) + 1e-9
    assert 0.25 * sum(limits) <= sum(cleared) / runs <= 0.75 * sum(limits)


async def test_429s_of_a_full_window_are_waited_out() -> None:
    """When other traffic fills the server's minute, 429s without Retry-After wait it out (#3)."""
    clock = FakeClock()
    async with FakeUserplane(clock=clock, rate_limits=((3, 60.0),)) as server:
        async with _client(server, clock=clock, rate_limit=None) as other:
            for _ in range(3):  # the user's other key spends the window at t=0
                await other.me()
        server.clear_requests()
        async with _client(server, clock=clock) as client:  # our budget: 120 a minute
            await client.me()
        seen = server.api_requests()
    *refused, answered = seen
    assert {r.status for r in refused} == {429}
    assert answered.status == 200
    # Nothing got through before the window freed, and the call was not given up on after
    # it: the answer came at most one capped wait (30 s) after the last 429. A correct policy
    # fails this by chance only if 29 jittered waits add up to less than 60 s (about 3e-16).
    assert refused[-1].time < 60.0 <= answered.time <= refused[-1].time + 30.0 + 1e-9
    assert client.api_calls == len(seen) <= RetryPolicy().rate_limited_attempts


async def test_daily_quota_429_raises_at_once(clocked: tuple[FakeUserplane, FakeClock]) -> None:
    """A 429 whose Retry-After is far past the cap raises with retry_after, without sleeping."""
    fake, clock = clocked
    fake.script("me", status=429, retry_after="40000", times=5)
    async with _client(fake, clock=clock, rate_limit=None) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.me()
    assert caught.value.retry_after == 40000
    assert clock.sleeps == []
    assert len(fake.api_requests()) == 1


async def test_writes_are_not_retried_after_5xx(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """A create that failed with 5xx may have happened: it is not sent again."""
    fake_userplane.script("links.create", status=500, times=5)
    with pytest.raises(ServerError):
        await client.links.create("ws_demo", domain_id="dom_demo")
    assert [r.route for r in fake_userplane.api_requests()] == ["links.create"]


async def test_writes_are_retried_after_429(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """A 429 means the write was refused, so it is safe to send it again."""
    fake_userplane.script("recordings.delete", status=429, times=1)
    workspace = "ws_demo"
    recording = await anext(aiter(client.recordings.list(workspace)))
    recording_id = recording.recording_id
    deleted = await client.recordings.delete(workspace, recording_id)
    assert deleted.recording_id == recording_id
    statuses = [r.status for r in fake_userplane.api_requests() if r.route == "recordings.delete"]
    assert statuses == [429, 200]


async def test_connection_refused_is_retried_then_typed() -> None:
    """A closed port gives ConnectError after every attempt was tried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = FakeClock()
    async with AsyncUserplane(
        "uspl_test", base_url=f"http://127.0.0.1:{port}/api/v1", clock=clock
    ) as client:
        with pytest.raises(ConnectError):
            await client.me()
    assert len(clock.sleeps) == client.retry.attempts - 1
    assert client.api_calls == client.retry.attempts


async def test_slow_answer_times_out(fake_userplane: FakeUserplane) -> None:
    """An answer slower than the read timeout raises RequestTimeoutError."""
    fake_userplane.script("me", status=200, delay=0.5, times=3)
    timeout = Timeout(connect=1.0, read=0.05, total=1.0)
    async with _client(
        fake_userplane, timeout=timeout, retry=RetryPolicy.no_wait(attempts=2)
    ) as client:
        with pytest.raises(RequestTimeoutError):
            await client.me()
        assert client.api_calls == 2


async def test_limiter_keeps_a_busy_client_under_the_server_limit() -> None:
    """Forty concurrent calls against a 10-per-minute server draw zero 429s."""
    clock = ScaledClock(factor=600)
    async with FakeUserplane(clock=clock, rate_limits=((10, 60.0),)) as fake:
        limit = RateLimit(per_minute=10, per_day=None, max_wait=600)
        async with (
            _client(fake, clock=clock, rate_limit=limit, retry=RetryPolicy.no_wait()) as client,
            anyio.create_task_group() as tg,
        ):
            for _ in range(40):
                tg.start_soon(client.me)
        assert fake.rate_limited_count == 0
        times = sorted(r.time for r in fake.api_requests())
        assert len(times) == 40
        assert all(
            later - earlier >= 60.0 for earlier, later in zip(times, times[10:], strict=False)
        )


async def test_without_the_limiter_the_same_load_draws_429s() -> None:
    """The control: with the limiter off, the same load is rate limited by the server."""
    clock = ScaledClock(factor=60)  # the 40 calls must land within one minute: 1 s of real time
    async with FakeUserplane(clock=clock, rate_limits=((10, 60.0),)) as fake:
        # One try for 429s too: retried at once, they would get through as the window moves.
        policy = attrs.evolve(RetryPolicy.no_wait(attempts=1), rate_limited_attempts=1)
        limited: list[RateLimitError] = []

        async def call(client: AsyncUserplane) -> None:
            try:
                await client.me()
            except RateLimitError as exc:
                limited.append(exc)

        async with (
            _client(fake, clock=clock, rate_limit=None, retry=policy) as client,
            anyio.create_task_group() as tg,
        ):
            for _ in range(40):
                tg.start_soon(call, client)
        assert limited
        assert fake.rate_limited_count > 0


async def test_one_429_pauses_every_task_once(caplog: pytest.LogCaptureFixture) -> None:
    """After a 429 with Retry-After: 5, no task of the client sends before 5 s have passed."""
    clock = ScaledClock(factor=50)  # 5 s of pause is 100 ms of real time
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        fake.script("me", status=429, retry_after="5")
        paused = anyio.Event()

        class OnRetry(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                paused.set()

        handler = OnRetry(level=logging.INFO)
        logging.getLogger("userplane_async").addHandler(handler)
        caplog.set_level(logging.INFO, logger="userplane_async")
        try:
            async with (
                _client(fake, clock=clock, rate_limit=None) as client,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(client.me)
                await paused.wait()
                for _ in range(9):
                    tg.start_soon(client.me)
        finally:
            logging.getLogger("userplane_async").removeHandler(handler)
    limited, *rest = fake.api_requests()
    assert limited.status == 429
    assert len(rest) == 10
    assert all(r.status == 200 for r in rest)
    # Once, not once per task: nine more pauses in a row would end past 50 s.
    assert all(limited.time + 5.0 <= r.time < limited.time + 30.0 for r in rest)
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 1


async def test_long_429_spares_the_other_calls(clocked: tuple[FakeUserplane, FakeClock]) -> None:
    """After a daily-quota 429, later calls of the client fail at once without a request."""
    fake, clock = clocked
    fake.script("me", status=429, retry_after="40000")
    async with _client(fake, clock=clock, rate_limit=None) as client:
        with pytest.raises(RateLimitError):
            await client.me()
        with pytest.raises(RateLimitError) as caught:
            await client.workspaces.get("ws_demo")
    assert caught.value.retry_after == pytest.approx(40000)
    assert len(fake.api_requests()) == 1
    assert clock.sleeps == []


async def test_user_session_raising_for_status_still_maps_errors(
    fake_userplane: FakeUserplane,
) -> None:
    """A user session with raise_for_status=True does not turn a 404 into a network error."""
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        _client(fake_userplane, session=session) as client,
    ):
        with pytest.raises(NotFoundError):
            await client.recordings.get("ws_demo", "rec_missing")
        assert client.api_calls == 1

"""The client-side limiter: sliding windows, in-flight slots, max_wait, and the 429 pause."""

from __future__ import annotations

import anyio
import pytest

from userplane_async import RateLimit, RateLimitError, RetryPolicy
from userplane_async._errors import BUDGET_SPENT
from userplane_async._ratelimit import RateLimiter
from userplane_async.testing._clock import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _call(limiter: RateLimiter, clock: FakeClock, duration: float = 0.0) -> float:
    """One API call through ``limiter`` taking ``duration``; returns when it was admitted."""
    async with limiter.slot():
        admitted = clock.monotonic()
        clock.advance(duration)
    return admitted


# --- RateLimit -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "windows"),
    [
        pytest.param(RateLimit(), ((120, 60.0), (10_000, 86_400.0)), id="default"),
        pytest.param(RateLimit(per_minute=5, per_day=None), ((5, 60.0),), id="per-minute-only"),
        pytest.param(RateLimit(per_minute=None, per_day=7), ((7, 86_400.0),), id="per-day-only"),
        pytest.param(RateLimit(per_minute=None, per_day=None), (), id="unlimited"),
    ],
)
def test_windows(limit: RateLimit, windows: tuple[tuple[int, float], ...]) -> None:
    """RateLimit.windows() lists the (limit, seconds) pairs that are set."""
    assert limit.windows() == windows


def test_rate_limit_defaults() -> None:
    """The default budget is the API's: 120 a minute, 10,000 a day, waits up to 120 s."""
    assert RateLimit() == RateLimit(per_minute=120, per_day=10_000, max_wait=120.0)


# --- one task --------------------------------------------------------------------------------


async def test_fourth_call_waits_a_minute_after_the_first_answer(clock: FakeClock) -> None:
    """With 3 calls a minute, the 4th is admitted 60 s after the 1st call's answer."""
    limiter = RateLimiter(RateLimit(per_minute=3, per_day=None), clock)

    admitted = []
    for _ in range(3):
        admitted.append(await _call(limiter, clock, duration=1.0))
        clock.advance(9.0)
    admitted.append(await _call(limiter, clock))

    assert admitted == [0.0, 10.0, 20.0, 61.0]
    assert clock.sleeps == [31.0]


async def test_slot_counts_until_seconds_after_release(clock: FakeClock) -> None:
    """A slot is held from admission until `seconds` after its call answered, however long."""
    limiter = RateLimiter(RateLimit(per_minute=1, per_day=None), clock)

    await _call(limiter, clock, duration=45.0)
    second = await _call(limiter, clock)

    assert second == 105.0
    assert clock.sleeps == [60.0]


async def test_windows_keep_sliding(clock: FakeClock) -> None:
    """Calls in a steady stream never exceed the limit in any 60 s span."""
    limiter = RateLimiter(RateLimit(per_minute=2, per_day=None), clock)

    admitted = [await _call(limiter, clock) for _ in range(7)]

    assert admitted == [0.0, 0.0, 60.0, 60.0, 120.0, 120.0, 180.0]


async def test_strictest_window_wins(clock: FakeClock) -> None:
    """With a minute and a day window, a call waits for whichever frees last."""
    limiter = RateLimiter(RateLimit(per_minute=2, per_day=3, max_wait=1e6), clock)

    admitted = [await _call(limiter, clock) for _ in range(4)]

    assert admitted == [0.0, 0.0, 60.0, 86_400.0]


@pytest.mark.parametrize(
    ("limit", "wait"),
    [
        pytest.param(RateLimit(per_minute=1, per_day=None, max_wait=30.0), 60.0, id="minute"),
        pytest.param(RateLimit(per_minute=None, per_day=1), 86_400.0, id="day"),
        pytest.param(RateLimit(per_minute=5, per_day=1, max_wait=3600.0), 86_400.0, id="both"),
    ],
)
async def test_wait_beyond_max_wait_raises_at_once(
    limit: RateLimit, wait: float, clock: FakeClock
) -> None:
    """A budget wait longer than max_wait raises RateLimitError(BUDGET_SPENT) without sleeping."""
    limiter = RateLimiter(limit, clock)
    await _call(limiter, clock)

    with pytest.raises(RateLimitError) as info:
        await _call(limiter, clock)

    assert info.value.code == BUDGET_SPENT
    assert info.value.retry_after == pytest.approx(wait)
    assert clock.sleeps == []
    assert clock.monotonic() == 0.0
    assert limiter.calls == 1


async def test_budget_spent_retry_after_counts_from_now(clock: FakeClock) -> None:
    """retry_after is the time left until a slot frees, not the window's full length."""
    limiter = RateLimiter(RateLimit(per_minute=None, per_day=1), clock)
    await _call(limiter, clock)
    clock.advance(86_000.0)

    with pytest.raises(RateLimitError) as info:
        await _call(limiter, clock)

    assert info.value.retry_after == pytest.approx(400.0)


async def test_wait_of_exactly_max_wait_is_slept(clock: FakeClock) -> None:
    """A budget wait equal to max_wait is waited out, not refused."""
    limiter = RateLimiter(RateLimit(per_minute=1, per_day=None, max_wait=60.0), clock)
    await _call(limiter, clock)

    assert await _call(limiter, clock) == 60.0
    assert clock.sleeps == [60.0]


async def test_no_rate_limit_never_waits(clock: FakeClock) -> None:
    """With rate_limit=None any number of calls is admitted without waiting."""
    limiter = RateLimiter(None, clock)

    for _ in range(1_000):
        await _call(limiter, clock)

    assert clock.sleeps == []
    assert limiter.calls == 1_000


async def test_calls_count_admissions(clock: FakeClock) -> None:
    """`calls` counts every admitted call, failed ones included, but not refused ones."""
    limiter = RateLimiter(RateLimit(per_minute=2, per_day=None, max_wait=10.0), clock)
    assert limiter.calls == 0

    await _call(limiter, clock)
    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("the API call failed")
    with pytest.raises(RateLimitError):
        await _call(limiter, clock)

    assert limiter.calls == 2


async def test_failed_call_still_occupies_its_slot(clock: FakeClock) -> None:
    """A call that raised inside its slot still counts against the window."""
    limiter = RateLimiter(RateLimit(per_minute=1, per_day=None), clock)

    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("the API call failed")

    assert await _call(limiter, clock) == 60.0


# --- pause -----------------------------------------------------------------------------------


async def test_pause_holds_back_the_next_call(clock: FakeClock) -> None:
    """After pause(s), the next call waits s seconds even with no rate limit."""
    limiter = RateLimiter(None, clock)

    limiter.pause(3.0)

    assert await _call(limiter, clock) == 3.0
    assert clock.sleeps == [3.0]
    assert await _call(limiter, clock) == 3.0  # the pause is over


@pytest.mark.parametrize(
    ("first", "advance", "second", "expected_wait"),
    [
        pytest.param(10.0, 0.0, 5.0, 10.0, id="shorter-later-pause"),
        pytest.param(5.0, 0.0, 10.0, 10.0, id="longer-later-pause"),
        pytest.param(10.0, 8.0, 1.0, 2.0, id="short-pause-inside-long"),
        pytest.param(10.0, 8.0, 5.0, 5.0, id="extends-past-old-end"),
        pytest.param(10.0, 0.0, 0.0, 10.0, id="zero-pause"),
    ],
)
async def test_pause_never_shortens(
    first: float, advance: float, second: float, expected_wait: float, clock: FakeClock
) -> None:
    """A later pause only extends an existing pause; it never ends it earlier."""
    limiter = RateLimiter(None, clock)

    limiter.pause(first)
    clock.advance(advance)
    limiter.pause(second)
    await _call(limiter, clock)

    assert clock.sleeps == [expected_wait]


async def test_pause_and_window_wait_do_not_add_up(clock: FakeClock) -> None:
    """A call waits for the later of the pause and the window, not their sum."""
    limiter = RateLimiter(RateLimit(per_minute=1, per_day=None), clock)
    await _call(limiter, clock)

    limiter.pause(20.0)

    assert await _call(limiter, clock) == 60.0


# --- several tasks ---------------------------------------------------------------------------


async def test_in_flight_slots_block_until_a_release(clock: FakeClock) -> None:
    """With limit 2 and two calls in flight, a third waits for a release, then for the window."""
    limiter = RateLimiter(RateLimit(per_minute=2, per_day=None), clock)
    release = [anyio.Event(), anyio.Event()]
    held = [anyio.Event(), anyio.Event()]
    admitted: list[float] = []

    async def hold(n: int) -> None:
        async with limiter.slot():
            held[n].set()
            await release[n].wait()

    async def third() -> None:
        admitted.append(await _call(limiter, clock))

    async with anyio.create_task_group() as tg:
        for n in range(2):
            tg.start_soon(hold, n)
            await held[n].wait()
        tg.start_soon(third)
        await anyio.wait_all_tasks_blocked()
        assert admitted == []  # nothing finished, so no window can say when a slot frees
        assert clock.sleeps == []

        clock.advance(30.0)
        release[0].set()
        await anyio.wait_all_tasks_blocked()
        assert admitted == [90.0]  # 60 s after the first answer at 30 s
        assert clock.sleeps == [60.0]
        release[1].set()

    assert limiter.calls == 3


async def test_one_in_flight_one_finished(clock: FakeClock) -> None:
    """A finished call's slot frees after the window while another call is still in flight."""
    limiter = RateLimiter(RateLimit(per_minute=2, per_day=None), clock)
    release = anyio.Event()
    held = anyio.Event()
    admitted: list[float] = []

    async def hold() -> None:
        async with limiter.slot():
            held.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        await _call(limiter, clock)  # answered at 0 s
        clock.advance(10.0)
        tg.start_soon(hold)
        await held.wait()
        admitted.append(await _call(limiter, clock))
        release.set()

    assert admitted == [60.0]


async def test_many_tasks_never_exceed_the_window(clock: FakeClock) -> None:
    """Tasks sharing a limiter are admitted at most `limit` per window, in FIFO order."""
    limiter = RateLimiter(RateLimit(per_minute=3, per_day=None), clock)
    admitted: list[tuple[float, int]] = []

    async def task(n: int) -> None:
        admitted.append((await _call(limiter, clock), n))

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(task, n)

    times = [t for t, _ in admitted]
    assert times == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 120.0, 120.0]
    assert [n for _, n in admitted] == list(range(8))
    assert limiter.calls == 8


async def test_pause_holds_back_every_task(clock: FakeClock) -> None:
    """One pause delays all tasks once: they are admitted together when it ends."""
    limiter = RateLimiter(None, clock)
    admitted: list[float] = []

    async def task() -> None:
        admitted.append(await _call(limiter, clock))

    limiter.pause(5.0)
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(task)

    assert admitted == [5.0] * 4
    assert clock.sleeps == [5.0]


async def test_cancelled_waiter_does_not_take_a_slot(clock: FakeClock) -> None:
    """A task cancelled while waiting for budget is not counted and frees the queue."""
    limiter = RateLimiter(RateLimit(per_minute=1, per_day=None), clock)
    release = anyio.Event()
    held = anyio.Event()

    async def hold() -> None:
        async with limiter.slot():
            held.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await held.wait()
        async with anyio.create_task_group() as waiters:
            waiters.start_soon(_call, limiter, clock)
            await anyio.wait_all_tasks_blocked()  # the waiter waits for the in-flight call
            waiters.cancel_scope.cancel()
        release.set()

    assert limiter.calls == 1
    assert await _call(limiter, clock) == 60.0


# --- what 429s teach the budget -------------------------------------------------------------


class _TopJitter(RetryPolicy):
    def backoff(self, retry: int) -> float:  # the backoff's ceiling, without the jitter
        return min(self.wait_max, self.wait_initial * self.wait_exp_base ** (retry - 1))


async def test_429s_in_a_row_pause_longer_each_time_until_an_answer(clock: FakeClock) -> None:
    """Without Retry-After, successive 429s pause 1, 2, 4 s; any other answer starts over."""
    limiter = RateLimiter(None, clock)
    policy = _TopJitter(wait_initial=1.0, wait_exp_base=2.0)

    pauses = []
    for _ in range(3):
        pauses.append(await limiter.rate_limited(None, policy))
        clock.advance(pauses[-1])
    async with limiter.slot() as turn:
        turn.status = 200
    after_success = await limiter.rate_limited(None, policy)

    assert pauses == [1.0, 2.0, 4.0]
    assert after_success == 1.0


async def test_retry_after_sets_the_pause(clock: FakeClock) -> None:
    limiter = RateLimiter(None, clock)
    assert await limiter.rate_limited(7.0, RetryPolicy()) == 7.0
    assert (await limiter.status()).paused_until is not None


async def test_a_429_with_room_lowers_the_rate_then_it_climbs_back(clock: FakeClock) -> None:
    """A 429 the count had room for lowers the per-minute rate to 70%, once a window however
    many 429s come; it then climbs back by a tenth of the limit a minute, as status shows."""
    limiter = RateLimiter(RateLimit(per_minute=100, per_day=None), clock)
    policy = RetryPolicy.no_wait()

    await limiter.rate_limited(None, policy)
    await limiter.rate_limited(None, policy)  # same window: no second decrease
    lowered = (await limiter.status()).rate_per_minute
    clock.advance(60.0)
    climbing = (await limiter.status()).rate_per_minute
    clock.advance(600.0)
    recovered = (await limiter.status()).rate_per_minute

    assert lowered == pytest.approx(70.0)
    assert climbing == pytest.approx(80.0)
    assert recovered == 100.0


async def test_the_lowered_rate_is_what_the_limiter_admits(clock: FakeClock) -> None:
    """After a 429 at 10 a minute, the limiter admits 7 calls a minute, not 10."""
    limiter = RateLimiter(RateLimit(per_minute=10, per_day=None), clock)
    await limiter.rate_limited(None, RetryPolicy.no_wait())

    admitted = [await _call(limiter, clock) for _ in range(8)]

    assert admitted[:7] == [0.0] * 7
    assert admitted[7] == 60.0

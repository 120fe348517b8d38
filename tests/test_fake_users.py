"""The fake's users: several keys each, limits counted per user, and foreign traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from userplane_async import AsyncUserplane, RateLimitError, RetryPolicy
from userplane_async.testing import DEFAULT_API_KEY, FakeClock, FakeUserplane, ScaledClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def me(http: aiohttp.ClientSession, fake: FakeUserplane, key: str) -> int:
    """``GET /public/me`` with ``key``; the status."""
    url = URL(fake.base_url + "/public/me")
    async with http.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status


# --- keys_per_user -------------------------------------------------------------------------


def test_one_key_by_default() -> None:
    """Without keys_per_user the default user has just the default key."""
    fake = FakeUserplane()
    assert fake.api_keys == (fake.api_key,) == (DEFAULT_API_KEY,)


def test_keys_per_user_gives_distinct_fake_looking_keys() -> None:
    """keys_per_user=4: api_key first, then three more, each uspl_ + 32 characters."""
    keys = FakeUserplane(keys_per_user=4).api_keys
    assert len(set(keys)) == 4
    assert keys[0] == DEFAULT_API_KEY
    assert keys[1:] == tuple(f"uspl_fake{i:028d}" for i in (1, 2, 3))
    assert all(len(key) == len("uspl_") + 32 for key in keys)
    assert FakeUserplane(keys_per_user=4).api_keys == keys, "deterministic"


def test_a_chosen_api_key_is_first_and_never_repeated() -> None:
    """A custom api_key comes first; the generated ones skip it if it is one of theirs."""
    assert FakeUserplane(api_key="uspl_mine", keys_per_user=2).api_keys == (
        "uspl_mine",
        "uspl_fake" + "0" * 27 + "1",
    )
    taken = "uspl_fake" + "0" * 27 + "1"
    assert FakeUserplane(api_key=taken, keys_per_user=3).api_keys == (
        taken,
        "uspl_fake" + "0" * 27 + "2",
        "uspl_fake" + "0" * 27 + "3",
    )


@pytest.mark.parametrize("count", [0, -1])
def test_keys_per_user_below_one_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="keys_per_user must be at least 1"):
        FakeUserplane(keys_per_user=count)


def test_keys_of_lists_a_users_active_keys_in_order() -> None:
    """keys_of: the keys the API accepts for that user, oldest first; unknown users refused."""
    fake = FakeUserplane()
    fake.add_user("usr_other")
    fake.add_api_key("uspl_b", user_id="usr_other")
    fake.add_api_key("uspl_off", user_id="usr_other", status="disabled")
    fake.add_api_key("uspl_a", user_id="usr_other")
    assert fake.keys_of("usr_other") == ("uspl_b", "uspl_a")
    assert fake.keys_of("usr_default") == fake.api_keys
    with pytest.raises(ValueError, match="unknown user"):
        fake.keys_of("usr_nobody")


async def test_every_key_authenticates_as_the_default_user() -> None:
    """Each of the keys_per_user keys works through the SDK, as the same user."""
    async with FakeUserplane(keys_per_user=3) as fake:
        users = []
        for key in fake.api_keys:
            async with AsyncUserplane(key, base_url=fake.base_url) as client:
                users.append((await client.me()).user.id)
    assert users == ["usr_default"] * 3


# --- limits count per user -----------------------------------------------------------------


async def test_keys_of_one_user_share_one_count(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Three keys of one user, a limit of 3 a minute: one call on each spends it for all."""
    async with FakeUserplane(clock=clock, keys_per_user=3, rate_limits=[(3, 60.0)]) as fake:
        assert [await me(http, fake, key) for key in fake.api_keys] == [200, 200, 200]
        assert [await me(http, fake, key) for key in fake.api_keys] == [429, 429, 429]
        clock.advance(60)
        assert await me(http, fake, fake.api_keys[2]) == 200
        assert fake.rate_limited_count == 3


async def test_users_have_independent_counts(clock: FakeClock, http: aiohttp.ClientSession) -> None:
    """One user spending their limit leaves another user's (and each of their keys') whole."""
    async with FakeUserplane(clock=clock, keys_per_user=2, rate_limits=[(2, 60.0)]) as fake:
        fake.add_user("usr_other")
        fake.add_api_key("uspl_other_1", user_id="usr_other")
        fake.add_api_key("uspl_other_2", user_id="usr_other")
        assert [await me(http, fake, key) for key in fake.api_keys] == [200, 200]
        assert await me(http, fake, fake.api_key) == 429
        others = fake.keys_of("usr_other")
        assert [await me(http, fake, key) for key in others] == [200, 200]
        assert [await me(http, fake, key) for key in others] == [429, 429]
        assert fake.rate_limited_count == 3


# --- the per-user log ----------------------------------------------------------------------


async def test_accepted_api_calls_logs_arrivals_the_limit_let_through(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Per user, the arrival times of calls past the limit: not 429s, bad keys or scripts."""
    async with FakeUserplane(clock=clock, keys_per_user=2, rate_limits=[(2, 60.0)]) as fake:
        fake.add_user("usr_other")
        fake.add_api_key("uspl_other", user_id="usr_other")
        assert await me(http, fake, fake.api_keys[0]) == 200  # t=0
        clock.advance(10)
        assert await me(http, fake, fake.api_keys[1]) == 200  # t=10
        assert await me(http, fake, fake.api_key) == 429
        assert await me(http, fake, "uspl_" + "x" * 32) == 401
        fake.script("me", status=503)
        assert await me(http, fake, "uspl_other") == 503
        assert await me(http, fake, "uspl_other") == 200  # t=10
        clock.advance(50)
        assert await me(http, fake, fake.api_key) == 200  # t=60: the first left the window
        fake.clear_requests()
        assert fake.accepted_api_calls() == [0.0, 10.0, 60.0]
        assert fake.accepted_api_calls("usr_other") == [10.0]
        with pytest.raises(ValueError, match="unknown user"):
            fake.accepted_api_calls("usr_nobody")


async def test_accepted_api_calls_without_a_limit_logs_every_authenticated_call(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """With rate_limits=None nothing is refused, and the log still shows each user's calls."""
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        for _ in range(3):
            assert await me(http, fake, fake.api_key) == 200
            clock.advance(1)
        assert fake.accepted_api_calls() == [0.0, 1.0, 2.0]


async def test_request_records_name_the_user_never_the_key(http: aiohttp.ClientSession) -> None:
    """Each API record carries the authenticated user's ID; unauthenticated ones None."""
    async with FakeUserplane(keys_per_user=2) as fake:
        fake.add_user("usr_other")
        fake.add_api_key("uspl_other", user_id="usr_other")
        for key in (*fake.api_keys, "uspl_other", "uspl_unknown"):
            await me(http, fake, key)
        records = fake.api_requests()
        assert [r.user_id for r in records] == ["usr_default", "usr_default", "usr_other", None]
        for key in fake.api_keys:
            assert key not in repr(records)


# --- foreign traffic -----------------------------------------------------------------------


async def test_foreign_traffic_spends_the_users_quota_outside_the_sdk() -> None:
    """At 10 calls a minute with 6 foreign calls a minute, the SDK's calls have 4 left in the
    first minute; the foreign calls count for the user, not for accepted_api_calls."""
    clock = FakeClock()
    async with FakeUserplane(clock=clock, rate_limits=((10, 60.0),)) as fake:
        fake.foreign_traffic(6)
        clock.advance(60.0)
        async with AsyncUserplane(
            fake.api_key,
            base_url=fake.base_url,
            clock=clock,
            rate_limit=None,
            retry=RetryPolicy(attempts=1, rate_limited_attempts=1),
        ) as client:
            for _ in range(4):
                await client.me()
            with pytest.raises(RateLimitError):
                await client.me()
            fake.foreign_traffic(0)
            clock.advance(3600.0)
            await client.me()  # stopped: nothing foreign was fed meanwhile

    assert fake.foreign_calls() == 6
    assert fake.accepted_api_calls() == [60.0] * 4 + [3660.0]
    assert fake.rate_limited_count == 1


async def test_foreign_traffic_that_the_limit_refuses_is_not_counted() -> None:
    clock = FakeClock()
    async with FakeUserplane(clock=clock, rate_limits=((2, 60.0),)) as fake:
        fake.foreign_traffic(60)  # one a second, against 2 a minute
        clock.advance(30.0)
        async with AsyncUserplane(
            fake.api_key, base_url=fake.base_url, clock=clock, rate_limit=None,
            retry=RetryPolicy(attempts=1, rate_limited_attempts=1),
        ) as client:  # fmt: skip
            with pytest.raises(RateLimitError):
                await client.me()

    assert fake.foreign_calls() == 2
    assert fake.accepted_api_calls() == []


async def test_foreign_traffic_needs_a_known_user_and_a_limit() -> None:
    async with FakeUserplane(rate_limits=None) as fake:
        with pytest.raises(RuntimeError, match="rate_limits"):
            fake.foreign_traffic(5)
    async with FakeUserplane() as fake:
        with pytest.raises(ValueError, match="unknown user"):
            fake.foreign_traffic(5, user_id="usr_nobody")


async def test_sixty_foreign_calls_a_minute_leave_sixty_of_a_limit_of_120(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """60 foreign calls a minute at a limit of 120: after a virtual minute 60 of ours fit."""
    async with FakeUserplane(clock=clock, rate_limits=[(120, 60.0)]) as fake:
        fake.foreign_traffic(60)
        clock.advance(60)  # foreign calls at t=1, 2, ..., 60
        statuses = [await me(http, fake, fake.api_key) for _ in range(120)]
        assert statuses == [200] * 60 + [429] * 60
        assert fake.foreign_calls() == 60
        assert fake.accepted_api_calls() == [60.0] * 60
        everything = fake.accepted_api_calls(include_foreign=True)
        assert everything == [float(t) for t in range(1, 60)] + [60.0] * 61
        assert fake.rate_limited_count == 60, "a refused foreign call is no 429 of ours"


async def test_foreign_calls_meet_a_full_window_like_ours(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Foreign calls meet the same limit: while ours fill the window, none of theirs fits."""
    async with FakeUserplane(clock=clock, rate_limits=[(3, 60.0)]) as fake:
        assert [await me(http, fake, fake.api_key) for _ in range(3)] == [200] * 3  # t=0
        fake.foreign_traffic(2)  # one at t=30, 60, 90, ...
        clock.advance(30)
        assert fake.foreign_calls() == 0, "the one at t=30 met a full window"
        clock.advance(30)  # t=60: ours left the window; the foreign call at 60 fits
        assert fake.foreign_calls() == 1
        assert [await me(http, fake, fake.api_key) for _ in range(3)] == [200, 200, 429]


async def test_foreign_traffic_is_per_user_and_can_change_or_stop(
    clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """A user's foreign traffic leaves others alone; a new rate applies from now, 0 stops it."""
    async with FakeUserplane(clock=clock, rate_limits=[(1000, 60.0)]) as fake:
        fake.add_user("usr_other")
        fake.add_api_key("uspl_other", user_id="usr_other")
        fake.foreign_traffic(6, user_id="usr_other")  # t=10, 20, 30
        clock.advance(35)
        fake.foreign_traffic(60, user_id="usr_other")  # t=36, 37, ..., 40
        clock.advance(5)
        fake.foreign_traffic(0, user_id="usr_other")
        clock.advance(600)
        assert fake.foreign_calls("usr_other") == 3 + 5
        assert fake.foreign_calls() == 0
        assert await me(http, fake, "uspl_other") == 200
        assert fake.accepted_api_calls("usr_other") == [640.0]
        assert fake.accepted_api_calls("usr_other", include_foreign=True)[-7:] == [
            30.0,
            36.0,
            37.0,
            38.0,
            39.0,
            40.0,
            640.0,
        ]


@pytest.mark.parametrize("per_minute", [-1.0, float("nan"), float("inf")])
def test_foreign_traffic_needs_a_rate(per_minute: float) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        FakeUserplane().foreign_traffic(per_minute)


async def test_foreign_traffic_on_a_sped_up_clock(http: aiohttp.ClientSession) -> None:
    """At the full limit the foreign calls leave our calls no room, until they stop."""
    clock = ScaledClock(factor=1000)  # a virtual minute is 60 ms
    async with FakeUserplane(clock=clock, rate_limits=[(120, 60.0)]) as fake:
        fake.foreign_traffic(120)
        await clock.sleep(60)
        assert await me(http, fake, fake.api_key) == 429
        assert fake.foreign_calls() >= 120
        fake.foreign_traffic(0)
        await clock.sleep(60)
        assert await me(http, fake, fake.api_key) == 200


async def test_foreign_traffic_on_the_system_clock(http: aiohttp.ClientSession) -> None:
    """On real time too: one foreign call every 10 µs has spent a limit of 2 by our first call."""
    async with FakeUserplane(rate_limits=[(2, 60.0)]) as fake:
        fake.foreign_traffic(6_000_000)
        assert await me(http, fake, fake.api_key) == 429
        assert fake.foreign_calls() == 2
        assert fake.accepted_api_calls() == []


async def test_sdk_clients_see_foreign_traffic_as_429s(clock: FakeClock) -> None:
    """Through the SDK: two keys of one user plus a dashboard; the dashboard's share is gone."""
    async with FakeUserplane(clock=clock, keys_per_user=2, rate_limits=[(3, 60.0)]) as fake:
        fake.foreign_traffic(2)  # t=30, 60, ...
        clock.advance(30)
        clients = [
            AsyncUserplane(key, base_url=fake.base_url, retry=RetryPolicy.no_wait(attempts=1))
            for key in fake.api_keys
        ]
        async with clients[0] as first, clients[1] as second:
            await first.me()
            await second.me()
            with pytest.raises(RateLimitError):
                await first.me()
        assert fake.foreign_calls() == 1
        assert fake.accepted_api_calls() == [30.0, 30.0]

"""The fake's users: several keys each, limits counted per user, and foreign traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from userplane_async import AsyncUserplane, RateLimitError, RetryPolicy
from userplane_async.testing import DEFAULT_API_KEY, FakeClock, FakeUserplane

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

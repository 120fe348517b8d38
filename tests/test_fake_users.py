"""The fake's users: several keys each, limits counted per user, and foreign traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from userplane_async import AsyncUserplane
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

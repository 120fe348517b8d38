"""Shared fixtures: asyncio only (aiohttp is asyncio-only), a client pointed at the fake."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

from userplane_async import AsyncUserplane, RetryPolicy
from userplane_async.testing import FakeUserplane, RedisServer

# Property tests: quick locally, thorough in CI.
settings.register_profile("fast", max_examples=50)
settings.register_profile("ci", max_examples=300, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "fast")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(fake_userplane: FakeUserplane) -> AsyncIterator[AsyncUserplane]:
    """A client for the fake, retrying without waiting."""
    async with AsyncUserplane(
        fake_userplane.api_key,
        base_url=fake_userplane.base_url,
        retry=RetryPolicy.no_wait(),
    ) as client:
        yield client


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One throwaway valkey-server (or redis-server) for the session's shared-budget tests."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as connection:
        connection.flushall()
    return redis_server.url

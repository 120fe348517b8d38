"""Shared fixtures: asyncio only (aiohttp is asyncio-only), a client pointed at the fake."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

from userplane_async import AsyncUserplane, RetryPolicy
from userplane_async.testing import FakeUserplane, RedisServer, S3Server

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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One throwaway S3-protocol server (moto, in a subprocess) for the session."""
    with S3Server() as server:
        yield server


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket, and the standard AWS variables pointing at the server."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return Bucket(s3_server, s3_server.new_bucket())


class Bucket:
    """One test's bucket on the session's S3 server, and what is in it."""

    def __init__(self, server: S3Server, name: str) -> None:
        self.server = server
        self.name = name
        self.url = f"s3://{name}"

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        return self.server.objects(self.name, prefix)

    def uploads(self) -> list[str]:
        return self.server.uploads(self.name)

    def put(self, key: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=self.name, Key=key, Body=data)

"""Shared fixtures: asyncio only (aiohttp is asyncio-only), a client pointed at the fake."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import settings

from userplane_async import AsyncUserplane, RetryPolicy
from userplane_async.testing import FakeUserplane

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

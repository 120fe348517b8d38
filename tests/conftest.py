"""Shared fixtures: asyncio only (aiohttp is asyncio-only), a client pointed at the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from userplane_async import AsyncUserplane, RetryPolicy
from userplane_async.testing import FakeUserplane


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

"""pytest plugin (entry point ``userplane_async``): the ``fake_userplane`` fixture.

The fixture is for anyio tests (``pytest.mark.anyio`` with an ``anyio_backend`` of
``"asyncio"``). The fake itself is imported only when the fixture runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from userplane_async.testing import FakeUserplane


@pytest.fixture
async def fake_userplane() -> AsyncIterator[FakeUserplane]:
    """A started ``FakeUserplane`` with the demo workspace (``ws_demo``) seeded."""
    from userplane_async.testing import FakeUserplane

    async with FakeUserplane() as fake:
        fake.seed_demo()
        yield fake

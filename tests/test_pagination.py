"""Lists page lazily, never ask for more than the documented maximum, and stop on their own."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from userplane_async import AsyncUserplane, ConfigurationError
from userplane_async.testing import FakeUserplane

pytestmark = pytest.mark.anyio

WS = "ws_pages"


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    return fake_userplane


def _pages_asked(fake: FakeUserplane) -> list[tuple[str, str]]:
    queries = [parse_qs(r.query) for r in fake.api_requests() if r.route == "recordings.list"]
    return [(q["page"][0], q["per_page"][0]) for q in queries]


@pytest.mark.parametrize(("count", "per_page", "pages"), [(0, 20, 1), (45, 20, 3), (40, 20, 2)])
async def test_walks_every_page(
    client: AsyncUserplane, fake: FakeUserplane, count: int, per_page: int, pages: int
) -> None:
    """Every item is yielded once, across as many pages as needed and no more."""
    for n in range(count):
        fake.add_recording(WS, f"rec_{n:03}")
    ids = [r.recording_id async for r in client.recordings.list(WS, per_page=per_page)]
    assert sorted(ids) == [f"rec_{n:03}" for n in range(count)]
    assert _pages_asked(fake) == [(str(p), str(per_page)) for p in range(1, pages + 1)]


async def test_is_lazy(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """Taking the first item fetches only the first page."""
    for n in range(30):
        fake.add_recording(WS, f"rec_{n:03}")
    async for _ in client.recordings.list(WS, per_page=5):
        break
    assert _pages_asked(fake) == [("1", "5")]


async def test_pages_and_single_page(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """Whole pages are reachable, and so is one page by number."""
    for n in range(7):
        fake.add_recording(WS, f"rec_{n}")
    paginator = client.recordings.list(WS, per_page=3)
    sizes = [len(page.items) async for page in paginator.pages()]
    assert sizes == [3, 3, 1]
    third = await paginator.page(3)
    assert third.pagination.page == 3
    assert third.pagination.total == 7
    assert not third.pagination.has_more


@pytest.mark.parametrize(
    ("namespace", "limit"), [("recordings", 20), ("links", 20), ("projects", 10)]
)
async def test_per_page_is_capped(client: AsyncUserplane, namespace: str, limit: int) -> None:
    """A page size above the documented maximum is refused before any call."""
    with pytest.raises(ConfigurationError, match=str(limit)):
        getattr(client, namespace).list(WS, per_page=limit + 1)
    with pytest.raises(ConfigurationError):
        client.workspaces.list(per_page=21)
    assert client.api_calls == 0


async def test_default_page_size_is_the_maximum(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """Lists ask for the largest page the API allows: fewer calls from the budget."""
    fake.add_project(WS, "p1")
    [_ async for _ in client.projects.list(WS)]
    [_ async for _ in client.recordings.list(WS)]
    queries = [parse_qs(r.query) for r in fake.api_requests()]
    assert [q["per_page"] for q in queries] == [["10"], ["20"]]


async def test_server_saying_more_forever_is_stopped(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """An empty page that claims hasMore ends the iteration instead of looping."""
    lying = {
        "message": "ok",
        "data": {
            "workspaceId": WS,
            "recordings": [],
            "pagination": {"page": 1, "perPage": 20, "total": 99, "totalPages": 5, "hasMore": True},
        },
    }
    fake.script("recordings.list", status=200, body=lying, times=1)
    assert [r async for r in client.recordings.list(WS)] == []
    assert len(_pages_asked(fake)) == 1


async def test_stated_last_page_ends_iteration(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """A page that claims more beyond the stated last page does not page on forever."""
    fake.add_recording(WS, "rec_only")
    item = (await client.recordings.get(WS, "rec_only")).recording_id
    page = {
        "data": {
            "recordings": [{"recordingId": item}],
            "pagination": {"page": 1, "perPage": 20, "total": 1, "totalPages": 1, "hasMore": True},
        }
    }
    fake.script("recordings.list", status=200, body=page, times=5)
    assert [r.recording_id async for r in client.recordings.list(WS)] == [item]
    assert len(_pages_asked(fake)) == 1

"""Streams have slots of their own: open viewers never hold up downloads, nor downloads viewers.

The fake runs on a :class:`Gate` clock, so a ``Trickle``'d body sends its first chunk and then
waits for the test to open the gate: a slow object store, and no sleeping in the tests.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from userplane_async import (
    AsyncUserplane,
    ClientClosedError,
    ConfigurationError,
    ResourceStream,
    ResourceUnavailableError,
    RetryPolicy,
    StorageError,
)
from userplane_async.testing import FakeResource, FakeUserplane, S3Error, Trickle

pytestmark = pytest.mark.anyio

WS = "ws_streams"
VIEWED = "rec_viewed"
OTHER = "rec_other"
UNCAPTURED = "rec_uncaptured"
ARCHIVED = "ws_archived"
VIDEO = hashlib.shake_256(b"one video, many viewers").digest(64 * 1024)
OTHER_VIDEO = hashlib.shake_256(b"another video").digest(32 * 1024)
SLOW = Trickle(bytes_per_second=1.0, chunk=4096)  # a chunk, then a pause at the gate


class Gate:
    """The fake's clock: real time, except that every pause waits until the gate opens."""

    def __init__(self) -> None:
        self.pauses = 0
        self._opened = anyio.Event()
        self._paused = anyio.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        self.pauses += 1
        self._paused.set()
        self._paused = anyio.Event()
        await self._opened.wait()

    async def paused(self, count: int) -> None:
        """Wait until ``count`` pauses have begun."""
        while self.pauses < count:
            await self._paused.wait()

    def open(self) -> None:
        self._opened.set()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def fake(gate: Gate) -> AsyncIterator[FakeUserplane]:
    async with FakeUserplane(clock=gate) as fake:
        fake.add_workspace(WS)
        fake.add_recording(WS, VIEWED, resources={"video": FakeResource(VIDEO)})
        fake.add_recording(WS, OTHER, resources={"video": FakeResource(OTHER_VIDEO)})
        fake.add_recording(WS, UNCAPTURED, resources={"video": FakeResource(captured=False)})
        fake.add_workspace(ARCHIVED)
        for n in range(6):
            fake.add_recording(ARCHIVED, f"rec_{n}")  # five small generated resources each
        yield fake


@asynccontextmanager
async def client_for(fake: FakeUserplane, **options: Any) -> AsyncIterator[AsyncUserplane]:
    async with AsyncUserplane(
        fake.api_key, base_url=fake.base_url, retry=RetryPolicy.no_wait(), **options
    ) as client:
        yield client


def stream(
    client: AsyncUserplane, recording_id: str = VIEWED
) -> AbstractAsyncContextManager[ResourceStream]:
    return client.recordings.stream(WS, recording_id, "video")


async def read_all(body: ResourceStream) -> bytes:
    return b"".join([chunk async for chunk in body])


async def meanwhile(client: AsyncUserplane) -> None:
    """Five API calls in a row: time for a task that is not waiting to get its first bytes."""
    for _ in range(5):
        await client.me()


async def settled(predicate: Callable[[], bool]) -> None:
    """Let the in-process fake (it shares our event loop) catch up: bounded, no sleeping."""
    with anyio.fail_after(5):
        while not predicate():
            await anyio.lowlevel.checkpoint()


def files_in(directory: Path) -> list[Path]:
    return list(directory.rglob("*"))


def resolves(fake: FakeUserplane) -> int:
    """URLs resolved for the viewed video."""
    return sum(r.route == "recordings.resource" and VIEWED in r.path for r in fake.api_requests())


class Viewer:
    """Holds a stream of the viewed video open after its first bytes, until told to leave."""

    def __init__(self, client: AsyncUserplane) -> None:
        self._client = client
        self.open = anyio.Event()
        self.leave = anyio.Event()

    async def watch(self) -> None:
        async with stream(self._client) as body:
            await anext(aiter(body))
            self.open.set()
            await self.leave.wait()


async def test_fifty_slow_viewers_while_an_archive_runs(
    fake: FakeUserplane, gate: Gate, tmp_path: Path
) -> None:
    """50 viewers of one client get their first bytes at once; an archive runs meanwhile."""
    fake.script_storage(SLOW, times=50, recording_id=VIEWED)
    started: list[bytes] = []
    received: list[bytes] = []
    all_started = anyio.Event()

    async def view(client: AsyncUserplane) -> None:
        async with stream(client) as body:
            chunks = aiter(body)
            first = await anext(chunks)
            started.append(first)
            if len(started) == 50:
                all_started.set()
            rest = [chunk async for chunk in chunks]  # trickles in once the gate opens
        received.append(b"".join([first, *rest]))

    async with client_for(fake) as client:  # the defaults: concurrency=8, stream_concurrency=100
        with anyio.fail_after(10):
            async with anyio.create_task_group() as viewers:
                for _ in range(50):
                    viewers.start_soon(view, client)
                await all_started.wait()  # while none has finished: none waited for another
                await gate.paused(50)  # and the store is holding back the rest of every body
                report = await client.archive(ARCHIVED, tmp_path)
                assert (report.ok, report.counts) == (True, {"downloaded": 30})
                assert received == []  # every stream is still open, mid-body
                gate.open()
    assert received == [VIDEO] * 50


async def test_a_stream_past_the_limit_waits_for_a_slot(fake: FakeUserplane) -> None:
    """With stream_concurrency=2 a third stream waits, unresolved, until one of two closes."""
    async with client_for(fake, stream_concurrency=2) as client:
        first, second, third = Viewer(client), Viewer(client), Viewer(client)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(first.watch)
                tasks.start_soon(second.watch)
                await first.open.wait()
                await second.open.wait()
                tasks.start_soon(third.watch)
                await meanwhile(client)
                assert not third.open.is_set()
                assert resolves(fake) == 2  # no URL is resolved before there is a slot for it
                second.leave.set()
                await third.open.wait()
                first.leave.set()
                third.leave.set()


async def test_a_task_started_inside_a_stream_takes_its_own_slot(fake: FakeUserplane) -> None:
    """Only the task holding a stream slot shares it; a task it starts waits for another."""
    async with client_for(fake, stream_concurrency=1) as client:
        inner = Viewer(client)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                async with stream(client, OTHER) as outer:
                    tasks.start_soon(inner.watch)
                    await meanwhile(client)
                    assert not inner.open.is_set()
                    assert await read_all(outer) == OTHER_VIDEO
                await inner.open.wait()  # with the slot outer gave back
                inner.leave.set()


async def test_a_stream_and_a_download_inside_a_stream(fake: FakeUserplane, tmp_path: Path) -> None:
    """At one slot each, a stream opened in a stream's block shares its slot, and a download
    in both takes a download slot: nothing waits for itself."""
    async with client_for(fake, concurrency=1, stream_concurrency=1) as client:
        with anyio.fail_after(5):
            async with stream(client) as outer:
                async with stream(client, OTHER) as inner:
                    result = await client.recordings.download(WS, OTHER, "video", tmp_path)
                    assert await read_all(inner) == OTHER_VIDEO
                assert await read_all(outer) == VIDEO
            async with stream(client) as again:  # the shared slot was given back, once
                assert await read_all(again) == VIDEO
    assert result.path.read_bytes() == OTHER_VIDEO


async def test_downloads_never_wait_for_streams(fake: FakeUserplane, tmp_path: Path) -> None:
    """At one slot each, a download completes while another task holds a stream open."""
    async with client_for(fake, concurrency=1, stream_concurrency=1) as client:
        viewer = Viewer(client)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(viewer.watch)
                await viewer.open.wait()
                result = await client.recordings.download(WS, OTHER, "video", tmp_path)
                viewer.leave.set()
    assert result.path.read_bytes() == OTHER_VIDEO


async def test_streams_never_wait_for_downloads(
    fake: FakeUserplane, gate: Gate, tmp_path: Path
) -> None:
    """At one slot each, a stream is read whole while a slow download holds its slot."""
    fake.script_storage(SLOW, recording_id=VIEWED)
    async with client_for(fake, concurrency=1, stream_concurrency=1) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(client.recordings.download, WS, VIEWED, "video", tmp_path)
                await gate.paused(1)  # the download is mid-body, in its slot
                async with stream(client, OTHER) as body:
                    assert await read_all(body) == OTHER_VIDEO
                gate.open()
    assert (tmp_path / "video.webm").read_bytes() == VIDEO


async def raise_in_the_block(client: AsyncUserplane, fake: FakeUserplane) -> None:
    async def handler() -> None:
        async with stream(client) as body:
            await anext(aiter(body))
            raise LookupError("the handler failed")

    with pytest.raises(LookupError):
        await handler()


async def cancel_in_the_block(client: AsyncUserplane, fake: FakeUserplane) -> None:
    with anyio.CancelScope() as scope:
        async with stream(client) as body:
            await anext(aiter(body))
            scope.cancel()
            await anyio.lowlevel.checkpoint()
    assert scope.cancelled_caught


async def leave_early(client: AsyncUserplane, fake: FakeUserplane) -> None:
    async with stream(client) as body:
        await anext(aiter(body))


async def fail_to_resolve(client: AsyncUserplane, fake: FakeUserplane) -> None:
    with pytest.raises(ResourceUnavailableError):
        async with stream(client, UNCAPTURED):
            pass


async def fail_at_the_store(client: AsyncUserplane, fake: FakeUserplane) -> None:
    fake.script_storage(S3Error(403, "AccessDenied", "Access Denied"))
    with pytest.raises(StorageError):
        async with stream(client):
            pass


@pytest.mark.parametrize(
    "end",
    [
        raise_in_the_block,
        cancel_in_the_block,
        leave_early,
        fail_to_resolve,
        fail_at_the_store,
    ],
)
async def test_the_slot_is_given_back_however_the_stream_ends(
    fake: FakeUserplane, end: Callable[[AsyncUserplane, FakeUserplane], Awaitable[None]]
) -> None:
    """At stream_concurrency=1 the next stream opens at once, whichever way the last ended."""
    async with client_for(fake, stream_concurrency=1) as client:
        with anyio.fail_after(5):
            await end(client, fake)
            async with stream(client) as body:
                assert await read_all(body) == VIDEO


async def test_a_stream_cancelled_while_it_waits_takes_no_slot(fake: FakeUserplane) -> None:
    """Cancelling a stream that waits for a slot leaves the slots as they were."""
    async with client_for(fake, stream_concurrency=1) as client:
        holder = Viewer(client)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(holder.watch)
                await holder.open.wait()
                with anyio.CancelScope() as waiting:
                    async with anyio.create_task_group() as waiter:
                        waiter.start_soon(leave_early, client, fake)
                        await meanwhile(client)
                        waiting.cancel()
                holder.leave.set()
            async with stream(client) as body:
                assert await read_all(body) == VIDEO
        assert resolves(fake) == 2  # the holder's and the last: the waiter never resolved


async def test_closing_the_client_ends_every_stream_at_once(
    fake: FakeUserplane, gate: Gate, tmp_path: Path
) -> None:
    """aclose() ends open streams mid-body, a stream waiting for a slot and a download."""
    fake.script_storage(SLOW, times=2, recording_id=VIEWED)
    fake.script_storage(SLOW, recording_id=OTHER)
    outcomes: list[str] = []

    async def run(transfer: Callable[[], Awaitable[object]]) -> None:
        try:
            await transfer()
        except ClientClosedError:
            outcomes.append("closed")

    async def view() -> None:
        async with stream(client) as body:
            await read_all(body)

    client = AsyncUserplane(fake.api_key, base_url=fake.base_url, stream_concurrency=2)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, view)
            tasks.start_soon(run, view)
            tasks.start_soon(run, lambda: client.recordings.download(WS, OTHER, "video", tmp_path))
            await gate.paused(3)  # both streams and the download are mid-body
            tasks.start_soon(run, view)  # and this one waits for a slot
            await meanwhile(client)
            await client.aclose()
    assert outcomes == ["closed"] * 4
    assert files_in(tmp_path) == []  # no temp file left by the download
    gate.open()
    await settled(lambda: len(fake.storage_requests()) == 3)
    assert [r.status for r in fake.storage_requests()] == [0, 0, 0]  # we hung up on all three
    with pytest.raises(ClientClosedError):
        async with stream(client):
            pass


def test_stream_concurrency_defaults_to_a_hundred() -> None:
    """Without the option a client has 100 stream slots beside its 8 download slots."""
    client = AsyncUserplane("uspl_x")
    assert (client.concurrency, client.stream_concurrency) == (8, 100)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "100"])
def test_stream_concurrency_must_be_positive(value: object) -> None:
    """A nonsensical stream_concurrency is refused at construction."""
    with pytest.raises(ConfigurationError, match="stream_concurrency"):
        AsyncUserplane("uspl_x", stream_concurrency=value)  # type: ignore[arg-type]

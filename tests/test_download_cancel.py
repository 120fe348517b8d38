"""Cancelling a download or a stream at each of its await points (fault matrix #17, #32).

Wherever the cancellation lands, no temp file remains, a final file exists only if it is
complete and identical, the call returns promptly, and the same client (one connection, one
storage slot) serves the next download: nothing half-read went back to the pool.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from userplane_async import AsyncUserplane, DownloadResult, RetryPolicy, Timeout
from userplane_async.testing import (
    FakeResource,
    FakeUserplane,
    RequestRecord,
    StallAfter,
    Trickle,
)

pytestmark = pytest.mark.anyio

WS = "ws_cancel"
REC_BIG = "rec_big"
REC_SMALL = "rec_small"
BIG = hashlib.shake_256(b"cancel me mid-way").digest(1_600_000)  # more than one write batch
SMALL = hashlib.shake_256(b"the next download").digest(50_000)
MIB = 1024 * 1024


def seed(fake: FakeUserplane) -> FakeUserplane:
    fake.add_workspace(WS)
    fake.add_recording(WS, REC_BIG, resources={"video": FakeResource(BIG)})
    fake.add_recording(WS, REC_SMALL, resources={"video": FakeResource(SMALL)})
    return fake


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    return seed(fake_userplane)


@asynccontextmanager
async def one_slot_client(fake: FakeUserplane, **options: Any) -> AsyncIterator[AsyncUserplane]:
    """A client with a single storage slot and connection: anything leaked blocks the next call."""
    options.setdefault("retry", RetryPolicy.no_wait())
    async with AsyncUserplane(
        fake.api_key, base_url=fake.base_url, concurrency=1, **options
    ) as client:
        yield client


@pytest.fixture
async def client(fake: FakeUserplane) -> AsyncIterator[AsyncUserplane]:
    async with one_slot_client(fake) as client:
        yield client


class GateClock:
    """Real time, except that a positive sleep announces itself and then lasts until cancelled."""

    def __init__(self) -> None:
        self.sleeping = anyio.Event()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        self.sleeps.append(seconds)
        self.sleeping.set()
        await anyio.sleep_forever()


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def storage_of(fake: FakeUserplane, rec: str) -> list[RequestRecord]:
    return [r for r in fake.storage_requests() if f"/{rec}/" in r.path]


def resolves_of(fake: FakeUserplane, rec: str) -> list[RequestRecord]:
    return [r for r in fake.api_requests() if r.route == "recordings.resource" and rec in r.path]


async def settled(predicate: Callable[[], bool]) -> None:
    """Let the in-process fake (it shares our event loop) catch up: bounded, no sleeping."""
    with anyio.fail_after(5):
        for _ in range(100_000):
            if predicate():
                return
            await anyio.lowlevel.checkpoint()
    raise AssertionError("the fake never got there")


async def next_download_works(client: AsyncUserplane, dest: Path) -> None:
    """The same client downloads another object promptly: its slot and pool are intact."""
    with anyio.fail_after(5):
        result = await client.recordings.download(WS, REC_SMALL, "video", dest / "next")
    assert result.path.read_bytes() == SMALL
    assert temp_files(dest) == []


def assert_whole_or_nothing(dest: Path, result: DownloadResult | None) -> None:
    """No temp file; the final file, if any, is the whole object."""
    assert temp_files(dest) == []
    final = dest / "video.webm"
    if result is None:
        assert not final.exists()
    else:
        assert final.read_bytes() == BIG


async def test_cancel_while_waiting_for_the_storage_slot(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A download cancelled while another task holds the only storage slot leaves nothing behind."""
    # A stalled download holds the only slot (a stream would not: streams have slots of their own).
    fake.script_storage(StallAfter(), recording_id=REC_SMALL)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.recordings.download, WS, REC_SMALL, "video", tmp_path / "held")
            await settled(lambda: bool(resolves_of(fake, REC_SMALL)))  # resolved in its slot
            with anyio.move_on_after(0.3) as scope:
                await client.recordings.download(WS, REC_BIG, "video", tmp_path)
            tg.cancel_scope.cancel()
    assert scope.cancelled_caught
    # The slot comes before the URL: nothing was resolved (no API call spent) or fetched.
    assert resolves_of(fake, REC_BIG) == []
    assert storage_of(fake, REC_BIG) == []
    assert_whole_or_nothing(tmp_path, None)
    await next_download_works(client, tmp_path)


async def test_cancel_while_waiting_for_headers(tmp_path: Path) -> None:
    """A download cancelled after its request reached storage, before any answer, cleans up."""
    clock = GateClock()
    async with (
        FakeUserplane(clock=clock, rate_limits=None) as fake,
        one_slot_client(seed(fake)) as client,
    ):
        fake.script("storage.get", status=200, delay=1.0)  # the fake holds the answer back
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(5):
                with anyio.CancelScope() as scope:
                    tg.start_soon(clock.sleeping.wait)
                    tg.start_soon(cancel_when, clock.sleeping, scope)
                    await client.recordings.download(WS, REC_BIG, "video", tmp_path)
        assert scope.cancelled_caught
        await settled(lambda: len(storage_of(fake, REC_BIG)) == 1)
        assert storage_of(fake, REC_BIG)[0].status == 0  # never answered
        assert_whole_or_nothing(tmp_path, None)
        await next_download_works(client, tmp_path)


async def cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def test_cancel_after_headers(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A download cancelled while the body stalls right after the headers cleans up (#17, #32)."""
    fake.script_storage(StallAfter(0))
    with anyio.fail_after(5), anyio.move_on_after(0.3) as scope:
        await client.recordings.download(WS, REC_BIG, "video", tmp_path)
    assert scope.cancelled_caught
    await settled(lambda: len(storage_of(fake, REC_BIG)) == 1)
    [stalled] = storage_of(fake, REC_BIG)
    assert (stalled.fault, stalled.status) == (StallAfter(0), 0)
    assert_whole_or_nothing(tmp_path, None)
    await next_download_works(client, tmp_path)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(StallAfter(MIB + 200_000), id="stalled"),
        pytest.param(Trickle(bytes_per_second=256 * 1024 / 0.05, chunk=256 * 1024), id="trickle"),
    ],
)
async def test_cancel_mid_body(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, fault: StallAfter | Trickle
) -> None:
    """A download cancelled with a MiB already in its temp file removes that file (#32)."""
    fake.script_storage(fault)
    seen: list[list[Path]] = []

    def cancel(done: int, total: int | None) -> None:
        seen.append(temp_files(tmp_path))
        scope.cancel()

    with anyio.fail_after(5), anyio.CancelScope() as scope:
        await client.recordings.download(WS, REC_BIG, "video", tmp_path, progress=cancel)
    assert scope.cancelled_caught
    assert len(seen[0]) == 1  # the temp file existed when the cancel came
    assert_whole_or_nothing(tmp_path, None)
    await next_download_works(client, tmp_path)


async def test_cancel_on_the_final_progress_report(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A cancel on the last progress report, right before the rename, gives all or nothing."""
    result: DownloadResult | None = None

    def cancel_at_the_end(done: int, total: int | None) -> None:
        if done == total:
            scope.cancel()

    with anyio.fail_after(5), anyio.CancelScope() as scope:
        result = await client.recordings.download(
            WS, REC_BIG, "video", tmp_path, progress=cancel_at_the_end
        )
    assert scope.cancel_called
    assert_whole_or_nothing(tmp_path, result)
    await next_download_works(client, tmp_path)


@pytest.mark.parametrize(
    ("name", "when"),
    [
        pytest.param("open", lambda *args: bool(args[1] & os.O_EXCL), id="creating-the-temp-file"),
        pytest.param("fsync", lambda *args: True, id="fsync"),
        pytest.param("link", lambda *args: True, id="rename"),
    ],
)
async def test_cancel_during_a_file_operation(
    client: AsyncUserplane,
    fake: FakeUserplane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    when: Callable[..., bool],
) -> None:
    """A cancel that arrives while a file operation runs in its thread gives all or nothing."""
    token = anyio.lowlevel.current_token()
    real = getattr(os, name)
    scope = anyio.CancelScope()

    def cancel_then_run(*args: Any, **kwargs: Any) -> Any:
        if when(*args) and not scope.cancel_called:  # the cancel lands mid-operation
            anyio.from_thread.run_sync(scope.cancel, token=token)
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, cancel_then_run)
    result: DownloadResult | None = None
    with anyio.fail_after(5), scope:
        result = await client.recordings.download(WS, REC_BIG, "video", tmp_path)
    monkeypatch.undo()
    assert scope.cancel_called
    assert_whole_or_nothing(tmp_path, result)
    await next_download_works(client, tmp_path)


async def test_cancel_during_the_backoff(fake: FakeUserplane, tmp_path: Path) -> None:
    """A download cancelled while it waits to retry a break removes its partial file (#32)."""
    clock = GateClock()
    fake.script_storage(StallAfter(MIB + 150_000))  # all of it is read before the read timeout
    async with one_slot_client(
        fake,
        clock=clock,
        rate_limit=None,
        retry=RetryPolicy(attempts=3),
        timeout=Timeout(connect=5, read=0.2, total=5),
    ) as client:
        partial: list[int] = []
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:

                async def cancel_in_backoff() -> None:
                    await clock.sleeping.wait()
                    partial.extend(p.stat().st_size for p in temp_files(tmp_path))
                    scope.cancel()

                tg.start_soon(cancel_in_backoff)
                with anyio.CancelScope() as scope:
                    await client.recordings.download(WS, REC_BIG, "video", tmp_path)
        assert scope.cancelled_caught
        assert len(clock.sleeps) == 1
        assert len(partial) == 1
        assert partial[0] >= MIB  # a MiB was on disk while it waited
        assert len(storage_of(fake, REC_BIG)) == 1
        assert_whole_or_nothing(tmp_path, None)
        await next_download_works(client, tmp_path)


# --- stream(): the storage response is closed however the block ends ------------------------


async def read_until(body: AsyncIterator[bytes], count: int) -> int:
    got = 0
    async for chunk in body:
        got += len(chunk)
        if got >= count:
            break
    return got


async def stalled_request_ended(fake: FakeUserplane) -> None:
    """The fake logs the stalled answer as not completed once the client has hung up."""
    await settled(lambda: len(storage_of(fake, REC_BIG)) == 1)
    [record] = storage_of(fake, REC_BIG)
    assert (record.fault, record.status) == (StallAfter(100_000), 0)


async def test_stream_closed_on_early_exit(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """Leaving a stream block before the end closes the storage response."""
    fake.script_storage(StallAfter(100_000))
    with anyio.fail_after(5):
        async with client.recordings.stream(WS, REC_BIG, "video") as body:
            assert await read_until(body.__aiter__(), 100_000) == 100_000
    await stalled_request_ended(fake)
    await next_download_works(client, tmp_path)


async def test_stream_closed_on_an_exception(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """An exception in the stream block closes the storage response and propagates."""
    fake.script_storage(StallAfter(100_000))

    async def consume() -> None:
        async with client.recordings.stream(WS, REC_BIG, "video") as body:
            await read_until(body.__aiter__(), 100_000)
            raise LookupError("consumer failed")

    with anyio.fail_after(5), pytest.raises(LookupError, match="consumer failed"):
        await consume()
    await stalled_request_ended(fake)
    await next_download_works(client, tmp_path)


async def test_stream_closed_on_cancellation(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A stream cancelled while waiting for bytes that never come closes the response (#32)."""
    fake.script_storage(StallAfter(100_000))
    got = 0
    with anyio.fail_after(5), anyio.CancelScope() as scope:
        async with client.recordings.stream(WS, REC_BIG, "video") as body:
            async for chunk in body:
                got += len(chunk)
                if got >= 100_000:
                    scope.cancel()  # the next read waits on the stall and is cancelled
    assert scope.cancelled_caught
    assert got == 100_000
    await stalled_request_ended(fake)
    await next_download_works(client, tmp_path)

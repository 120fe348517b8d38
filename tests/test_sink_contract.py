"""The sink contract, the same for a local directory and an object store (issue 11).

Whole or nothing: committed bytes appear exactly; anything not committed (closed early,
restarted) leaves nothing visible; without ``replace`` nothing already there is replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from contextvars import Context
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Bucket
from userplane_async import DestinationError, verify_archive
from userplane_async._destination import Folder, download_place

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
RESOURCE = "ws/rec/video"


class Place:
    """A folder of either kind, and a way to read what is visible in it."""

    def __init__(self, dest: str, read: Callable[[], dict[str, bytes]]) -> None:
        self.dest = dest
        self.read = read

    async def folder(self) -> Folder:
        folder, name = await download_place(self.dest)
        assert name is None
        return folder


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "local":

        def files() -> dict[str, bytes]:
            return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

        return Place(f"{tmp_path}/", files)
    s3: Bucket = request.getfixturevalue("s3")

    def objects() -> dict[str, bytes]:
        assert s3.uploads() == []  # nothing half-uploaded either
        return {k.removeprefix("f/"): v for k, v in s3.objects("f/").items()}

    return Place(f"{s3.url}/f/", objects)


def chunks(size: int, seed: bytes = b"x") -> list[bytes]:
    data = hashlib.shake_256(seed).digest(size)
    return [data[i : i + 64 * 1024] for i in range(0, size, 64 * 1024)]


@pytest.mark.parametrize("size", [0, 5000, 13 * MIB], ids=["empty", "small", "multipart"])
async def test_committed_bytes_appear_exactly(place: Place, size: int) -> None:
    parts = chunks(size)
    folder = await place.folder()
    sink = await folder.open_sink(
        "out.bin", resource=RESOURCE, size=size, replace=False, on_landed=lambda n: None
    )
    async with sink:
        for part in parts:
            await sink.send(part)
        await sink.commit()
    await folder.aclose()
    assert place.read() == {"out.bin": b"".join(parts)}
    assert sink.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()
    assert sink.received == size


@pytest.mark.parametrize("size", [5000, 13 * MIB], ids=["small", "multipart"])
async def test_closed_before_commit_leaves_nothing(place: Place, size: int) -> None:
    folder = await place.folder()
    sink = await folder.open_sink(
        "out.bin", resource=RESOURCE, size=size, replace=False, on_landed=lambda n: None
    )
    async with sink:
        for part in chunks(size)[:-1]:
            await sink.send(part)
    await folder.aclose()
    assert place.read() == {}


async def test_a_restart_forgets_what_came_before(place: Place) -> None:
    size = 13 * MIB
    folder = await place.folder()
    sink = await folder.open_sink(
        "out.bin", resource=RESOURCE, size=size, replace=False, on_landed=lambda n: None
    )
    async with sink:
        for part in chunks(size, b"first")[: len(chunks(size)) // 2]:
            await sink.send(part)
        await sink.restart()
        assert sink.received == 0
        for part in chunks(size, b"second"):
            await sink.send(part)
        await sink.commit()
    await folder.aclose()
    assert place.read() == {"out.bin": b"".join(chunks(size, b"second"))}


@pytest.mark.parametrize("size", [5000, 13 * MIB], ids=["small", "multipart"])
async def test_without_replace_what_appeared_meanwhile_is_kept(place: Place, size: int) -> None:
    folder = await place.folder()
    sink = await folder.open_sink(
        "out.bin", resource=RESOURCE, size=size, replace=False, on_landed=lambda n: None
    )
    async with sink:
        for part in chunks(size):
            await sink.send(part)
        await folder.write_whole("out.bin", b"theirs")  # somebody else's, meanwhile
        with pytest.raises(DestinationError, match="already exists"):
            await sink.commit()
    await folder.aclose()
    assert place.read() == {"out.bin": b"theirs"}


async def test_with_replace_the_new_bytes_win(place: Place) -> None:
    folder = await place.folder()
    await folder.write_whole("out.bin", b"old")
    sink = await folder.open_sink(
        "out.bin", resource=RESOURCE, size=3, replace=True, on_landed=lambda n: None
    )
    async with sink:
        await sink.send(b"new")
        await sink.commit()
    await folder.aclose()
    assert place.read() == {"out.bin": b"new"}


async def test_find_knows_its_own_unchanged_file_and_nothing_else(place: Place) -> None:
    folder = await place.folder()
    assert await folder.find("out.bin", RESOURCE, 3) is None
    sink = await folder.open_sink(
        "out.bin", resource=RESOURCE, size=3, replace=False, on_landed=lambda n: None
    )
    async with sink:
        await sink.send(b"abc")
        await sink.commit()
    found = await folder.find("out.bin", RESOURCE, 3)
    assert found is not None
    assert found[0].value == "same"
    assert found[1] == hashlib.sha256(b"abc").hexdigest()
    other = await folder.find("out.bin", "ws/rec/thumbnail", 3)
    assert other is not None
    assert other[0].value == "foreign"
    await folder.write_whole("out.bin", b"abd")
    edited = await folder.find("out.bin", RESOURCE, 3)
    assert edited is not None
    assert edited[0].value == "foreign"
    await folder.aclose()


class _WatchedLoop(asyncio.SelectorEventLoop):
    """Records which thread asks to run something on the loop from outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.callers: set[str] = set()

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> asyncio.Handle:
        self.callers.add(threading.current_thread().name)
        return super().call_soon_threadsafe(callback, *args, context=context)


def test_no_thread_of_obstore_calls_into_the_loop(s3: Bucket) -> None:
    """obstore's async API completes on its own threads, which then call into Python: one
    still at it when the interpreter finalised killed the process (SIGABRT), most of the time
    for a short program under load. Only our own worker threads may wake the loop."""

    async def use_the_store() -> None:
        folder, _ = await download_place(f"{s3.url}/w/")
        for name, size, commit in [("a", 5000, True), ("b", 13 * MIB, True), ("c", 7 * MIB, False)]:
            sink = await folder.open_sink(
                name, resource=RESOURCE, size=size, replace=False, on_landed=lambda n: None
            )
            async with sink:
                for part in chunks(size):
                    await sink.send(part)
                if commit:
                    await sink.commit()
        await folder.aclose()
        with pytest.raises(DestinationError):
            await verify_archive(f"{s3.url}/w/")

    loop = _WatchedLoop()
    try:
        loop.run_until_complete(use_the_store())
    finally:
        loop.close()
    assert set(s3.objects("w/")) == {"w/a", "w/b"}
    assert loop.callers == {"AnyIO worker thread"}

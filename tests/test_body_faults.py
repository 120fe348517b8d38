"""Hostile bodies: huge, endless or deeply nested API JSON, and gzip bombs from both halves.

Fault-matrix rows 33 (huge or endless API JSON) and 34 (gzip bombs). The API's answers are
read up to an 8 MiB cap counted after decompression, so neither a body that never ends nor one
that inflates a thousandfold is ever held whole; storage bytes are never inflated at all.
Memory is measured with tracemalloc (client and fake share the process, so the bound covers
both), and what the fake had to send is counted where it pulls its chunks.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path

import anyio
import pytest

from userplane_async import AsyncUserplane, ResponseFormatError, UserplaneAPIError
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
CAP = 8 * MIB  # userplane_async._http.MAX_API_BODY
MEMORY_BOUND = 24 * MIB  # three times the cap; the bodies hold 200 MB, 1 GiB or no end
FILLER = b"a" * (64 * 1024)
HEAD = b'{"message": "ok", "data": {"user": {"id": "usr_1", "name": "'
WS, REC = "ws_bodies", "rec_bomb"


@cache
def gzip_bomb(repeat: int = 1024) -> bytes:
    """About 1 KiB of gzip per MiB of JSON it inflates to (one string of ``a``): 1 GiB by default.

    Built from one deflate segment repeated: each ends in a full flush, so none refers back
    to another, and the stream stays valid however many times the segment is repeated.
    """
    prefix, block, suffix = HEAD, b"a" * MIB, b'"}}}'
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflate.compress(prefix) + deflate.flush(zlib.Z_FULL_FLUSH)
    segment = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.compress(suffix) + deflate.flush()
    crc = zlib.crc32(prefix)
    for _ in range(repeat):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + len(block) * repeat + len(suffix)
    trailer = struct.pack("<II", crc, size % 2**32)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head + segment * repeat + tail + trailer


def test_the_bomb_inflates_a_thousandfold() -> None:
    """The bomb is valid gzip (checked whole on a small one) and declares 1 GiB of content."""
    small = gzip.decompress(gzip_bomb(repeat=3))
    assert small == HEAD + b"a" * 3 * MIB + b'"}}}'
    bomb = gzip_bomb()
    assert len(bomb) < 1.1 * MIB
    assert int.from_bytes(bomb[-4:], "little") == len(HEAD) + 1024 * MIB + 4  # gzip's ISIZE
    first = zlib.decompressobj(31).decompress(bomb, 64 * MIB)
    assert first == HEAD + b"a" * (64 * MIB - len(HEAD))


class Pulled:
    """Counts the bytes the fake took from a streamed body: an upper bound on what it sent."""

    def __init__(self) -> None:
        self.bytes = 0

    def body(self, total: int | None) -> Iterator[bytes]:
        """``HEAD`` and then filler: ``total`` bytes in all, or without end for ``None``."""
        self.bytes += len(HEAD)
        yield HEAD
        while total is None or self.bytes < total:
            self.bytes += len(FILLER)
            yield FILLER


@asynccontextmanager
async def peak_memory() -> AsyncIterator[list[int]]:
    """The peak of traced memory inside the block, in bytes, as the only item of a list."""
    tracemalloc.start()
    peak: list[int] = []
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


async def refused(call: Awaitable[object]) -> ResponseFormatError:
    """The ResponseFormatError that ``call`` raises, within a few seconds."""
    with anyio.fail_after(10), pytest.raises(ResponseFormatError) as caught:
        await call
    return caught.value


# --- #33: huge, endless and deep API JSON ----------------------------------------------------


@pytest.mark.parametrize("status", [200, 503])
@pytest.mark.parametrize("total", [200_000_000, None], ids=["200-MB", "endless"])
async def test_huge_or_endless_json_is_refused_at_the_cap(
    client: AsyncUserplane, fake_userplane: FakeUserplane, total: int | None, status: int
) -> None:
    """A 200 MB or endless API body is refused at 8 MiB, unretried, in bounded memory (#33)."""
    pulled = Pulled()
    fake_userplane.script("me", status=status, stream=pulled.body(total))
    async with peak_memory() as peak:
        error = await refused(client.me())
    assert error.message == "unexpected response at $: larger than 8 MiB"
    assert error.__cause__ is None
    assert peak[0] < MEMORY_BOUND
    me = await client.me()  # the connection was dropped, not pooled half-read
    assert me.user.id == "usr_default"
    await fake_userplane.aclose()  # every handler has finished: the log is complete
    statuses = [r.status for r in fake_userplane.api_requests()]
    assert sorted(statuses) == [0, 200]  # one try, and the fake saw the client hang up
    assert CAP <= pulled.bytes < CAP + 32 * MIB  # the cap, plus what sat in socket buffers


@pytest.mark.parametrize(
    "nested",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="arrays"),
        pytest.param(b'{"a": ' * 100_000 + b"0" + b"}" * 100_000, id="objects"),
    ],
)
async def test_deeply_nested_json_is_a_format_error(
    client: AsyncUserplane, fake_userplane: FakeUserplane, nested: bytes
) -> None:
    """JSON nested too deep to parse (far under the cap) is a ResponseFormatError (#33)."""
    fake_userplane.script("me", status=200, body=b'{"data": ' + nested + b"}")
    error = await refused(client.me())
    assert error.path == "$"
    assert error.__cause__ is None
    assert len(fake_userplane.api_requests()) == 1


async def test_deeply_nested_error_body_still_gives_the_status_error(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """An error answer whose body is nested too deep still raises the error of its status."""
    fake_userplane.script("me", status=400, body=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(UserplaneAPIError) as caught:
        await client.me()
    assert (caught.value.status, caught.value.code) == (400, None)
    assert caught.value.message == "HTTP 400 with no error details"


# --- #34: gzip bombs -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 503])
async def test_gzip_bomb_from_the_api_is_not_inflated_past_the_cap(
    client: AsyncUserplane, fake_userplane: FakeUserplane, status: int
) -> None:
    """1 MiB of gzip inflating to 1 GiB is refused once 8 MiB are inflated, in bounded memory (#34)."""
    bomb = gzip_bomb()
    fake_userplane.script(
        "me", status=status, body=bomb, headers={"Content-Encoding": "gzip"}, times=1
    )
    async with peak_memory() as peak:
        error = await refused(client.me())
    assert error.message == "unexpected response at $: larger than 8 MiB"
    assert peak[0] < MEMORY_BOUND
    assert (await client.me()).user.id == "usr_default"
    assert len(fake_userplane.api_requests()) == 2


async def test_gzip_bomb_in_storage_is_saved_as_stored(
    client: AsyncUserplane, fake_userplane: FakeUserplane, tmp_path: Path
) -> None:
    """A gzip-encoded object is written as its stored bytes, never inflated, in bounded memory (#34)."""
    bomb = gzip_bomb()
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(
        WS,
        REC,
        resources={"video": FakeResource(bomb, type="application/json", content_encoding="gzip")},
    )
    async with peak_memory() as peak:
        with anyio.fail_after(10):
            result = await client.recordings.download(WS, REC, "video", tmp_path)
    assert result.path.read_bytes() == bomb
    assert (result.size, result.sha256) == (len(bomb), hashlib.sha256(bomb).hexdigest())
    assert peak[0] < MEMORY_BOUND
    [request] = fake_userplane.storage_requests()
    assert request.headers["accept-encoding"] == "identity"
    assert request.status == 200


async def test_gzip_bomb_in_storage_streams_as_stored(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """Streaming a gzip-encoded object hands on the stored bytes, not inflated ones (#34)."""
    bomb = gzip_bomb()
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(
        WS, REC, resources={"video": FakeResource(bomb, content_encoding="gzip")}
    )
    digest, size = hashlib.sha256(), 0
    with anyio.fail_after(10):
        async with client.recordings.stream(WS, REC, "video") as body:
            async for chunk in body:
                digest.update(chunk)
                size += len(chunk)
    assert (size, digest.hexdigest()) == (len(bomb), hashlib.sha256(bomb).hexdigest())

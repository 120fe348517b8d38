"""``stream(range=...)``: byte ranges of a resource, checked strictly, against the fake store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from userplane_async import (
    AsyncUserplane,
    ByteRange,
    ConfigurationError,
    RangeNotSatisfiableError,
    StorageError,
)
from userplane_async.testing import FakeResource, FakeUserplane, IgnoreRange, ShiftContentRange
from userplane_async.testing._ranges import Unsatisfiable, parse_range

pytestmark = pytest.mark.anyio

WS = "ws_ranges"
REC = "rec_r"
SIZE = 300_000
BODY = bytes(range(256)) * (SIZE // 256) + b"end"
SIZE = len(BODY)


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(
        WS,
        REC,
        resources={"video": FakeResource(BODY), "action": FakeResource(b"")},
    )
    return fake_userplane


async def read(
    client: AsyncUserplane, wanted: ByteRange | None = None, **kw: object
) -> tuple[int, str | None, int | None, bytes]:
    async with client.recordings.stream(WS, REC, "video", range=wanted, **kw) as body:  # type: ignore[arg-type]
        data = b"".join([chunk async for chunk in body])
    return body.status, body.content_range, body.content_length, data


@pytest.mark.parametrize(
    ("wanted", "header", "first", "stop"),
    [
        pytest.param(ByteRange(0, 1), "bytes=0-1", 0, 2, id="safari-probe"),
        pytest.param(ByteRange(1000, 1999), "bytes=1000-1999", 1000, 2000, id="closed"),
        pytest.param(ByteRange(5000), "bytes=5000-", 5000, SIZE, id="open"),
        pytest.param(
            ByteRange(SIZE - 10, SIZE + 99),
            f"bytes={SIZE - 10}-{SIZE + 99}",
            SIZE - 10,
            SIZE,
            id="end-past-the-end",
        ),
        pytest.param(ByteRange.suffix(500), "bytes=-500", SIZE - 500, SIZE, id="suffix"),
        pytest.param(
            ByteRange(-SIZE * 2), f"bytes=-{SIZE * 2}", 0, SIZE, id="suffix-longer-than-all"
        ),
    ],
)
async def test_a_range_is_a_206_with_its_exact_bytes(
    client: AsyncUserplane,
    fake: FakeUserplane,
    wanted: ByteRange,
    header: str,
    first: int,
    stop: int,
) -> None:
    """A range streams exactly its bytes and says what a handler sends: 206, Content-Range."""
    status, content_range, length, data = await read(client, wanted)
    assert data == BODY[first:stop]
    assert (status, content_range, length) == (
        206,
        f"bytes {first}-{stop - 1}/{SIZE}",
        stop - first,
    )
    [request] = fake.storage_requests()
    assert (request.headers["range"], request.status) == (header, 206)
    assert "if-match" not in request.headers


async def test_without_a_range_the_whole_object_is_a_200(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """No range: status 200, no Content-Range, the whole size as the length."""
    async with client.recordings.stream(WS, REC, "video") as body:
        data = b"".join([chunk async for chunk in body])
        assert (body.status, body.content_range, body.content_length) == (200, None, SIZE)
        assert (body.size, body.offset, body.content_type) == (SIZE, 0, "video/webm")
        assert body.etag
        assert body.etag.startswith('"')
    assert data == BODY


async def test_offset_is_an_open_range(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """``offset=n`` still works, and is ``ByteRange(n)``: a 206 from n to the end."""
    async with client.recordings.stream(WS, REC, "video", offset=7) as body:
        data = b"".join([chunk async for chunk in body])
    assert data == BODY[7:]
    assert (body.status, body.content_range, body.offset) == (206, f"bytes 7-{SIZE - 1}/{SIZE}", 7)
    assert fake.storage_requests()[0].headers["range"] == "bytes=7-"


@pytest.mark.parametrize("wanted", [ByteRange(SIZE), ByteRange(SIZE + 5, SIZE + 9)])
async def test_a_range_past_the_end_is_a_typed_416(
    client: AsyncUserplane, fake: FakeUserplane, wanted: ByteRange
) -> None:
    """A range that starts past the end raises RangeNotSatisfiableError with the size, at once."""
    with pytest.raises(RangeNotSatisfiableError) as caught:
        await read(client, wanted)
    error = caught.value
    assert isinstance(error, StorageError)
    assert (error.status, error.size, error.recording_id, error.kind) == (416, SIZE, REC, "video")
    assert [r.status for r in fake.storage_requests()] == [416]  # not retried
    assert client.api_calls == 1


async def test_any_range_of_an_empty_object_is_a_416(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """An empty object has no byte to serve: 416 with size 0, even for a suffix."""
    for wanted in (ByteRange(0), ByteRange.suffix(1)):
        with pytest.raises(RangeNotSatisfiableError) as caught:
            async with client.recordings.stream(WS, REC, "action", range=wanted):
                pytest.fail("must not be reached")
        assert caught.value.size == 0


async def test_a_store_that_ignores_the_range_is_cut_to_it(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """A 200 to a ranged request still yields just the range, as a 206 to pass on."""
    fake.script_storage(IgnoreRange(), times=2)
    assert await read(client, ByteRange(10, 19)) == (206, f"bytes 10-19/{SIZE}", 10, BODY[10:20])
    assert await read(client, ByteRange(-3)) == (
        206,
        f"bytes {SIZE - 3}-{SIZE - 1}/{SIZE}",
        3,
        b"end",
    )
    assert [r.status for r in fake.storage_requests()] == [200, 200]
    assert (await read(client, ByteRange(0, 0)))[3] == BODY[:1]  # the cut responses were let go


async def test_a_store_that_ignores_a_range_past_the_end_is_a_416(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """A 200 to a range past the end is what the store's 416 would have been."""
    fake.script_storage(IgnoreRange())
    with pytest.raises(RangeNotSatisfiableError) as caught:
        await read(client, ByteRange(SIZE + 1))
    assert caught.value.size == SIZE


async def test_a_misplaced_206_is_retried_with_a_fresh_url(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """A Content-Range other than the one asked for is never passed on: a fresh URL, again."""
    fake.script_storage(ShiftContentRange(1))
    assert await read(client, ByteRange(100, 199)) == (
        206,
        f"bytes 100-199/{SIZE}",
        100,
        BODY[100:200],
    )
    assert [r.status for r in fake.storage_requests()] == [206, 206]
    assert client.api_calls == 2  # rule 1: one URL, one request


async def test_if_range_with_the_current_etag_serves_the_range(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """``if_range`` naming the object's ETag gets the range, asked for under If-Match."""
    async with client.recordings.stream(WS, REC, "video") as whole:
        etag = whole.etag
    assert await read(client, ByteRange(0, 1), if_range=etag) == (
        206,
        f"bytes 0-1/{SIZE}",
        2,
        BODY[:2],
    )
    assert fake.storage_requests()[-1].headers["if-match"] == etag


async def test_if_range_with_another_etag_serves_the_whole_object(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """``if_range`` naming another version gets the whole object, 200, from a fresh URL."""
    assert await read(client, ByteRange(0, 1), if_range='"stale"') == (200, None, SIZE, BODY)
    first, second = fake.storage_requests()
    assert (first.status, first.headers["range"], first.headers["if-match"]) == (
        412,
        "bytes=0-1",
        '"stale"',
    )
    assert second.status == 200
    assert "range" not in second.headers
    assert "if-match" not in second.headers
    assert client.api_calls == 2


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"range": "bytes=0-1"}, "range must be a ByteRange"),
        ({"range": ByteRange(0, 1), "offset": 5}, "either offset or range"),
        ({"range": ByteRange(0, 1), "if_range": 'W/"weak"'}, "strong ETag"),
        ({"range": ByteRange(0, 1), "if_range": '"a"\r\nX-Evil: 1'}, "strong ETag"),
        ({"if_range": "unquoted"}, "strong ETag"),
    ],
)
async def test_bad_stream_arguments_are_refused_before_any_call(
    client: AsyncUserplane, kw: dict[str, object], match: str
) -> None:
    """Nonsensical range arguments raise ConfigurationError at the call, spending nothing."""
    with pytest.raises(ConfigurationError, match=match):
        client.recordings.stream(WS, REC, "video", **kw)  # type: ignore[arg-type]
    assert client.api_calls == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((5, 2), "before its start"),
        ((-5, 10), "has no end"),
        ((True,), "must be an int"),
        ((1.5,), "must be an int"),
        ((0, "9"), "must be an int"),
    ],
)
def test_a_byte_range_is_checked_when_made(args: tuple[object, ...], match: str) -> None:
    """A ByteRange that names no bytes, or not with ints, cannot be made."""
    with pytest.raises(ConfigurationError, match=match):
        ByteRange(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, -3])
def test_a_suffix_needs_a_length(length: int) -> None:
    """``ByteRange.suffix`` of nothing is refused (HTTP's ``bytes=-0`` is unsatisfiable)."""
    with pytest.raises(ConfigurationError):
        ByteRange.suffix(length)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-1", ByteRange(0, 1)),
        (" bytes=5- ", ByteRange(5)),
        ("bytes=-500", ByteRange(-500)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole object
        ("bytes=-0", None),
        ("bytes=5-2", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_a_range_header(header: str | None, expected: ByteRange | None) -> None:
    """One range parses; what HTTP lets a server ignore is None."""
    assert ByteRange.parse(header) == expected


sizes = st.integers(min_value=0, max_value=10_000)
ranges = st.one_of(
    st.builds(lambda a, n: ByteRange(a, None if n is None else a + n), sizes, st.none() | sizes),
    st.builds(ByteRange.suffix, st.integers(min_value=1, max_value=20_000)),
)


@given(wanted=ranges, size=sizes)
def test_within_agrees_with_the_fake_store(wanted: ByteRange, size: int) -> None:
    """The bytes a range covers are those the S3-like fake serves for its header, or a 416."""
    try:
        span = parse_range(wanted.header, size)
    except Unsatisfiable:
        assert wanted.within(size) is None
    else:
        assert span is not None
        assert wanted.within(size) == (span.start, span.stop - 1)
        assert ByteRange.parse(wanted.header) == wanted

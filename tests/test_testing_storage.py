"""The fake object store's S3 semantics and scripted faults, seen from a plain aiohttp client."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import anyio
import pytest
from yarl import URL

from userplane_async.testing import (
    ChunkedWithoutEnd,
    CloseWithoutLength,
    Expired,
    FakeClock,
    FakeResource,
    FakeUserplane,
    IgnoreRange,
    Redirect,
    ReplaceAfter,
    ResetAfter,
    S3Error,
    ScaledClock,
    ShiftContentRange,
    StallAfter,
    StorageFault,
    Trickle,
    TruncateAfter,
    WrongLength,
)

pytestmark = pytest.mark.anyio

WS = "ws_demo"
REC = "rec_bytes"
SIZE = 10_240
BODY = bytes(range(256)) * (SIZE // 256)
NEW_BODY = b"new version " * 100
BROKEN = (aiohttp.ClientPayloadError, aiohttp.ClientOSError)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeUserplane]:
    """A started fake on virtual time: the demo workspace plus a recording of known bytes."""
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        fake.seed_demo()
        fake.add_recording(
            WS,
            REC,
            resources={"video": FakeResource(BODY), "action": FakeResource(b"[]")},
        )
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def resource(
    http: aiohttp.ClientSession, fake: FakeUserplane, rec: str = REC, kind: str = "video"
) -> dict[str, Any]:
    """The API's resource object (with a freshly issued presigned URL)."""
    url = URL(f"{fake.base_url}/public/workspace/{WS}/recordings/{rec}/{kind}", encoded=True)
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        found = (await response.json())["data"]["resource"]
    assert isinstance(found, dict)
    return found


async def url_of(
    http: aiohttp.ClientSession, fake: FakeUserplane, rec: str = REC, kind: str = "video"
) -> URL:
    """A fresh presigned URL, to be sent byte for byte."""
    return URL((await resource(http, fake, rec, kind))["url"], encoded=True)


async def fetch(
    http: aiohttp.ClientSession, url: URL, **kw: Any
) -> tuple[int, Mapping[str, str], bytes]:
    """Status, headers (case-insensitive) and the whole body of one storage GET."""
    async with http.get(url, **kw) as response:
        return response.status, response.headers, await response.read()


async def faulted(
    http: aiohttp.ClientSession, fake: FakeUserplane, fault: StorageFault, **kw: Any
) -> aiohttp.ClientResponse:
    """Script ``fault`` and open a GET of the test object; the caller reads the body."""
    url = await url_of(http, fake)
    fake.script_storage(fault)
    return await http.get(url, **kw)


# S3 semantics on the normal path


async def test_full_get(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A plain GET is a 200 with the bytes, their length, a quoted ETag and Accept-Ranges."""
    status, headers, body = await fetch(http, await url_of(http, fake))
    assert (status, body) == (200, BODY)
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"].startswith('"')
    assert headers["ETag"].endswith('"')
    assert "Content-Range" not in headers


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=100-", 100, SIZE),
        ("bytes=100-199", 100, 200),
        ("bytes=0-0", 0, 1),
        ("bytes=0-1", 0, 2),  # Safari's first request for a <video>
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE),
        (f"bytes=-{SIZE * 2}", 0, SIZE),  # a suffix longer than the object: all of it
        ("bytes=10000-999999", 10_000, SIZE),
        ("bytes=-40", SIZE - 40, SIZE),
    ],
)
async def test_range(
    fake: FakeUserplane, http: aiohttp.ClientSession, header: str, start: int, stop: int
) -> None:
    """A satisfiable range is a 206 with the exact Content-Range and Content-Length."""
    status, headers, body = await fetch(http, await url_of(http, fake), headers={"Range": header})
    assert (status, body) == (206, BODY[start:stop])
    assert headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert headers["Content-Length"] == str(stop - start)


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=-0"])
async def test_range_unsatisfiable(
    fake: FakeUserplane, http: aiohttp.ClientSession, header: str
) -> None:
    """A range past the end is 416 InvalidRange with Content-Range 'bytes */TOTAL'."""
    status, headers, body = await fetch(http, await url_of(http, fake), headers={"Range": header})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{SIZE}"
    assert b"<Code>InvalidRange</Code>" in body


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=abc", "items=0-1", "bytes=0-1,4-5", ""])
async def test_range_malformed_ignored(
    fake: FakeUserplane, http: aiohttp.ClientSession, header: str
) -> None:
    """A malformed or multi-part Range is ignored, as S3 does: 200 with the whole object."""
    status, _, body = await fetch(http, await url_of(http, fake), headers={"Range": header})
    assert (status, body) == (200, BODY)


async def test_if_match(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """If-Match with the current ETag serves the object; any other ETag is 412."""
    url = await url_of(http, fake)
    _, headers, _ = await fetch(http, url)
    etag = headers["ETag"]
    status, _, body = await fetch(http, url, headers={"If-Match": etag, "Range": "bytes=10-"})
    assert (status, body) == (206, BODY[10:])
    status, _, body = await fetch(http, url, headers={"If-Match": '"0123"', "Range": "bytes=10-"})
    assert status == 412
    assert b"<Code>PreconditionFailed</Code>" in body


async def test_if_range(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """If-Range with a stale ETag drops the Range: 200 with the whole object."""
    url = await url_of(http, fake)
    status, _, body = await fetch(http, url, headers={"If-Range": '"old"', "Range": "bytes=10-"})
    assert (status, body) == (200, BODY)


async def test_replace_resource(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Replacing an object changes its ETag and bytes, and the API's size and type follow."""
    url = await url_of(http, fake)
    _, headers, _ = await fetch(http, url)
    fake.replace_resource(WS, REC, "video", FakeResource(NEW_BODY, type="video/mp4"))
    status, _, _ = await fetch(http, url, headers={"If-Match": headers["ETag"]})
    assert status == 412
    status, new_headers, body = await fetch(http, url)
    assert (status, body) == (200, NEW_BODY)
    assert new_headers["ETag"] != headers["ETag"]
    res = await resource(http, fake)
    assert (res["size"], res["type"]) == (len(NEW_BODY), "video/mp4")
    with pytest.raises(ValueError, match="unknown recording"):
        fake.replace_resource(WS, "rec_nope", "video", FakeResource(b""))


async def test_replace_generated_content(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Generated content gets new bytes (and ETag) when replaced by the same size."""
    url = await url_of(http, fake, "rec_demo_small")
    _, first_headers, first = await fetch(http, url)
    fake.replace_resource(WS, "rec_demo_small", "video", FakeResource(size=len(first)))
    _, headers, body = await fetch(http, url)
    assert len(body) == len(first)
    assert body != first
    assert headers["ETag"] != first_headers["ETag"]


async def test_content_encoding_served_raw(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """A gzip object goes out as stored, with Content-Encoding and the stored length."""
    packed = gzip.compress(json.dumps([{"url": "https://x.test/"}] * 50).encode())
    fake.add_recording(
        WS,
        "rec_gzip",
        resources={"network-log": FakeResource(packed, content_encoding="gzip")},
    )
    url = await url_of(http, fake, "rec_gzip", "network-log")
    status, headers, body = await fetch(http, url, headers={"Accept-Encoding": "identity"})
    assert (status, body) == (200, packed)
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Length"] == str(len(packed))
    assert (await resource(http, fake, "rec_gzip", "network-log"))["size"] == len(packed)


# Scripted faults


async def test_reset_after(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """ResetAfter sends the full length, some bytes, then a reset: the read fails."""
    async with await faulted(http, fake, ResetAfter(1000)) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(SIZE)
        with pytest.raises(BROKEN):
            await response.read()
    [record] = fake.storage_requests()
    assert (record.status, record.fault) == (0, ResetAfter(1000))


async def test_reset_after_on_a_range(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A fault applies to the range being served: a 206 for the range, then the reset."""
    headers = {"Range": "bytes=4000-"}
    async with await faulted(http, fake, ResetAfter(10), headers=headers) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 4000-{SIZE - 1}/{SIZE}"
        assert response.headers["Content-Length"] == str(SIZE - 4000)
        with pytest.raises(BROKEN):
            await response.read()


async def test_truncate_after(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """TruncateAfter ends cleanly short of Content-Length: aiohttp's ClientPayloadError."""
    async with await faulted(http, fake, TruncateAfter(SIZE // 2)) as response:
        assert response.status == 200
        assert await response.content.readexactly(SIZE // 2) == BODY[: SIZE // 2]
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert fake.storage_requests()[0].status == 200


async def test_close_without_length(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Without Content-Length an early close reads as a short but successful body."""
    async with await faulted(http, fake, CloseWithoutLength(1000)) as response:
        assert response.status == 200
        assert "Content-Length" not in response.headers
        assert "Transfer-Encoding" not in response.headers
        assert response.headers["Connection"] == "close"
        assert await response.read() == BODY[:1000]


async def test_chunked_without_end(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A chunked body without its final zero chunk is a ClientPayloadError."""
    async with await faulted(http, fake, ChunkedWithoutEnd(3000)) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert await response.content.readexactly(3000) == BODY[:3000]
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_stall_after(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """StallAfter sends headers and some bytes, then nothing: a sock_read timeout fires."""
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    async with await faulted(http, fake, StallAfter(100), timeout=timeout) as response:
        assert response.status == 200
        assert await response.content.readexactly(100) == BODY[:100]
        with pytest.raises(asyncio.TimeoutError):
            await response.read()


async def test_pool_survives_faults(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Faulted connections are closed, not pooled: the same session's next GET succeeds."""
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    async with await faulted(http, fake, StallAfter(), timeout=timeout) as response:
        with pytest.raises(asyncio.TimeoutError):
            await response.read()
    async with await faulted(http, fake, WrongLength(10)) as response:
        assert await response.read() == BODY[:10]
    status, _, body = await fetch(http, await url_of(http, fake))
    assert (status, body) == (200, BODY)


async def test_resume_after_reset_is_byte_identical(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """A client that resumes a reset transfer with Range and If-Match gets the exact bytes."""
    chunks: list[bytes] = []

    async def read_into_chunks(response: aiohttp.ClientResponse) -> None:
        async for chunk in response.content.iter_any():
            chunks.append(chunk)

    async with await faulted(http, fake, ResetAfter(3000)) as response:
        etag = response.headers["ETag"]
        with pytest.raises(BROKEN):
            await read_into_chunks(response)
    got = b"".join(chunks)
    assert got == BODY[: len(got)]
    headers = {"Range": f"bytes={len(got)}-", "If-Match": etag}
    status, _, rest = await fetch(http, await url_of(http, fake), headers=headers)
    assert status == 206
    assert got + rest == BODY
    first, second = fake.storage_requests()
    assert first.query != second.query
    assert (first.status, second.status) == (0, 206)


async def test_stall_ends_on_aclose(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """aclose() ends a stall promptly with a clean close, so the client's read fails."""
    async with await faulted(http, fake, StallAfter()) as response:
        assert response.status == 200
        with anyio.fail_after(5):
            await fake.aclose()
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert fake.storage_requests()[0].fault == StallAfter(0)


async def test_trickle_fake_clock(
    fake: FakeUserplane, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Trickle sends the whole body in chunks, waiting chunk/rate on the fake's clock between."""
    fake.add_recording(WS, "rec_tiny", resources={"action": FakeResource(BODY[:100])})
    url = await url_of(http, fake, "rec_tiny", "action")
    fake.script_storage(Trickle(bytes_per_second=20, chunk=10))
    status, _, body = await fetch(http, url)
    assert (status, body) == (200, BODY[:100])
    assert clock.sleeps == [0.5] * 9


async def test_trickle_scaled_clock(http: aiohttp.ClientSession) -> None:
    """With a ScaledClock the trickle's waits pass in real, shortened time."""
    clock = ScaledClock(factor=1000)
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        fake.seed_demo()
        fake.add_recording(WS, "rec_tiny", resources={"action": FakeResource(BODY[:200])})
        url = await url_of(http, fake, "rec_tiny", "action")
        fake.script_storage(Trickle(bytes_per_second=100, chunk=50))
        started = clock.monotonic()
        status, _, body = await fetch(http, url, headers={"Range": "bytes=0-"})
        assert (status, body) == (206, BODY[:200])
        assert clock.monotonic() - started >= 1.4  # three waits of 0.5 s, less timer slack


async def test_trickle_trips_sock_read(http: aiohttp.ClientSession) -> None:
    """A trickle slower than the client's sock_read timeout is cut off by it."""
    async with FakeUserplane(clock=ScaledClock(factor=1), rate_limits=None) as fake:
        fake.add_workspace(WS)
        fake.add_recording(WS, REC, resources={"video": FakeResource(BODY)})
        timeout = aiohttp.ClientTimeout(sock_read=0.1)
        response = await faulted(http, fake, Trickle(bytes_per_second=1), timeout=timeout)
        async with response:
            with pytest.raises(asyncio.TimeoutError):
                await response.read()


async def test_expired_early(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Expired answers 403 'Request has expired' for a URL that is still valid, once."""
    url = await url_of(http, fake)
    fake.script_storage(Expired())
    status, _, body = await fetch(http, url)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    assert b"<Message>Request has expired</Message>" in body
    assert (await fetch(http, url))[0] == 200


async def test_real_expiry_keeps_other_faults(
    fake: FakeUserplane, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Other faults come after the expiry check, so an expired URL does not use them up."""
    stale = await url_of(http, fake)
    clock.advance(901)
    fake.script_storage(S3Error(503, "SlowDown", "Please reduce your request rate."))
    assert (await fetch(http, stale))[0] == 403
    assert (await fetch(http, await url_of(http, fake)))[0] == 503


@pytest.mark.parametrize(
    ("fault", "expected"), [(WrongLength(100), BODY[:100]), (WrongLength(SIZE), BODY)]
)
async def test_wrong_length_short(
    fake: FakeUserplane, http: aiohttp.ClientSession, fault: WrongLength, expected: bytes
) -> None:
    """A declared length up to the real one reads as a complete body of that length."""
    async with await faulted(http, fake, fault) as response:
        assert response.headers["Content-Length"] == str(len(expected))
        assert await response.read() == expected


async def test_wrong_length_long(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A declared length past the real one sends every byte, then the read fails."""
    async with await faulted(http, fake, WrongLength(SIZE + 100)) as response:
        assert response.headers["Content-Length"] == str(SIZE + 100)
        assert await response.content.readexactly(SIZE) == BODY
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


@pytest.mark.parametrize("header", ["bytes=100-", f"bytes={SIZE}-"])
async def test_ignore_range(fake: FakeUserplane, http: aiohttp.ClientSession, header: str) -> None:
    """IgnoreRange answers a range request (even an unsatisfiable one) with 200 and everything."""
    async with await faulted(http, fake, IgnoreRange(), headers={"Range": header}) as response:
        assert response.status == 200
        assert "Content-Range" not in response.headers
        assert await response.read() == BODY


async def test_shift_content_range(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """ShiftContentRange misstates where the 206's bytes start; the bytes are the real range."""
    headers = {"Range": "bytes=100-199"}
    async with await faulted(http, fake, ShiftContentRange(5), headers=headers) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 105-204/{SIZE}"
        assert await response.read() == BODY[100:200]


async def test_replace_after(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """ReplaceAfter breaks the transfer, and the object has a new version afterwards."""
    fault = ReplaceAfter(500, FakeResource(NEW_BODY))
    async with await faulted(http, fake, fault) as response:
        old_etag = response.headers["ETag"]
        with pytest.raises(BROKEN):
            await response.read()
    url = await url_of(http, fake)
    assert (await fetch(http, url, headers={"If-Match": old_etag}))[0] == 412
    status, headers, body = await fetch(http, url)
    assert (status, body) == (200, NEW_BODY)
    assert headers["ETag"] != old_etag


@pytest.mark.parametrize(
    "location", ["http://127.0.0.1:9/elsewhere", "file:///etc/passwd", "https://evil.test/x"]
)
async def test_redirect(fake: FakeUserplane, http: aiohttp.ClientSession, location: str) -> None:
    """Redirect answers 302 with the Location, for a client that does not follow it."""
    response = await faulted(http, fake, Redirect(location), allow_redirects=False)
    async with response:
        assert response.status == 302
        assert response.headers["Location"] == location


async def test_redirect_to_another_origin(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A followed redirect reaches another origin, whose log shows what the client sent it."""
    async with FakeUserplane(rate_limits=None) as other:
        target = other.base_url.removesuffix("/api/v1") + "/elsewhere?x=1"
        async with await faulted(http, fake, Redirect(target, status=307)) as response:
            assert response.status == 404
            assert [str(hop.url) for hop in response.history][-1].startswith(fake.base_url[:16])
        [seen] = other.requests
        assert (seen.path, seen.query) == ("/elsewhere", "x=1")
        assert "authorization" not in seen.headers


async def test_redirect_to_file_refused_by_aiohttp(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """A client that follows redirects is refused a file:// target by aiohttp itself."""
    with pytest.raises(aiohttp.NonHttpUrlRedirectClientError):
        await faulted(http, fake, Redirect("file:///etc/passwd", status=301))


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (503, "SlowDown", "Please reduce your request rate."),
        (500, "InternalError", "We encountered an internal error. Please try again."),
        (403, "AccessDenied", "Access Denied"),
        (404, "NoSuchKey", "The specified key does not exist."),
    ],
)
async def test_s3_error(
    fake: FakeUserplane, http: aiohttp.ClientSession, status: int, code: str, message: str
) -> None:
    """S3Error answers with S3's XML error body."""
    async with await faulted(http, fake, S3Error(status, code, message)) as response:
        assert response.status == status
        assert response.content_type == "application/xml"
        text = await response.text()
    assert f"<Code>{code}</Code><Message>{message}</Message>" in text


# Scoping and order


async def test_times_and_fifo(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Faults apply in the order scripted, each to its next `times` requests."""
    url = await url_of(http, fake)
    fake.script_storage(S3Error(503, "SlowDown", "slow"), times=2)
    fake.script_storage(S3Error(500, "InternalError", "oops"))
    statuses = [(await fetch(http, url))[0] for _ in range(4)]
    assert statuses == [503, 503, 500, 200]


async def test_scope_by_recording_and_kind(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """A scoped fault waits for a request of its recording and kind; others pass it by."""
    fake.script_storage(Expired(), recording_id=REC, kind="action")
    fake.script_storage(S3Error(500, "InternalError", "oops"), kind="thumbnail")
    assert (await fetch(http, await url_of(http, fake, REC, "video")))[0] == 200
    assert (await fetch(http, await url_of(http, fake, "rec_demo_small", "action")))[0] == 200
    assert (await fetch(http, await url_of(http, fake, REC, "action")))[0] == 403
    assert (await fetch(http, await url_of(http, fake, REC, "action")))[0] == 200
    assert (await fetch(http, await url_of(http, fake, REC, "thumbnail")))[0] == 500


async def test_front_door_before_faults(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """HEAD, Authorization and a bad signature are answered first and use up no fault."""
    url = await url_of(http, fake)
    fault = S3Error(503, "SlowDown", "slow")
    fake.script_storage(fault)
    async with http.head(url) as response:
        assert response.status == 403
    assert (await fetch(http, url, headers={"Authorization": "Bearer x"}))[0] == 400
    tampered = URL(str(url).replace("X-Amz-Signature=", "X-Amz-Signature=0"), encoded=True)
    assert (await fetch(http, tampered))[0] == 403
    assert (await fetch(http, url))[0] == 503
    assert [r.fault for r in fake.storage_requests()] == [None, None, None, fault]


def test_script_storage_validation() -> None:
    """Bad faults, counts and kinds are refused when scripted."""
    fake = FakeUserplane()
    with pytest.raises(ValueError, match="times"):
        fake.script_storage(Expired(), times=0)
    with pytest.raises(ValueError, match="kind"):
        fake.script_storage(Expired(), kind="audio")
    with pytest.raises(TypeError, match="not a storage fault"):
        fake.script_storage("reset")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="after"):
        ResetAfter(-1)
    with pytest.raises(ValueError, match="bytes_per_second"):
        Trickle(0)
    with pytest.raises(ValueError, match="status"):
        Redirect("http://x.test/", status=200)


# Request log


async def test_request_log_raw_and_headers(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """Storage records keep the raw path and query, lower-case headers, HEADs and statuses."""
    fake.add_recording(WS, "rec/odd %27", resources={"video": FakeResource(b"abc")})
    url = await url_of(http, fake, "rec%2Fodd%20%2527")
    headers = {"Range": "bytes=1-", "If-Match": "*"}
    assert (await fetch(http, url, headers=headers))[0] == 206
    async with http.head(url):
        pass
    get, head = fake.storage_requests()
    assert f"{get.path}?{get.query}" == url.raw_path_qs
    assert get.path.endswith("/rec%2Fodd%20%2527/video")
    assert (get.headers["range"], get.headers["if-match"]) == ("bytes=1-", "*")
    assert "authorization" not in get.headers
    assert (get.method, get.status, head.method, head.status) == ("GET", 206, "HEAD", 403)


async def test_urls_unique_and_strict(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Each issued URL is unique, and one re-encoded by the client fails its signature."""
    first, second = await url_of(http, fake), await url_of(http, fake)
    assert first != second
    assert "X-Amz-Security-Token=" in first.raw_query_string
    assert first.raw_query_string.count("%3D%3D&") == 1
    reencoded = URL(str(first).replace("%3D%3D&", "==&"), encoded=True)
    status, _, body = await fetch(http, reencoded)
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in body


# Demo content


async def test_demo_sample_content(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """The demo's full recording serves a real WebM, a JPEG and parseable logs."""
    bodies = {}
    for kind in ("video", "thumbnail", "console-log", "network-log", "action"):
        res = await resource(http, fake, "rec_demo_full", kind)
        status, _, body = await fetch(http, URL(res["url"], encoded=True))
        assert (status, len(body)) == (200, res["size"])
        bodies[kind] = body
    assert bodies["video"].startswith(b"\x1a\x45\xdf\xa3")
    assert b"webm" in bodies["video"][:64]
    assert 20_000 < len(bodies["video"]) < 100_000
    assert bodies["thumbnail"].startswith(b"\xff\xd8\xff")
    lines = [json.loads(line) for line in bodies["console-log"].splitlines()]
    assert {"timestamp", "level", "message"} <= set(lines[0])
    network = json.loads(bodies["network-log"])
    assert {"method", "url", "status", "durationMs", "startTime"} <= set(network[0])
    actions = json.loads(bodies["action"])
    assert any(a["type"] == "click" and {"selector", "x", "y"} <= set(a) for a in actions)
    assert sum(len(body) for body in bodies.values()) < 300_000

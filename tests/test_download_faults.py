"""Every scripted storage fault through ``client.recordings.download`` (fault matrix #11-27, 36, 38-39).

Each test ends with the same oracles: (a) the final file is byte-identical to the object or
absent; (b) no temp file remains and nothing appears outside the destination; (c) storage never
saw credentials or a HEAD; (d) every storage request used a URL of its own, resolved fresh from
the API; (e) no secret shows in errors, logs or the result's repr.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import anyio
import attrs
import pytest
from anyio.abc import SocketAttribute, SocketStream

from userplane_async import (
    AsyncUserplane,
    DownloadError,
    DownloadResult,
    IntegrityError,
    RetryPolicy,
    StorageError,
    Timeout,
    TransportError,
    URLExpiredError,
    URLPolicyError,
    UserplaneAPIError,
)
from userplane_async._urls import storage_url_problem
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
    RequestRecord,
    ResetAfter,
    S3Error,
    ShiftContentRange,
    StallAfter,
    StorageFault,
    Trickle,
    TruncateAfter,
    WrongLength,
)

pytestmark = pytest.mark.anyio

WS = "ws_faults"
REC = "rec_f"
SIZE = 300_000
BODY = hashlib.shake_256(b"the object as first stored").digest(SIZE)
NEW_BODY = hashlib.shake_256(b"a different version").digest(SIZE // 2 + 17)
BIG = hashlib.shake_256(b"more than one write batch").digest(1_600_000)
RESOURCE_ROUTE = "recordings.resource"
STORAGE_ROUTE = "storage.get"
URL_SECRETS = ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token")
SLOWDOWN = S3Error(503, "SlowDown", "Please reduce your request rate.")


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    """The demo fake plus a recording whose video is BODY."""
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(WS, REC, resources={"video": FakeResource(BODY)})
    return fake_userplane


@asynccontextmanager
async def client_for(fake: FakeUserplane, **options: Any) -> AsyncIterator[AsyncUserplane]:
    """A client of ``fake`` retrying without waits, unless told otherwise."""
    options.setdefault("retry", RetryPolicy.no_wait())
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url, **options) as client:
        yield client


@attrs.define
class Canary:
    """A listener on 127.0.0.1 that only counts the connections it gets."""

    port: int
    connections: int = 0


@asynccontextmanager
async def canary_listener() -> AsyncIterator[Canary]:
    """A TCP listener that nobody should ever contact."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    canary = Canary(listener.extra(SocketAttribute.local_port))  # noqa: S610 - anyio, not Django

    async def count(stream: SocketStream) -> None:
        canary.connections += 1
        await stream.aclose()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, count)
        try:
            yield canary
        finally:
            tg.cancel_scope.cancel()


def error_texts(error: BaseException) -> list[str]:
    """What a traceback or log of ``error`` shows: str, repr and attributes, down the chain."""
    texts: list[str] = []
    seen: BaseException | None = error
    for _ in range(20):
        if seen is None:
            break
        texts += [str(seen), repr(seen), repr(vars(seen))]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return texts


def query_values(records: list[RequestRecord]) -> set[str]:
    """The signature and token values of every storage query, raw and decoded."""
    values: set[str] = set()
    for record in records:
        for pair in record.query.split("&"):
            name, _, value = pair.partition("=")
            if name in ("X-Amz-Signature", "X-Amz-Security-Token") and value:
                values |= {value, unquote(value)}
    return values


class Oracle:
    """The checks (a)-(e) every download test ends with."""

    def __init__(self, fake: FakeUserplane, tmp_path: Path, caplog: pytest.LogCaptureFixture):
        self.fake = fake
        self.root = tmp_path
        self.caplog = caplog
        self.dest = tmp_path / "dest"
        self.dest.mkdir()
        self.canary = tmp_path / "canary"
        self.canary.mkdir()
        (self.canary / "keep.txt").write_bytes(b"canary content")
        self.extra_secrets: list[str] = []

    def ok(self, result: DownloadResult, expected: bytes) -> None:
        """(a) the file is the object, exactly; then (b)-(e)."""
        assert result.path.read_bytes() == expected
        assert result.size == len(expected)
        assert result.sha256 == hashlib.sha256(expected).hexdigest()
        assert result.path.parent == self.dest
        assert not result.path.is_symlink()
        assert [p.name for p in self.dest.iterdir()] == [result.path.name]
        assert result.attempts == len(self.fake.storage_requests())
        assert result.resolutions == result.attempts
        self._common([repr(result)])

    def failed(self, error: BaseException) -> None:
        """(a) no file at all; then (b)-(e), the error's whole chain included."""
        assert list(self.dest.iterdir()) == []
        self._common(error_texts(error))

    def _common(self, texts: list[str]) -> None:
        self._no_leftovers()
        self._storage_saw_no_credentials()
        self._fresh_url_per_request()
        self._no_secrets(texts)

    def _no_leftovers(self) -> None:
        """(b) no temp file anywhere, nothing beside dest and the canary, the canary intact."""
        assert [p for p in self.root.rglob("*") if p.name.endswith(".part")] == []
        assert sorted(p.name for p in self.root.iterdir()) == ["canary", "dest"]
        assert [p.name for p in self.canary.iterdir()] == ["keep.txt"]
        assert (self.canary / "keep.txt").read_bytes() == b"canary content"

    def _storage_saw_no_credentials(self) -> None:
        """(c) storage got plain GETs: no Authorization, cookie, x-amz-* header or HEAD."""
        for record in self.fake.storage_requests():
            assert record.method == "GET"
            assert "authorization" not in record.headers
            assert "cookie" not in record.headers
            assert not [name for name in record.headers if name.startswith("x-amz-")]
            assert record.headers.get("accept-encoding") == "identity"

    def _fresh_url_per_request(self) -> None:
        """(d) no URL used twice, and a resolve since the previous storage request before each."""
        storage = self.fake.storage_requests()
        targets = [f"{r.path}?{r.query}" for r in storage]
        assert len(set(targets)) == len(targets), "a presigned URL was used twice"
        calls = sorted(
            (r for r in self.fake.requests if r.route in (RESOURCE_ROUTE, STORAGE_ROUTE)),
            key=lambda r: r.time,
        )
        resolved = False
        for record in calls:
            if record.route == RESOURCE_ROUTE:
                resolved = True
            else:
                assert resolved, "a storage request was not preceded by a fresh resolve"
                resolved = False

    def _no_secrets(self, texts: list[str]) -> None:
        """(e) neither the key nor any presigned query part in errors, logs or reprs."""
        texts = texts + [r.getMessage() for r in self.caplog.records]
        texts += [str(r.args) for r in self.caplog.records] + [self.caplog.text]
        values = query_values(self.fake.storage_requests())
        secrets = [self.fake.api_key, *values, *self.extra_secrets]
        for text in texts:
            assert not [s for s in secrets if s in text], text
            assert not [m for m in URL_SECRETS if m.lower() in text.lower()], text


@pytest.fixture
def oracle(fake: FakeUserplane, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Oracle:
    caplog.set_level(logging.DEBUG)
    return Oracle(fake, tmp_path, caplog)


async def download(client: AsyncUserplane, oracle: Oracle, rec: str = REC) -> DownloadResult:
    """Download ``rec``'s video into the oracle's destination directory."""
    with anyio.fail_after(10):
        return await client.recordings.download(WS, rec, "video", oracle.dest)


async def current_etag(client: AsyncUserplane, rec: str = REC) -> str | None:
    """The object's ETag as storage sends it now (read to the end, so the fake's log is settled)."""
    async with client.recordings.stream(WS, rec, "video") as body:
        async for _ in body:
            pass
    return body.etag


async def failure_of(call: Awaitable[object]) -> Exception | None:
    """The exception ``call`` raises, or None (asserted on outside any task group)."""
    try:
        await call
    except Exception as exc:
        return exc
    return None


def resumed_at(record: RequestRecord) -> int:
    """The offset a ``Range: bytes=N-`` request resumed at."""
    prefix, _, rest = record.headers["range"].partition("=")
    assert prefix == "bytes"
    assert rest.endswith("-")
    return int(rest[:-1])


def resource_calls(fake: FakeUserplane) -> list[RequestRecord]:
    return [r for r in fake.api_requests() if r.route == RESOURCE_ROUTE]


# --- #11-14: breaks mid-body resume with Range + If-Match and a fresh URL -------------------


@pytest.mark.parametrize(
    ("fault", "exact"),
    [
        pytest.param(ResetAfter(100_000), False, id="reset"),
        pytest.param(TruncateAfter(100_000), False, id="truncate"),
        pytest.param(CloseWithoutLength(100_000), True, id="close-without-length"),
        pytest.param(ChunkedWithoutEnd(100_000), False, id="chunked-without-end"),
    ],
)
async def test_break_resumes_with_a_fresh_url(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, fault: StorageFault, exact: bool
) -> None:
    """A body cut short resumes from where it stopped with Range, If-Match and a new URL.

    aiohttp drops what it buffered when a framed body breaks, so the resume point is what the
    SDK received, at most the bytes sent; a body without framing ends cleanly at every byte.
    """
    fake.script_storage(fault)
    result = await download(client, oracle)
    oracle.ok(result, BODY)
    first, second = fake.storage_requests()
    assert first.fault == fault
    assert "range" not in first.headers
    if exact:
        assert resumed_at(second) == 100_000
    if "range" in second.headers:
        assert 0 < resumed_at(second) <= 100_000
        assert second.status == 206
        assert second.headers["if-match"] == await current_etag(client)


@pytest.mark.parametrize("after", [0, 100_000], ids=["stall-after-headers", "stall-mid-body"])
async def test_stall_trips_the_read_timeout_and_resumes(
    fake: FakeUserplane, oracle: Oracle, after: int
) -> None:
    """A body that stops flowing trips the read timeout, then resumes with a fresh URL (#17)."""
    fake.script_storage(StallAfter(after))
    async with client_for(fake, timeout=Timeout(connect=5, read=0.2, total=5)) as client:
        result = await download(client, oracle)
        oracle.ok(result, BODY)
        first, second = fake.storage_requests()
        assert (first.fault, first.status) == (StallAfter(after), 0)
        assert second.headers.get("range") == (f"bytes={after}-" if after else None)
        # The stalled connection was dropped, not pooled: the same client carries on.
        assert (await download(client, oracle)).skipped


async def test_trickle_slower_than_the_read_timeout_resumes(
    fake: FakeUserplane, oracle: Oracle
) -> None:
    """A trickle with gaps longer than the read timeout is cut off and resumed (#16)."""
    fake.script_storage(Trickle(bytes_per_second=20_000, chunk=10_000))  # 0.5 s gaps
    async with client_for(fake, timeout=Timeout(connect=5, read=0.15, total=5)) as client:
        result = await download(client, oracle)
    oracle.ok(result, BODY)
    first, second = fake.storage_requests()
    assert first.fault == Trickle(bytes_per_second=20_000, chunk=10_000)
    assert second.headers["range"] == "bytes=10000-"


async def test_healthy_trickle_outlives_the_total_timeout(
    fake: FakeUserplane, oracle: Oracle
) -> None:
    """A slow but steady body is not cut off by the total timeout: downloads have none (#16)."""
    fault = Trickle(bytes_per_second=SIZE / 0.5, chunk=SIZE // 5)  # 4 gaps of 0.1 s
    fake.script_storage(fault)
    started = time.monotonic()
    async with client_for(fake, timeout=Timeout(connect=5, read=1.0, total=0.25)) as client:
        result = await download(client, oracle)
    assert time.monotonic() - started >= 0.35  # longer than the total timeout
    oracle.ok(result, BODY)
    assert [r.fault for r in fake.storage_requests()] == [fault]


# --- #18-19: expiry --------------------------------------------------------------------------


async def test_expired_url_is_resolved_again(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """S3's 'Request has expired' on a fresh URL means one more resolve, then success (#18)."""
    fake.script_storage(Expired())
    result = await download(client, oracle)
    oracle.ok(result, BODY)
    assert [r.status for r in fake.storage_requests()] == [403, 200]


async def test_always_expired_urls_end_in_url_expired_error(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """An API that only hands out expired URLs is given up on after a few, not looped on (#18)."""
    fake.script_storage(Expired(), times=50)
    with pytest.raises(URLExpiredError) as caught:
        await download(client, oracle)
    oracle.failed(caught.value)
    storage = fake.storage_requests()
    assert 2 <= len(storage) <= 5
    assert {r.status for r in storage} == {403}
    assert len(resource_calls(fake)) == len(storage)


async def test_urls_expired_on_arrival_are_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """URLs that really are past X-Amz-Date + X-Amz-Expires end in URLExpiredError, bounded (#18)."""
    caplog.set_level(logging.DEBUG)
    clock = FakeClock(start=1_800_000_000.5)  # a zero lifetime has passed half a second ago
    async with FakeUserplane(clock=clock, url_lifetime=0, rate_limits=None) as fake:
        fake.add_workspace(WS)
        fake.add_recording(WS, REC, resources={"video": FakeResource(BODY)})
        oracle = Oracle(fake, tmp_path, caplog)
        async with client_for(fake) as client:
            with pytest.raises(URLExpiredError) as caught:
                await download(client, oracle)
        oracle.failed(caught.value)
        storage = fake.storage_requests()
        assert 2 <= len(storage) <= 5
        assert len(resource_calls(fake)) == len(storage)
        assert all(r.fault is None and r.status == 403 for r in storage)


async def test_url_expiring_mid_download_is_never_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A URL that expires while its body streams, then breaks, is replaced, never reused (#19)."""
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        fake.add_workspace(WS)
        fake.add_recording(WS, REC, resources={"video": FakeResource(BIG)})
        oracle = Oracle(fake, tmp_path, caplog)
        fake.script_storage(TruncateAfter(1_300_000))
        advanced: list[int] = []

        def expire_now(done: int, total: int | None) -> None:
            if not advanced:  # the first batch is on disk: let the URL in use expire
                advanced.append(done)
                clock.advance(901)

        async with client_for(fake) as client:
            with anyio.fail_after(10):
                result = await client.recordings.download(
                    WS, REC, "video", oracle.dest, progress=expire_now
                )
        oracle.ok(result, BIG)
        # The first batch lands while the body streams or just after it broke: in the second
        # case the resumed request meets the expiry too (403) and one more fresh URL follows.
        first, *rest = fake.storage_requests()
        params = dict(pair.split("=", 1) for pair in first.query.split("&"))
        issued = calendar.timegm(time.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        assert issued + int(params["X-Amz-Expires"]) < clock.time()  # the first URL had expired
        assert [r.status for r in rest] in ([206], [403, 206])
        assert 1024 * 1024 <= resumed_at(rest[-1]) <= 1_300_000


# --- #15: lengths that lie -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "fault"),
    [
        pytest.param(FakeResource(BODY), WrongLength(1000), id="content-length-short"),
        pytest.param(FakeResource(BODY), WrongLength(SIZE + 100), id="content-length-long"),
        pytest.param(FakeResource(BODY, size=SIZE + 1), None, id="api-size-larger"),
        pytest.param(FakeResource(BODY, size=SIZE - 1), None, id="api-size-smaller"),
        pytest.param(
            FakeResource(BODY, size=1000), CloseWithoutLength(SIZE), id="more-than-api-size"
        ),
    ],
)
async def test_length_mismatch_is_an_integrity_error(
    client: AsyncUserplane,
    fake: FakeUserplane,
    oracle: Oracle,
    resource: FakeResource,
    fault: StorageFault | None,
) -> None:
    """Sizes that disagree (Content-Length, API size, bytes) fail with IntegrityError, no file (#15)."""
    fake.add_recording(WS, "rec_len", resources={"video": resource})
    if fault is not None:
        fake.script_storage(fault)
    with pytest.raises(IntegrityError) as caught:
        await download(client, oracle, "rec_len")
    oracle.failed(caught.value)
    assert len(fake.storage_requests()) == 1


# --- #20-22: the object changes, or the store mishandles Range -----------------------------


async def test_replaced_object_restarts_and_never_splices(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """An object replaced mid-download gets 412 on resume and is fetched whole, new version (#20)."""
    fake.script_storage(ReplaceAfter(100_000, FakeResource(NEW_BODY)))
    result = await download(client, oracle)
    oracle.ok(result, NEW_BODY)
    statuses = [r.status for r in fake.storage_requests()]
    assert statuses in ([0, 412, 200], [0, 200])  # 412 when some old bytes had arrived
    if statuses[1] == 412:
        assert "if-match" in fake.storage_requests()[1].headers
    assert "range" not in fake.storage_requests()[-1].headers


async def test_ignored_range_restarts_in_place(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """A 200 with the whole body to a resumed request replaces what was there (#21)."""
    fake.script_storage(TruncateAfter(100_000))
    fake.script_storage(IgnoreRange())
    reports: list[tuple[int, int | None]] = []
    with anyio.fail_after(10):
        result = await client.recordings.download(
            WS, REC, "video", oracle.dest, progress=lambda d, t: reports.append((d, t))
        )
    oracle.ok(result, BODY)
    _, second = fake.storage_requests()
    assert (second.headers["range"], second.status) == ("bytes=100000-", 200)
    assert reports[-1] == (SIZE, SIZE)


@pytest.mark.parametrize(
    ("faults", "attempts"),
    [
        pytest.param([ShiftContentRange(5)], 2, id="first-request"),
        pytest.param([TruncateAfter(100_000), ShiftContentRange(5)], 3, id="resumed-request"),
        pytest.param([TruncateAfter(100_000), ShiftContentRange(-7)], 3, id="shifted-back"),
    ],
)
async def test_misaligned_content_range_restarts_from_zero(
    client: AsyncUserplane,
    fake: FakeUserplane,
    oracle: Oracle,
    faults: list[StorageFault],
    attempts: int,
) -> None:
    """A 206 whose Content-Range is not the range asked for is discarded: restart from 0 (#21)."""
    for fault in faults:
        fake.script_storage(fault)
    result = await download(client, oracle)
    oracle.ok(result, BODY)
    assert result.attempts == attempts
    assert "range" not in fake.storage_requests()[-1].headers


async def test_416_on_resume_restarts_cleanly(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """A 416 to a resumed request discards the partial and fetches from byte 0 (#22)."""
    fake.script_storage(TruncateAfter(100_000))
    fake.script_storage(S3Error(416, "InvalidRange", "The requested range is not satisfiable"))
    result = await download(client, oracle)
    oracle.ok(result, BODY)
    assert [r.status for r in fake.storage_requests()] == [200, 416, 200]


# --- #23: Content-Encoding -------------------------------------------------------------------


@pytest.mark.parametrize("fault", [None, TruncateAfter(500)], ids=["whole", "resumed"])
async def test_gzip_object_is_saved_as_stored(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, fault: StorageFault | None
) -> None:
    """A Content-Encoding: gzip object is written as the stored bytes, not decompressed (#23)."""
    packed = gzip.compress(
        json.dumps([{"i": i, "url": "https://x.test/"} for i in range(400)]).encode()
    )
    fake.add_recording(
        WS,
        "rec_gz",
        resources={"video": FakeResource(packed, type="application/json", content_encoding="gzip")},
    )
    if fault is not None:
        fake.script_storage(fault)
    result = await download(client, oracle, "rec_gz")
    oracle.ok(result, packed)
    assert result.path.name == "video.json"


# --- #24-25: redirects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "status"),
    [
        pytest.param(
            "http://127.0.0.1:{port}/elsewhere?X-Amz-Signature=redirsecret",
            302,
            id="other-port-302",
        ),
        pytest.param("http://127.0.0.1:{port}/elsewhere", 307, id="other-port-307"),
        pytest.param("https://127.0.0.1:{port}/elsewhere", 308, id="https-other-port-308"),
        pytest.param("http://localhost:{port}/elsewhere", 301, id="other-host-301"),
        pytest.param("file:///etc/passwd", 302, id="file"),
        pytest.param("{self}", 302, id="loop-to-itself"),
    ],
)
async def test_storage_redirects_are_not_followed(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, location: str, status: int
) -> None:
    """A redirect from storage is a StorageError; its target is never contacted (#24, #25)."""
    async with canary_listener() as canary:
        target = location.format(port=canary.port, self=f"{fake.base_url[:-7]}/storage/x")
        fake.script_storage(Redirect(target, status=status))
        error = await failure_of(download(client, oracle))
    assert isinstance(error, StorageError)
    oracle.extra_secrets.append("redirsecret")
    oracle.failed(error)
    assert canary.connections == 0
    assert error.status == status
    assert "elsewhere" not in str(error)
    assert len(fake.storage_requests()) == 1


async def test_api_redirect_is_not_followed(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """A redirect from the API itself is an error and leads to no storage request (#24)."""
    async with canary_listener() as canary:
        location = f"http://127.0.0.1:{canary.port}/api/v1/elsewhere"
        fake.script(RESOURCE_ROUTE, status=302, body=b"", headers={"Location": location})
        with pytest.raises(UserplaneAPIError) as caught:
            await download(client, oracle)
    oracle.failed(caught.value)
    assert caught.value.status == 302
    assert canary.connections == 0
    assert fake.storage_requests() == []


# --- #26: the URL policy ---------------------------------------------------------------------

SECRET_QUERY = "X-Amz-Credential=AKIAPOLICY&X-Amz-Signature=policysecret"


def envelope(url: str) -> dict[str, Any]:
    """An API answer for REC's video with ``url`` as its presigned URL."""
    resource = {
        "url": url,
        "message": "Video available",
        "type": "video/webm",
        "size": SIZE,
        "captureEnabled": True,
    }
    return {"success": True, "message": "ok", "data": {"recordingId": REC, "resource": resource}}


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://example.com/x", id="http-off-loopback"),
        pytest.param("https://user:pw@127.0.0.1:{port}/x", id="user-info"),
        pytest.param("https://user@127.0.0.1:{port}/x", id="user-only"),
        pytest.param("ftp://127.0.0.1:{port}/x", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("/storage/relative", id="relative"),
        pytest.param("https://169.254.169.254/latest/meta-data", id="metadata"),
        pytest.param("https://10.0.0.1/x", id="private-10"),
        pytest.param("https://192.168.1.1/x", id="private-192"),
        pytest.param("https://172.16.0.1/x", id="private-172"),
        pytest.param("https://0.0.0.0/x", id="unspecified"),
        pytest.param("https://[::ffff:169.254.169.254]/x", id="v4-mapped-metadata"),
        pytest.param("https://[fe80::1]/x", id="v6-link-local"),
        pytest.param("https://[fd00::1]/x", id="v6-unique-local"),
        pytest.param("https://2852039166/x", id="metadata-as-decimal"),
        pytest.param("https://0xa9.0xfe.0xa9.0xfe/x", id="metadata-as-hex"),
        pytest.param("https://0251.0376.0251.0376/x", id="metadata-as-octal"),
        pytest.param("https://169.254.43518/x", id="metadata-short-form"),
        pytest.param("https://10.1/x", id="private-short-form"),
    ],
)
async def test_bad_presigned_urls_are_refused_before_connecting(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, url: str
) -> None:
    """A URL off the policy is refused with URLPolicyError before any connection, query unshown (#26)."""
    # Checked first so that a policy miss never sends traffic off 127.0.0.1: the resolver
    # reads 2852039166, 0xa9.0xfe.0xa9.0xfe and 10.1 as the IP addresses they spell.
    problem = storage_url_problem(f"{url.format(port=1)}?{SECRET_QUERY}")
    assert problem is not None, "the policy lets this URL through"
    async with canary_listener() as canary:
        bad = f"{url.format(port=canary.port)}?{SECRET_QUERY}"
        fake.script(RESOURCE_ROUTE, status=200, body=envelope(bad))
        error = await failure_of(download(client, oracle))
    assert isinstance(error, URLPolicyError)
    oracle.extra_secrets += ["AKIAPOLICY", "policysecret", "pw@"]
    oracle.failed(error)
    assert canary.connections == 0
    assert fake.storage_requests() == []
    assert len(resource_calls(fake)) == 1
    assert (error.recording_id, error.kind) == (REC, "video")


# --- #27: URLs byte for byte, also on the retry ----------------------------------------------


@pytest.mark.parametrize("recording_id", ["rec_'q", "rec/slash", "rec+plus", "rec.%2E", "réc sp"])
async def test_encoded_keys_survive_a_resume(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, recording_id: str
) -> None:
    """Every request of a resumed download sends the issued URL byte for byte (#27)."""
    fake.add_recording(WS, recording_id, resources={"video": FakeResource(BODY)})
    fake.script_storage(TruncateAfter(1234))
    result = await download(client, oracle, recording_id)
    oracle.ok(result, BODY)
    assert [r.status for r in fake.storage_requests()] == [200, 206]  # the signature held


# --- S3 errors: no retry on 4xx, bounded retry on 5xx ----------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(S3Error(403, "AccessDenied", "Access Denied"), id="403-access-denied"),
        pytest.param(S3Error(400, "InvalidArgument", "Invalid Argument"), id="400"),
        pytest.param(S3Error(404, "NoSuchKey", "The specified key does not exist."), id="404"),
        pytest.param(S3Error(403, "SignatureDoesNotMatch", "The signature..."), id="403-signature"),
    ],
)
async def test_client_errors_are_not_retried(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, fault: S3Error
) -> None:
    """An S3 4xx other than expiry is a typed StorageError after exactly one request."""
    fake.script_storage(fault)
    with pytest.raises(StorageError) as caught:
        await download(client, oracle)
    oracle.failed(caught.value)
    assert (caught.value.status, caught.value.code) == (fault.status, fault.code)
    assert len(fake.storage_requests()) == 1
    assert len(resource_calls(fake)) == 1


async def test_slowdown_then_success(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """A couple of 503 SlowDown answers are retried, each with a fresh URL, then succeed (#6)."""
    fake.script_storage(SLOWDOWN, times=2)
    result = await download(client, oracle)
    oracle.ok(result, BODY)
    assert [r.status for r in fake.storage_requests()] == [503, 503, 200]


async def test_server_error_mid_resume_keeps_the_bytes(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """A 500 between a break and its resume does not throw away the bytes already received."""
    fake.script_storage(TruncateAfter(100_000))
    fake.script_storage(S3Error(500, "InternalError", "We encountered an internal error."))
    result = await download(client, oracle)
    oracle.ok(result, BODY)
    ranges = [r.headers.get("range") for r in fake.storage_requests()]
    assert ranges == [None, "bytes=100000-", "bytes=100000-"]


async def test_persistent_503_gives_up_after_the_policy(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """Storage that always answers 503 ends in its StorageError after the policy's attempts (#7)."""
    fake.script_storage(SLOWDOWN, times=50)
    with pytest.raises(StorageError) as caught:
        await download(client, oracle)
    oracle.failed(caught.value)
    assert (caught.value.status, caught.value.code) == (503, "SlowDown")
    assert len(fake.storage_requests()) == client.retry.attempts


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(ResetAfter(1000), id="reset"),
        pytest.param(TruncateAfter(1000), id="truncate"),
        pytest.param(CloseWithoutLength(1000), id="close-without-length"),
    ],
)
async def test_persistent_breaks_give_up_after_the_policy(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, fault: StorageFault
) -> None:
    """A body that breaks on every attempt ends in a typed error after the policy's attempts."""
    fake.script_storage(fault, times=50)
    with pytest.raises((TransportError, DownloadError)) as caught:
        await download(client, oracle)
    oracle.failed(caught.value)
    assert len(fake.storage_requests()) == client.retry.attempts


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(S3Error(403, "AccessDenied", "Access Denied"), id="storage-error"),
        pytest.param(SLOWDOWN, id="storage-error-after-retries"),
        pytest.param(Redirect("http://127.0.0.1:9/x"), id="redirect"),
        pytest.param(WrongLength(10), id="integrity-error"),
        pytest.param(Expired(), id="url-expired-error"),
    ],
)
async def test_download_errors_name_the_recording(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle, fault: StorageFault
) -> None:
    """A DownloadError says which recording and kind failed, in its attributes."""
    fake.script_storage(fault, times=50)
    with pytest.raises(DownloadError) as caught:
        await download(client, oracle)
    oracle.failed(caught.value)
    assert (caught.value.recording_id, caught.value.kind) == (REC, "video")


# --- #36, #38, #39: nothing of the user's session or environment reaches storage ------------


async def test_no_credentials_reach_storage_from_session_or_environment(
    fake: FakeUserplane, oracle: Oracle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user session's default headers, netrc and proxy variables never reach storage (#36, #38)."""
    netrc = tmp_path / "canary" / "netrc"
    netrc.write_text("default login netrcuser password netrcsecret\n")
    netrc.chmod(0o600)
    async with canary_listener() as canary:
        proxy = f"http://127.0.0.1:{canary.port}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("NETRC", str(netrc))
        defaults = {"Authorization": "Bearer sessiondefault", "X-Amz-Meta-Leak": "1"}
        async with (
            aiohttp.ClientSession(headers=defaults, cookies={"c": "sessioncookie"}) as session,
            client_for(fake, session=session) as client,
        ):
            fake.script_storage(TruncateAfter(100_000))
            result = await download(client, oracle)
    netrc.unlink()
    oracle.extra_secrets += ["netrcsecret", "sessiondefault", "sessioncookie"]
    oracle.ok(result, BODY)
    assert canary.connections == 0


# --- design rule 9: one limiter bounds storage fetches across recordings ---------------------


def most_in_flight(records: list[RequestRecord]) -> int:
    """The largest number of storage requests the server was answering at once."""
    storage = [r for r in records if r.route == STORAGE_ROUTE]
    events = sorted([(r.time, 1) for r in storage] + [(r.finished or r.time, -1) for r in storage])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_concurrent_downloads_respect_the_limit(
    fake: FakeUserplane, oracle: Oracle, concurrency: int
) -> None:
    """Many overlapping downloads never have more storage requests in flight than the limit."""
    bodies = {f"rec_c{i}": hashlib.shake_256(b"%d" % i).digest(400) for i in range(6)}
    for rec, body in bodies.items():
        fake.add_recording(WS, rec, resources={"video": FakeResource(body)})
        fake.script_storage(Trickle(bytes_per_second=5000, chunk=100), recording_id=rec)
    results: dict[str, DownloadResult] = {}

    async def fetch(rec: str) -> None:
        results[rec] = await client.recordings.download(WS, rec, "video", oracle.dest / rec)

    async with client_for(fake, concurrency=concurrency) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for rec in bodies:
                    tg.start_soon(fetch, rec)
    assert {rec: r.path.read_bytes() for rec, r in results.items()} == bodies
    assert len(fake.storage_requests()) == len(bodies)
    assert most_in_flight(fake.requests) == concurrency
    assert [p for p in oracle.root.rglob("*") if p.name.endswith(".part")] == []
    assert all(r.attempts == r.resolutions == 1 for r in results.values())
    oracle._storage_saw_no_credentials()


@pytest.mark.parametrize("second", ["download", "stream"])
async def test_one_task_may_hold_two_storage_slots(
    fake: FakeUserplane, oracle: Oracle, second: str
) -> None:
    """A task reading one stream can download or stream another resource while slots are free."""
    fake.add_recording(WS, "rec_other", resources={"video": FakeResource(NEW_BODY)})
    async with client_for(fake, concurrency=3) as client:
        with anyio.fail_after(5):
            async with client.recordings.stream(WS, REC, "video") as first:
                if second == "download":
                    result = await download(client, oracle, "rec_other")
                    assert result.path.read_bytes() == NEW_BODY
                else:
                    async with client.recordings.stream(WS, "rec_other", "video") as other:
                        assert b"".join([chunk async for chunk in other]) == NEW_BODY
                assert b"".join([chunk async for chunk in first]) == BODY


# --- #13 when nothing announces a size -------------------------------------------------------


async def test_short_body_without_any_announced_size_is_not_ok(
    client: AsyncUserplane, fake: FakeUserplane, oracle: Oracle
) -> None:
    """With no API size and no Content-Length, an early close must not end as a whole file (#13)."""
    issued = await client.recordings.resource(WS, REC, "video")  # a real presigned URL
    assert issued.url is not None
    answer = envelope(issued.url)
    del answer["data"]["resource"]["size"]
    fake.script(RESOURCE_ROUTE, status=200, body=answer)
    fake.script_storage(CloseWithoutLength(100_000))
    outcome: DownloadResult | Exception | None
    try:
        outcome = await download(client, oracle)
    except DownloadError as exc:
        outcome = exc
    if isinstance(outcome, DownloadResult):
        oracle.ok(outcome, BODY)  # only the whole object may be reported as saved
    else:
        assert isinstance(outcome, DownloadError)
        oracle.failed(outcome)


# --- stream(): the same faults seen by a consumer --------------------------------------------


async def test_stream_of_a_short_unframed_body_raises(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """A stream whose body closes early without Content-Length raises instead of ending quietly."""
    fake.script_storage(CloseWithoutLength(100_000))
    received = bytearray()

    async def consume() -> None:
        async with client.recordings.stream(WS, REC, "video") as body:
            async for chunk in body:
                received.extend(chunk)

    with anyio.fail_after(5), pytest.raises((TransportError, DownloadError)):
        await consume()
    assert bytes(received) == BODY[:100_000]


async def test_stream_ignoring_range_yields_from_the_offset(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """A stream at an offset that gets the whole body (200) still yields only from the offset."""
    fake.script_storage(IgnoreRange())
    with anyio.fail_after(5):
        async with client.recordings.stream(WS, REC, "video", offset=1000) as body:
            data = b"".join([chunk async for chunk in body])
    assert data == BODY[1000:]
    assert fake.storage_requests()[0].status == 200


async def test_stream_with_a_misaligned_range_is_not_called_past_the_end(
    client: AsyncUserplane, fake: FakeUserplane
) -> None:
    """A misaligned 206 when opening at offset 0 is retried or an integrity failure, not a 416."""
    fake.script_storage(ShiftContentRange(3))

    received = bytearray()

    async def read_all() -> None:
        async with client.recordings.stream(WS, REC, "video") as body:
            async for chunk in body:
                received.extend(chunk)

    with anyio.fail_after(5):
        error = await failure_of(read_all())
    if error is None:
        assert bytes(received) == BODY  # retried with a fresh URL, whole
    else:
        assert isinstance(error, (StorageError, IntegrityError))
        assert not (isinstance(error, StorageError) and error.status == 416), str(error)

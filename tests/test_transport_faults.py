"""The network between the SDK and both halves of Userplane: unreachable hosts, redirects to
live servers, and TLS that must not be trusted.

Fault-matrix rows 10 (connect timeout, a name that does not resolve), 24 (redirects, with a
real ``Location`` naming a second server that must see nothing) and 35 (untrusted or misnamed
certificates: a typed error, one connection, no retry). Every server here listens on
127.0.0.1; the only other traffic is the lookup of a ``.invalid`` name, which cannot resolve.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs
import pytest
import trustme
from aiohttp import web
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.tls import TLSStream

from userplane_async import (
    AsyncUserplane,
    ConnectError,
    RetryPolicy,
    StorageError,
    Timeout,
    TLSError,
    UserplaneAPIError,
    UserplaneError,
)
from userplane_async.testing import FakeClock, FakeResource, FakeUserplane, Redirect

pytestmark = pytest.mark.anyio

SECRET = "uspl_transport0123456789abcdefSECRET"
SIGNATURE = "transportsignature0123"
CREDENTIAL = "AKIATRANSPORT"
QUERY = f"X-Amz-Credential={CREDENTIAL}&X-Amz-Signature={SIGNATURE}"
WS, REC = "ws_net", "rec_net"
BODY = hashlib.shake_256(b"the object, wherever it is served").digest(100_000)
UNRESOLVABLE = "nothing.invalid"  # RFC 6761: never resolves, and is not looked up for real


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    """The fake with a second key, and a recording whose video is BODY."""
    fake_userplane.add_api_key(SECRET)
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(WS, REC, resources={"video": FakeResource(BODY)})
    return fake_userplane


def client_of(base_url: str, **options: Any) -> AsyncUserplane:
    """A client with the secret key, on a virtual clock unless told otherwise."""
    options.setdefault("clock", FakeClock())
    return AsyncUserplane(SECRET, base_url=base_url, **options)


def resource_answer(url: str) -> dict[str, Any]:
    """What the API would answer for REC's video if its presigned URL were ``url``."""
    resource = {"url": url, "type": "video/webm", "size": len(BODY), "captureEnabled": True}
    return {"message": "Video available", "data": {"recordingId": REC, "resource": resource}}


def entries(directory: Path) -> list[Path]:
    """What a download left in ``directory``: nothing, for a download that failed."""
    return list(directory.iterdir())


def resolves(fake: FakeUserplane) -> int:
    return len([r for r in fake.api_requests() if r.route == "recordings.resource"])


def texts_of(error: BaseException) -> list[str]:
    """What a traceback or a log of ``error`` shows, down its chain of causes."""
    texts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen), repr(vars(seen))]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return texts


def assert_no_secret(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    """S: neither the key nor the URL's signing values in the error or any log record."""
    shown = [*texts_of(error), *(r.getMessage() for r in caplog.records), caplog.text]
    for secret in (SECRET, SIGNATURE, CREDENTIAL, "X-Amz-Signature", "X-Amz-Credential"):
        assert all(secret not in text for text in shown), secret


# --- #10: connect timeout, a name that does not resolve --------------------------------------


@contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port whose connects time out: its accept queue is full and never drained.

    With a backlog of 0 Linux queues one connection; SYNs after it are dropped, so a new
    connect neither succeeds nor is refused until the client gives up.
    """
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()[1]


SHORT_CONNECT = Timeout(connect=0.2, read=5.0, total=10.0)


async def test_unresolvable_api_host_is_a_connect_error_after_bounded_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A base URL whose name does not resolve gives ConnectError after every attempt (#10)."""
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    async with client_of(f"https://{UNRESOLVABLE}/api/v1", clock=clock) as client:
        with anyio.fail_after(10), pytest.raises(ConnectError) as caught:
            await client.me()
    assert client.api_calls == client.retry.attempts == 5
    assert len(clock.sleeps) == 4
    assert all(wait <= 0.5 * 2**n for n, wait in enumerate(clock.sleeps))
    assert UNRESOLVABLE in str(caught.value)
    assert_no_secret(caught.value, caplog)


async def test_api_connect_timeout_is_a_connect_error_after_bounded_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connects that never complete time out one by one, then give ConnectError (#10)."""
    caplog.set_level(logging.DEBUG)
    with black_hole() as port:
        policy = RetryPolicy(attempts=3)
        async with client_of(
            f"http://127.0.0.1:{port}/api/v1", timeout=SHORT_CONNECT, retry=policy
        ) as client:
            started = time.monotonic()
            with anyio.fail_after(5), pytest.raises(ConnectError) as caught:
                await client.me()
            elapsed = time.monotonic() - started
    assert str(caught.value) == "timed out while connecting"
    assert client.api_calls == 3
    assert 3 * 0.2 * 0.9 <= elapsed < 3.0  # three connect timeouts, and no total one
    assert_no_secret(caught.value, caplog)


@pytest.mark.parametrize("where", ["unresolvable", "connect-timeout"])
async def test_storage_host_out_of_reach_is_a_connect_error_after_bounded_retries(
    fake: FakeUserplane, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """A presigned URL whose host cannot be reached fails typed, a fresh URL per try (#10)."""
    caplog.set_level(logging.DEBUG)
    with black_hole() as port:
        host = UNRESOLVABLE if where == "unresolvable" else f"127.0.0.1:{port}"
        scheme = "https" if where == "unresolvable" else "http"
        answer = resource_answer(f"{scheme}://{host}/storage/{REC}/video?{QUERY}")
        fake.script("recordings.resource", status=200, body=answer, times=10)
        clock = FakeClock()
        policy = RetryPolicy(attempts=3)
        async with client_of(
            fake.base_url, clock=clock, timeout=SHORT_CONNECT, retry=policy
        ) as client:
            with anyio.fail_after(5), pytest.raises(ConnectError) as caught:
                await client.recordings.download(WS, REC, "video", tmp_path)
    assert resolves(fake) == 3  # every attempt resolved its own URL
    assert len(clock.sleeps) == 2
    assert fake.storage_requests() == []
    assert entries(tmp_path) == []
    assert_no_secret(caught.value, caplog)


# --- #24: redirects to a live server ---------------------------------------------------------


@attrs.define
class Target:
    """A second server on 127.0.0.1 that answers anything well: a followed redirect succeeds."""

    origin: str
    requests: list[tuple[str, dict[str, str]]] = attrs.Factory(list)


@asynccontextmanager
async def redirect_target() -> AsyncIterator[Target]:
    """Serve the API's ``me`` answer under /api/v1 and BODY anywhere else; log every request."""
    target = Target("")

    async def answer(request: web.Request) -> web.Response:
        target.requests.append((request.path_qs, dict(request.headers)))
        if request.path.startswith("/api/v1/"):
            me = {"user": {"id": "usr_elsewhere"}, "stats": {}}
            return web.json_response({"message": "ok", "data": me})
        return web.Response(body=BODY, content_type="video/webm")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        target.origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield target
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_api_redirect_to_a_live_server_is_not_followed(
    fake: FakeUserplane, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """An API redirect whose Location would answer is an error; the target sees nothing (#24)."""
    caplog.set_level(logging.DEBUG)
    async with redirect_target() as target:
        location = f"{target.origin}/api/v1/public/me?X-Amz-Signature={SIGNATURE}"
        fake.script("me", status=status, body=b"", headers={"Location": location})
        async with client_of(fake.base_url) as client:
            with pytest.raises(UserplaneAPIError) as caught:
                await client.me()
    assert caught.value.status == status
    assert "redirects are not followed" in caught.value.message
    assert target.requests == []
    assert [r.status for r in fake.api_requests()] == [status]  # and not retried
    assert_no_secret(caught.value, caplog)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_storage_redirect_to_a_live_server_is_not_followed(
    fake: FakeUserplane, tmp_path: Path, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """A storage redirect to a server holding the very bytes is refused; it sees nothing (#24)."""
    caplog.set_level(logging.DEBUG)
    async with redirect_target() as target:
        location = f"{target.origin}/copy/{REC}/video?{QUERY}"
        fake.script_storage(Redirect(location, status=status))
        async with client_of(fake.base_url) as client:
            with pytest.raises(StorageError) as caught:
                await client.recordings.download(WS, REC, "video", tmp_path)
    assert (caught.value.status, caught.value.recording_id) == (status, REC)
    assert target.requests == []
    [storage] = fake.storage_requests()
    assert storage.status == status
    assert entries(tmp_path) == []
    assert_no_secret(caught.value, caplog)


# --- #35: TLS that must not be trusted -------------------------------------------------------


@attrs.define
class TLSServer:
    """A TLS listener on 127.0.0.1 that counts TCP connections, each one handshake attempt."""

    port: int
    connections: int = 0
    outcomes: list[str] = attrs.Factory(list)  # per connection: how its handshake ended
    _progress: anyio.Event = attrs.Factory(anyio.Event)

    def ended(self, outcome: str) -> None:
        self.outcomes.append(outcome)
        self._progress.set()
        self._progress = anyio.Event()

    async def settled(self) -> list[str]:
        """The handshakes' outcomes, once every connection so far has one."""
        with anyio.fail_after(5):
            while len(self.outcomes) < self.connections:
                await self._progress.wait()
        return self.outcomes


REFUSED = "refused"  # the client sent an alert and hung up: it did not trust us


@asynccontextmanager
async def tls_server(cert: trustme.LeafCert) -> AsyncIterator[TLSServer]:
    """Accept connections and try a TLS handshake with ``cert``; close each one after it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server = TLSServer(listener.extra(SocketAttribute.local_port))  # noqa: S610 - anyio, not Django

    async def handshake(stream: SocketStream) -> None:
        server.connections += 1
        async with stream:
            try:
                with anyio.fail_after(5):
                    tls = await TLSStream.wrap(stream, server_side=True, ssl_context=context)
            except (anyio.BrokenResourceError, ssl.SSLError):
                # The client's alert: anyio reports it as BrokenResourceError, or passes on
                # SSLZeroReturnError with some OpenSSL builds (Debian's Python 3.11).
                server.ended(REFUSED)
            except Exception as exc:  # recorded: the test asserts how each handshake ended
                server.ended(type(exc).__name__)
            else:
                server.ended("trusted")
                await tls.aclose()  # a client that trusted us gets no HTTP answer

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handshake)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@pytest.fixture
def ca() -> trustme.CA:
    """A throwaway certificate authority that nothing trusts unless told to."""
    return trustme.CA()


async def test_untrusted_api_certificate_is_a_tls_error_never_retried(
    ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    """An API certificate from an unknown CA fails each call at one handshake (#35)."""
    caplog.set_level(logging.DEBUG)
    async with tls_server(ca.issue_cert("127.0.0.1")) as server:
        async with client_of(f"https://127.0.0.1:{server.port}/api/v1") as client:
            errors: list[UserplaneError] = []
            for _ in range(2):
                with anyio.fail_after(5), pytest.raises(TLSError) as caught:
                    await client.me()
                errors.append(caught.value)
        # One connection per call, each ending in the client's alert: no retry, no fallback.
        assert await server.settled() == [REFUSED, REFUSED]
    assert client.api_calls == 2
    for error in errors:
        assert_no_secret(error, caplog)


async def test_api_certificate_for_another_name_is_a_tls_error_never_retried(
    ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    """A trusted CA's certificate for another host name fails at one handshake (#35)."""
    caplog.set_level(logging.DEBUG)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with tls_server(ca.issue_cert("elsewhere.test")) as server:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as session,
            client_of(f"https://127.0.0.1:{server.port}/api/v1", session=session) as client,
        ):
            with anyio.fail_after(5), pytest.raises(TLSError) as caught:
                await client.me()
        assert await server.settled() == [REFUSED]
    assert client.api_calls == 1
    assert_no_secret(caught.value, caplog)


async def test_untrusted_storage_certificate_is_a_tls_error_never_retried(
    ca: trustme.CA, fake: FakeUserplane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A storage URL on an untrusted certificate fails at one handshake and one resolve (#35)."""
    caplog.set_level(logging.DEBUG)
    async with tls_server(ca.issue_cert("127.0.0.1")) as server:
        url = f"https://127.0.0.1:{server.port}/storage/{REC}/video?{QUERY}"
        fake.script("recordings.resource", status=200, body=resource_answer(url), times=10)
        async with client_of(fake.base_url) as client:
            with anyio.fail_after(5), pytest.raises(TLSError) as caught:
                await client.recordings.download(WS, REC, "video", tmp_path)
        assert await server.settled() == [REFUSED]
    assert resolves(fake) == 1
    assert entries(tmp_path) == []
    assert_no_secret(caught.value, caplog)

"""The example web apps (examples/) serve videos to browsers: Range, If-Range, errors, leaving.

Each app runs as written, on a real socket (aiohttp's runner; uvicorn for Starlette), with
its one client pointed at the fake through USERPLANE_API_KEY and USERPLANE_BASE_URL. The
test plays the browsers: Safari probes with ``bytes=0-1``, Chrome asks for ``bytes=0-``
and hangs up when the viewer seeks.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import re
import socket
import sys
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import pytest
import uvicorn
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from userplane_async import AsyncUserplane, ByteRange
from userplane_async.testing import FakeResource, FakeUserplane, ResetAfter
from userplane_async.testing._demo import sample
from userplane_async.web._reply import Asked
from userplane_async.web.starlette import ResourceResponse

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parent.parent / "examples"
WS = "ws_demo"
SAMPLE = "rec_demo_full"  # the demo's real WebM
LONG = "rec_web_long"
# 64 MiB, more than all the socket buffers between storage and browser hold, of bytes that
# never repeat at any offset (a misplaced range cannot pass for the right one).
LONG_VIDEO = random.Random(9).randbytes(64 * 1024 * 1024)  # noqa: S311 - test data, not keys
SEEK = len(LONG_VIDEO) - 1_000_003  # a seek near the end: the rest is read whole


def load(name: str) -> ModuleType:
    """An example, imported from its file (examples/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def settled(predicate: Callable[[], bool]) -> None:
    """Let the in-process servers (they share our event loop) catch up: bounded, no sleeping."""
    with anyio.fail_after(5):
        while not predicate():
            await anyio.lowlevel.checkpoint()


class App:
    """A running example: its base URL, and how many requests its handlers have finished."""

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.finished = 0


@asynccontextmanager
async def aiohttp_app() -> AsyncIterator[App]:
    app = load("aiohttp_video").make_app()
    served = App()

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            served.finished += 1

    app.middlewares.append(count)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        served.url = f"http://127.0.0.1:{site.port}"
        yield served
    finally:
        await runner.cleanup()


@asynccontextmanager
async def starlette_app() -> AsyncIterator[App]:
    app = load("starlette_video").app
    served = App()

    async def count(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                served.finished += 1

    config = uvicorn.Config(count, lifespan="on", http="h11", log_config=None)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        # Startup (lifespan, then listening) and shutdown without serve()'s signal handlers
        # and its 0.1 s housekeeping loop.
        await server.startup(sockets=[sock])
        try:
            served.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            yield served
        finally:
            await server.shutdown(sockets=[sock])


APPS = {"aiohttp": aiohttp_app, "starlette": starlette_app}


@pytest.fixture
def fake(fake_userplane: FakeUserplane, monkeypatch: pytest.MonkeyPatch) -> FakeUserplane:
    """The demo fake, plus a long video, in the environment as `fake-server` prints it."""
    fake_userplane.add_recording(WS, LONG, resources={"video": FakeResource(LONG_VIDEO)})
    monkeypatch.setenv("USERPLANE_API_KEY", fake_userplane.api_key)
    monkeypatch.setenv("USERPLANE_BASE_URL", fake_userplane.base_url)
    return fake_userplane


@pytest.fixture(params=sorted(APPS))
async def app(request: pytest.FixtureRequest, fake: FakeUserplane) -> AsyncIterator[App]:
    async with APPS[request.param]() as served:
        yield served


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def video_url(app: App, recording_id: str, workspace_id: str = WS) -> str:
    return f"{app.url}/ws/{workspace_id}/rec/{recording_id}/video"


async def get(
    browser: aiohttp.ClientSession, url: str | URL, **headers: str
) -> tuple[int, CIMultiDict[str], bytes]:
    async with browser.get(url, headers=headers) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


def resolves(fake: FakeUserplane, recording_id: str) -> int:
    """API calls that resolved a URL for the recording's video."""
    return sum(
        r.route == "recordings.resource" and r.path.endswith(f"/{recording_id}/video")
        for r in fake.api_requests()
    )


def trouble(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records a server operator would look at: warnings and worse, or any traceback."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


# --- browsers ------------------------------------------------------------------------------


async def test_safari_probes_then_plays_then_seeks(
    app: App, fake: FakeUserplane, browser: aiohttp.ClientSession
) -> None:
    """Safari's 0-1 probe gets a 206 of two bytes; then the whole video; then a seek."""
    video, url = sample("video"), video_url(app, SAMPLE)
    size = len(video)

    status, headers, body = await get(browser, url, Range="bytes=0-1")
    assert (status, body) == (206, video[:2])
    assert headers["Content-Range"] == f"bytes 0-1/{size}"
    assert headers["Content-Length"] == "2"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "video/webm"
    etag = headers["ETag"]

    status, headers, body = await get(browser, url, Range="bytes=0-")
    assert (status, headers["Content-Range"], body) == (206, f"bytes 0-{size - 1}/{size}", video)
    assert headers["ETag"] == etag

    seek = size // 3
    status, headers, body = await get(browser, url, Range=f"bytes={seek}-", **{"If-Range": etag})
    assert (status, headers["Content-Range"]) == (206, f"bytes {seek}-{size - 1}/{size}")
    assert body == video[seek:]
    assert resolves(fake, SAMPLE) == 3  # one API call per request the browser makes


async def test_chrome_plays_then_seeks_away_quietly(
    app: App,
    fake: FakeUserplane,
    browser: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Chrome hangs up mid-body to seek: nothing is logged as an error, storage is let go."""
    caplog.set_level(logging.DEBUG, logger="userplane_async.web")
    url = video_url(app, LONG)
    with anyio.fail_after(10):
        async with browser.get(url, headers={"Range": "bytes=0-"}) as response:
            assert response.status == 206
            assert await response.content.readexactly(64 * 1024) == LONG_VIDEO[: 64 * 1024]
            response.close()  # the viewer seeks: Chrome drops this connection
        status, _, body = await get(browser, url, Range=f"bytes={SEEK}-")
        assert (status, body) == (206, LONG_VIDEO[SEEK:])
        await settled(lambda: app.finished == 2 and len(fake.storage_requests()) == 2)
    statuses = {r.headers["range"]: r.status for r in fake.storage_requests()}
    assert statuses == {"bytes=0-": 0, f"bytes={SEEK}-": 206}  # the first was let go mid-body
    assert trouble(caplog) == []
    assert any("went away" in r.getMessage() for r in caplog.records), "not the disconnect path"


async def test_a_plain_get_is_a_200_of_everything(
    app: App, fake: FakeUserplane, browser: aiohttp.ClientSession
) -> None:
    """Without Range: 200, the whole video, its length, and Accept-Ranges to invite seeking."""
    status, headers, body = await get(browser, video_url(app, SAMPLE))
    assert (status, body) == (200, sample("video"))
    assert headers["Content-Length"] == str(len(body))
    assert headers["Accept-Ranges"] == "bytes"
    assert "Content-Range" not in headers


async def test_head_sends_the_headers_only(
    app: App, fake: FakeUserplane, browser: aiohttp.ClientSession
) -> None:
    """HEAD gets the headers a GET would, and no body."""
    async with browser.head(video_url(app, SAMPLE), headers={"Range": "bytes=0-1"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 0-1/{len(sample('video'))}"
        assert await response.read() == b""


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Range": "bytes=0-1,5-6"}, 200, id="several-ranges"),
        pytest.param({"Range": "bytes=9-2"}, 200, id="backwards"),
        pytest.param({"Range": "pages=1"}, 200, id="another-unit"),
        pytest.param(
            {"Range": "bytes=0-1", "If-Range": '"another-version"'}, 200, id="stale-if-range"
        ),
        pytest.param({"Range": "bytes=0-1", "If-Range": 'W/"weak"'}, 200, id="weak-if-range"),
        pytest.param(
            {"Range": "bytes=0-1", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"},
            200,
            id="date-if-range",
        ),
    ],
)
async def test_what_cannot_be_served_as_a_range_gets_everything(
    app: App,
    fake: FakeUserplane,
    browser: aiohttp.ClientSession,
    headers: dict[str, str],
    status: int,
) -> None:
    """Several ranges, a malformed Range or an If-Range that does not match: 200 and all bytes."""
    got, answered, body = await get(browser, video_url(app, SAMPLE), **headers)
    assert (got, body) == (status, sample("video"))
    assert "Content-Range" not in answered


async def test_a_range_past_the_end_is_416(
    app: App, fake: FakeUserplane, browser: aiohttp.ClientSession
) -> None:
    """A range that starts past the end: 416 with Content-Range bytes */SIZE."""
    size = len(sample("video"))
    status, headers, _ = await get(browser, video_url(app, SAMPLE), Range=f"bytes={size}-")
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    ("workspace_id", "recording_id", "status", "text"),
    [
        pytest.param(WS, "rec_nobody", 404, "not found", id="unknown-recording"),
        pytest.param("ws_nobody", SAMPLE, 404, "not found", id="unknown-workspace"),
        pytest.param(WS, "r" * 200, 404, "IDs have at most", id="no-such-id"),
        pytest.param(WS, "rec_demo_deleted", 410, "", id="deleted"),
        pytest.param(WS, "rec_demo_no_video", 404, "Video not captured", id="not-captured"),
    ],
)
async def test_missing_videos_are_4xx_not_500(
    app: App,
    fake: FakeUserplane,
    browser: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    workspace_id: str,
    recording_id: str,
    status: int,
    text: str,
) -> None:
    """Unknown → 404, deleted → 410, not captured → 404 saying so; no traceback logged."""
    got, _, body = await get(browser, video_url(app, recording_id, workspace_id))
    assert got == status
    assert text.lower() in body.decode().lower()
    assert trouble(caplog) == []


async def test_a_spent_api_budget_is_503_with_retry_after(
    app: App, fake: FakeUserplane, browser: aiohttp.ClientSession
) -> None:
    """A 429 with a wait too long to sleep through is the viewer's 503, saying how long."""
    fake.script("recordings.resource", status=429, retry_after="3600")
    status, headers, _ = await get(browser, video_url(app, SAMPLE))
    assert (status, headers["Retry-After"]) == (503, "3600")


async def test_a_storage_break_mid_body_cuts_the_connection(
    app: App,
    fake: FakeUserplane,
    browser: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Storage failing after the headers went out is an error: logged, the body cut short."""
    fake.script_storage(ResetAfter(100_000), recording_id=LONG)
    with anyio.fail_after(10):
        async with browser.get(video_url(app, LONG)) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        await settled(lambda: app.finished == 1)
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


# --- the aiohttp example's redirect alternative ----------------------------------------------


@pytest.fixture
async def aiohttp_example(fake: FakeUserplane) -> AsyncIterator[App]:
    async with aiohttp_app() as served:
        yield served


async def test_the_redirect_hands_the_browser_a_fresh_url(
    aiohttp_example: App, fake: FakeUserplane, browser: aiohttp.ClientSession
) -> None:
    """/video-url answers 302 to a presigned URL the browser fetches itself, uncached."""
    url = f"{video_url(aiohttp_example, SAMPLE)}-url"
    async with browser.get(url, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Cache-Control"] == "no-store"
        location = URL(response.headers["Location"], encoded=True)  # as a browser sends it
    async with aiohttp.ClientSession() as storage_only:  # no cookies, no key: the URL suffices
        status, _, body = await get(storage_only, location, Range="bytes=0-1")
    assert (status, body) == (206, sample("video")[:2])
    assert resolves(fake, SAMPLE) == 1


@pytest.mark.parametrize(
    ("recording_id", "status"),
    [("rec_nobody", 404), ("r" * 200, 404), ("rec_demo_deleted", 410), ("rec_demo_no_video", 404)],
)
async def test_the_redirect_maps_missing_videos(
    aiohttp_example: App, browser: aiohttp.ClientSession, recording_id: str, status: int
) -> None:
    """The redirect route answers missing videos as the proxying one does."""
    url = f"{video_url(aiohttp_example, recording_id)}-url"
    async with browser.get(url, allow_redirects=False) as response:
        assert response.status == status


# --- the examples as a reader runs them --------------------------------------------------------


@asynccontextmanager
async def running(name: str, fake: FakeUserplane, banner: re.Pattern[bytes]) -> AsyncIterator[str]:
    """``python examples/NAME.py`` on a free port; yields its base URL once it says it's up."""
    env = {
        "USERPLANE_API_KEY": fake.api_key,
        "USERPLANE_BASE_URL": fake.base_url,
        "PORT": "0",
        "PYTHONUNBUFFERED": "1",
        "PATH": "",
    }
    command = [sys.executable, str(EXAMPLES / f"{name}.py")]
    async with await anyio.open_process(command, env=env) as process:
        try:
            with anyio.fail_after(20):
                yield await _banner(process, banner)
        finally:
            process.terminate()


async def _banner(process: anyio.abc.Process, banner: re.Pattern[bytes]) -> str:
    seen = b""
    assert process.stdout is not None
    assert process.stderr is not None
    streams = {"out": process.stdout, "err": process.stderr}
    async with anyio.create_task_group() as group:
        found: list[str] = []

        async def watch(stream: anyio.abc.ByteReceiveStream) -> None:
            nonlocal seen
            async for data in stream:
                seen += data
                if match := banner.search(seen):
                    found.append(match[1].decode())
                    group.cancel_scope.cancel()

        for stream in streams.values():
            group.start_soon(watch, stream)
    assert found, seen.decode(errors="replace")
    return found[0]


@pytest.mark.parametrize(
    ("name", "banner"),
    [
        ("aiohttp_video", rb"Running on (http://127\.0\.0\.1:\d+)"),
        ("starlette_video", rb"Uvicorn running on (http://127\.0\.0\.1:\d+)"),
    ],
)
async def test_the_example_runs_as_a_script(
    fake: FakeUserplane, browser: aiohttp.ClientSession, name: str, banner: bytes
) -> None:
    """``python examples/....py`` serves Safari's probe with the environment fake-server prints."""
    async with running(name, fake, re.compile(banner)) as url:
        status, _, body = await get(browser, f"{url}/ws/{WS}/rec/{SAMPLE}/video", Range="bytes=0-1")
    assert (status, body) == (206, sample("video")[:2])


# --- below the frameworks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "if_range", "expected"),
    [
        (None, None, Asked()),
        (None, '"abc"', Asked()),  # If-Range without Range means nothing
        ("bytes=0-1", None, Asked(ByteRange(0, 1))),
        ("bytes=-500", '"abc"', Asked(ByteRange(-500), '"abc"')),
        ("bytes=0-1", ' "abc" ', Asked(ByteRange(0, 1), '"abc"')),
        ("bytes=0-1", 'W/"abc"', Asked()),  # a weak tag never matches: everything
        ("bytes=0-1", "Wed, 21 Oct 2015 07:28:00 GMT", Asked()),  # no Last-Modified to match
        ("bytes=0-1,4-5", '"abc"', Asked()),
    ],
)
def test_what_a_request_asks_for(
    range_header: str | None, if_range: str | None, expected: Asked
) -> None:
    """Range and If-Range headers become a range to stream, and an ETag it depends on."""
    assert Asked.of(range_header, if_range) == expected


async def test_an_asgi_send_that_fails_ends_the_answer_quietly(
    client: AsyncUserplane, fake: FakeUserplane, caplog: pytest.LogCaptureFixture
) -> None:
    """ASGI 2.4 servers raise OSError from send() once the client has gone: no error, closed."""
    sent: list[MutableMapping[str, Any]] = []
    never = anyio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if len(sent) == 3:
            raise OSError("the client has gone")
        sent.append(message)

    scope = {"type": "http", "method": "GET", "asgi": {"spec_version": "2.4"}, "headers": []}
    response = ResourceResponse(client, WS, LONG, "video", Asked())
    with anyio.fail_after(5):
        await response(scope, receive, send)
        await settled(lambda: len(fake.storage_requests()) == 1)
    assert fake.storage_requests()[0].status == 0  # closed mid-body
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 2
    assert response.status_code == 200
    assert trouble(caplog) == []


async def test_the_core_never_imports_a_web_framework() -> None:
    """``import userplane_async`` (or its aiohttp helper) loads no Starlette, no web helpers."""
    code = (
        "import sys, userplane_async, userplane_async.testing\n"
        "core = sorted(m for m in sys.modules if m.startswith(('starlette', 'userplane_async.web')))\n"
        "import userplane_async.web.aiohttp\n"
        "print(core, [m for m in sys.modules if m.startswith('starlette')])\n"
    )
    done = await anyio.run_process([sys.executable, "-c", code])
    assert done.stdout.decode().strip() == "[] []"

"""The README's aiohttp.web handler: a recording's video streamed on to a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from userplane_async import AsyncUserplane, ResourceUnavailableError
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio

CLIENT = web.AppKey("client", AsyncUserplane)


# --- as in the README ---------------------------------------------------------------------
async def video(request: web.Request) -> web.StreamResponse:
    client = request.app[CLIENT]
    ws, rec = request.match_info["ws"], request.match_info["rec"]
    try:
        async with client.recordings.stream(ws, rec, "video") as body:
            response = web.StreamResponse(headers={"Content-Type": body.content_type or ""})
            response.content_length = body.size
            await response.prepare(request)
            async for chunk in body:
                await response.write(chunk)
            await response.write_eof()
            return response
    except ResourceUnavailableError as exc:
        raise web.HTTPNotFound(text=exc.message) from None


# -------------------------------------------------------------------------------------------


@pytest.fixture
async def app_url(fake_userplane: FakeUserplane) -> AsyncIterator[str]:
    fake_userplane.add_workspace("ws_web")
    fake_userplane.add_recording(
        "ws_web", "rec_v", resources={"video": FakeResource(b"v" * 300_000)}
    )
    fake_userplane.add_recording(
        "ws_web", "rec_none", resources={"video": FakeResource(captured=False)}
    )
    async with AsyncUserplane(fake_userplane.api_key, base_url=fake_userplane.base_url) as client:
        app = web.Application()
        app[CLIENT] = client
        app.router.add_get("/videos/{ws}/{rec}", video)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


async def test_handler_streams_the_video(app_url: str) -> None:
    """A browser asking the web app gets the recording's bytes with type and length."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{app_url}/videos/ws_web/rec_v") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/webm"
            assert response.content_length == 300_000
            assert await response.read() == b"v" * 300_000
        async with session.get(f"{app_url}/videos/ws_web/rec_none") as response:
            assert response.status == 404

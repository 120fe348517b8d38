"""Recordings' videos for browsers, from an aiohttp.web app: seeking works, Safari plays.

Try it against the fake Userplane::

    userplane-async fake-server          # in one terminal; paste its export lines in another
    python examples/aiohttp_video.py     # PORT=8080 by default
    # open http://127.0.0.1:8080/ws/ws_demo/rec/rec_demo_full in a browser

``/ws/{ws}/rec/{rec}/video`` passes the bytes on, answering ``Range`` requests with 206:
one API call per request the browser makes (a seek is a request). ``.../video-url`` hands the
browser the short-lived presigned URL instead (a redirect): one API call per page view, but
the viewer sees the URL, and it expires (a long pause, then a seek, may fail).
"""

from __future__ import annotations

import html
import os
from collections.abc import AsyncIterator

from aiohttp import web
from yarl import URL

from userplane_async import AsyncUserplane, GoneError, InvalidIDError, NotFoundError
from userplane_async.web.aiohttp import serve_resource

CLIENT = web.AppKey("userplane", AsyncUserplane)


async def video(request: web.Request) -> web.StreamResponse:
    ws, rec = request.match_info["ws"], request.match_info["rec"]
    return await serve_resource(request, request.app[CLIENT], ws, rec, "video")


async def video_url(request: web.Request) -> web.StreamResponse:
    ws, rec = request.match_info["ws"], request.match_info["rec"]
    try:
        resource = await request.app[CLIENT].recordings.video(ws, rec)
    except (NotFoundError, InvalidIDError) as exc:  # no such recording, or no such ID at all
        raise web.HTTPNotFound(text=exc.message) from None
    except GoneError as exc:
        raise web.HTTPGone(text=exc.message) from None
    if resource.url is None:  # not captured
        raise web.HTTPNotFound(text=resource.message or "no video for this recording")
    # Byte for byte (re-quoting breaks the signature); it lives for minutes: never cached.
    location = URL(resource.url, encoded=True)
    raise web.HTTPFound(location, headers={"Cache-Control": "no-store"})


async def page(request: web.Request) -> web.Response:
    src = html.escape(f"{request.path}/video", quote=True)
    return web.Response(text=f'<video controls src="{src}"></video>', content_type="text/html")


async def userplane(app: web.Application) -> AsyncIterator[None]:
    """One long-lived client for the whole app: opened on startup, closed on shutdown."""
    async with AsyncUserplane() as client:  # USERPLANE_API_KEY and USERPLANE_BASE_URL
        app[CLIENT] = client
        yield


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(userplane)
    app.router.add_get("/ws/{ws}/rec/{rec}", page)
    app.router.add_get("/ws/{ws}/rec/{rec}/video", video)
    app.router.add_get("/ws/{ws}/rec/{rec}/video-url", video_url)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))

"""Recordings' videos for browsers, from a Starlette app: seeking works, Safari plays.

Try it against the fake Userplane (needs ``pip install starlette uvicorn``)::

    userplane-async fake-server          # in one terminal; paste its export lines in another
    python examples/starlette_video.py   # PORT=8000 by default
    # open http://127.0.0.1:8000/ws/ws_demo/rec/rec_demo_full/video in a browser

``/ws/{ws}/rec/{rec}/video`` passes the bytes on, answering ``Range`` requests with 206:
one API call per request the browser makes (a seek is a request).

FastAPI is built on Starlette, so the same response works there; with this ``lifespan``::

    app = FastAPI(lifespan=lifespan)

    @app.get("/ws/{ws}/rec/{rec}/video")
    async def video(request: Request, ws: str, rec: str) -> Response:
        return serve_resource(request, request.state.userplane, ws, rec, "video")
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from userplane_async import AsyncUserplane
from userplane_async.web.starlette import serve_resource


async def video(request: Request) -> Response:
    ws, rec = request.path_params["ws"], request.path_params["rec"]
    return serve_resource(request, request.state.userplane, ws, rec, "video")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AsyncUserplane]]:
    """One long-lived client for the whole app: opened on startup, closed on shutdown."""
    async with AsyncUserplane() as client:  # USERPLANE_API_KEY and USERPLANE_BASE_URL
        yield {"userplane": client}  # lifespan state: request.state.userplane


app = Starlette(routes=[Route("/ws/{ws}/rec/{rec}/video", video)], lifespan=lifespan)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))

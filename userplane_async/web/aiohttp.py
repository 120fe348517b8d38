"""Serve a recording's resource from an ``aiohttp.web`` handler, ``Range`` requests included.

```python
async def video(request: web.Request) -> web.StreamResponse:
    ws, rec = request.match_info["ws"], request.match_info["rec"]
    return await serve_resource(request, request.app[CLIENT], ws, rec, "video")
```

See ``examples/aiohttp_video.py`` for a whole app.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from .._client import AsyncUserplane
from .._errors import UserplaneError
from .._models import ResourceKind
from .._stream import ResourceStream
from ._reply import Asked, logger, open_resource, refusal, reply_headers

__all__ = ["serve_resource"]


async def serve_resource(
    request: web.Request,
    client: AsyncUserplane,
    workspace_id: str,
    recording_id: str,
    kind: ResourceKind | str,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Answer ``request`` with the resource: 200 whole, 206 for its ``Range``, or an error.

    ``Range`` with one range gets a 206 with its ``Content-Range`` (several ranges, or a
    malformed header, get the whole object: HTTP lets a server ignore them); ``If-Range``
    with an ETag the object no longer has gets the whole object. Unknown recording → 404,
    deleted → 410, not captured → 404 with the API's explanation, a range past the end →
    416 with ``Content-Range: bytes */SIZE``, the API budget spent → 503. Other errors
    propagate (aiohttp answers 500); so does a storage failure after the first bytes went
    out, which aiohttp logs before cutting the connection, so the browser asks again.

    A browser that goes away mid-body (it does when the viewer seeks) is no error: nothing
    is logged above DEBUG and the storage response is closed. aiohttp notices at the next
    write; while storage stalls that is after the read timeout, unless the app runs with
    ``handler_cancellation=True``. ``headers`` are sent with the 200 or 206
    (Cache-Control, Content-Disposition, ...). Each call spends one API call.
    """
    asked = Asked.of(request.headers.get("Range"), request.headers.get("If-Range"))
    response: web.StreamResponse | None = None
    try:
        async with open_resource(client, workspace_id, recording_id, kind, asked) as body:
            response = web.StreamResponse(status=body.status, headers=reply_headers(body, headers))
            await _send(request, response, body)
            return response
    except UserplaneError as exc:
        if response is not None:  # the headers went out: no other answer can be sent
            if not _connected(request):  # it broke after the client left (say a stall)
                logger.debug("the client went away; then the stream failed: %s", exc)
                return response
            raise
        reply = refusal(exc)
        if reply is None:
            raise
        return web.Response(status=reply.status, text=reply.text, headers=reply.headers)


def _connected(request: web.Request) -> bool:
    return request.transport is not None and not request.transport.is_closing()


async def _send(request: web.Request, response: web.StreamResponse, body: ResourceStream) -> None:
    sent = 0
    try:
        await response.prepare(request)
        if request.method != "HEAD":
            async for chunk in body:
                await response.write(chunk)
                sent += len(chunk)
        await response.write_eof()
    except ConnectionError:  # ClientConnectionResetError from write(), or a lost drain
        logger.debug("the client went away after %d of %s bytes", sent, body.content_length)

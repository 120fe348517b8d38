"""Serve a recording's resource from a Starlette (or FastAPI) endpoint, ``Range`` included.

```python
async def video(request: Request) -> Response:
    ws, rec = request.path_params["ws"], request.path_params["rec"]
    return serve_resource(request, request.app.state.userplane, ws, rec, "video")
```

Like Starlette's own ``FileResponse``, the response does its work when it is sent: it
opens the stream (one API call), answers 200, 206 or an error, and closes the stream
before it returns, in the task that sends it. A response that is never sent costs nothing.
See ``examples/starlette_video.py`` for a whole app. Needs ``starlette`` (``pip install
userplane-async[starlette]``); the rest of the SDK never imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from .._client import AsyncUserplane
from .._errors import UserplaneError
from .._models import ResourceKind
from .._stream import ResourceStream
from ._reply import Asked, logger, open_resource, refusal, reply_headers

__all__ = ["ResourceResponse", "serve_resource"]


def serve_resource(
    request: Request,
    client: AsyncUserplane,
    workspace_id: str,
    recording_id: str,
    kind: ResourceKind | str,
    *,
    headers: Mapping[str, str] | None = None,
) -> ResourceResponse:
    """The response to ``request``: 200 whole, 206 for its ``Range``, or an error.

    Return it from the endpoint (it is not awaited: it works when Starlette sends it).
    ``Range`` with one range gets a 206 with its ``Content-Range`` (several ranges, or a
    malformed header, get the whole object: HTTP lets a server ignore them); ``If-Range``
    with an ETag the object no longer has gets the whole object. Unknown recording → 404,
    deleted → 410, not captured → 404 with the API's explanation, a range past the end →
    416 with ``Content-Range: bytes */SIZE``, the API budget spent → 503. Other errors
    propagate (the server answers 500); so does a storage failure after the first bytes
    went out, which the server logs before cutting the connection, so the browser asks again.

    A browser that goes away mid-body (it does when the viewer seeks) is no error: nothing
    is logged above DEBUG and the storage response is closed. ``headers`` are sent with the
    200 or 206 (Cache-Control, Content-Disposition, ...).
    """
    asked = Asked.of(request.headers.get("range"), request.headers.get("if-range"))
    return ResourceResponse(client, workspace_id, recording_id, kind, asked, headers=headers)


class ResourceResponse(Response):
    """A resource's bytes, or the error in their place, worked out when the response is sent.

    ``status_code`` is 200 until then, and what was sent after.
    """

    def __init__(
        self,
        client: AsyncUserplane,
        workspace_id: str,
        recording_id: str,
        kind: ResourceKind | str,
        asked: Asked,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(headers)  # as any Response: ``response.headers`` may add to them
        self._client, self._asked = client, asked
        self._resource = (workspace_id, recording_id, kind)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the answer; a client that leaves ends it early, quietly."""
        failure: Exception | None = None
        delivery = _Delivery()
        async with anyio.create_task_group() as watching:
            watching.start_soon(delivery.watch, receive, watching.cancel_scope)
            try:
                await self._respond(scope, receive, send, delivery)
            except OSError:  # what ASGI 2.4 servers' send() raises once the client has gone
                delivery.leave()
            except Exception as exc:  # raised after the task group, not inside an ExceptionGroup
                failure = exc
            finally:
                delivery.done = True
                watching.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, delivery: _Delivery
    ) -> None:
        started = False
        try:
            async with open_resource(self._client, *self._resource, self._asked) as body:
                self.status_code = body.status
                started = True
                await self._send(send, body, delivery, head=scope.get("method") == "HEAD")
        except UserplaneError as exc:
            if started:  # the headers went out: no other answer can be sent
                if delivery.left:  # it broke after the client left
                    return
                raise
            reply = refusal(exc)
            if reply is None:
                raise
            self.status_code = reply.status
            answer = PlainTextResponse(reply.text, reply.status, headers=dict(reply.headers))
            await answer(scope, receive, send)

    async def _send(
        self, send: Send, body: ResourceStream, delivery: _Delivery, *, head: bool
    ) -> None:
        headers = MutableHeaders(raw=list(self.raw_headers))
        for name, value in reply_headers(body, None).items():  # ours replace the caller's
            headers[name] = value
        await send({"type": "http.response.start", "status": body.status, "headers": headers.raw})
        if not head:
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if delivery.left:  # send() drops what comes after a disconnect, quietly
                    return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Delivery:
    """Whether the client is still there to receive the answer."""

    def __init__(self) -> None:
        self.left = False
        self.done = False

    def leave(self) -> None:
        if not self.left:
            self.left = True
            logger.debug("the client went away before the answer was complete")

    async def watch(self, receive: Receive, scope: anyio.CancelScope) -> None:
        """Note when the client leaves, and cancel a wait for storage (servers of ASGI < 2.4
        say so only here). The sending loop checks too: while bytes keep coming, the
        cancellation may not reach it."""
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.done:  # servers also say "disconnect" once the answer is complete
            self.leave()
            scope.cancel()

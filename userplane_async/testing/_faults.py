"""Scripted faults: canned answers (or delays) for the next requests to a route."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from aiohttp import web

from ._http import RATE_LIMITED_MESSAGE
from ._routes import ROUTE_NAMES, STORAGE_ROUTE
from ._s3 import s3_error

ANY_ROUTE = "*"

_API_ERRORS = {
    429: ("RATE_LIMITED", RATE_LIMITED_MESSAGE),
    500: ("INTERNAL_ERROR", "Internal server error"),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable"),
}
_S3_ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


@attrs.define
class Script:
    """One scripted answer, used for the next ``remaining`` matching requests."""

    route: str
    status: int
    remaining: int
    retry_after: str | None
    body: bytes | Mapping[str, Any] | None
    delay: float
    content_type: str | None
    headers: Mapping[str, str] = attrs.Factory(dict)
    stream: Iterable[bytes] | None = None

    @property
    def passes_through(self) -> bool:
        """A 200 without a body, a stream or headers only delays the real answer."""
        return self.status == 200 and self.body is None and self.stream is None and not self.headers

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": self.content_type or content_type}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        headers.update(self.headers)
        return headers

    def stream_response(self) -> web.StreamResponse:
        """The head of a streamed answer: no ``Content-Length``, so chunked on the wire."""
        return web.StreamResponse(status=self.status, headers=self._headers("application/json"))

    def response(self, route: str) -> web.Response:
        """The scripted answer; without a body, the documented error for the status."""
        if isinstance(self.body, bytes):
            headers = self._headers("application/octet-stream")
            return web.Response(status=self.status, body=self.body, headers=headers)
        if self.body is not None:
            payload = json.dumps(dict(self.body)).encode()
            return web.Response(
                status=self.status, body=payload, headers=self._headers("application/json")
            )
        if route == STORAGE_ROUTE:
            code, message = _S3_ERRORS.get(self.status, ("Scripted", "Scripted response"))
            answer = s3_error(self.status, code, message)
            answer.headers.update(self._headers("application/xml"))
            return answer
        code, message = _API_ERRORS.get(self.status, ("SCRIPTED", "Scripted response"))
        payload = json.dumps({"error": code, "message": message}).encode()
        return web.Response(
            status=self.status, body=payload, headers=self._headers("application/json")
        )


class Scripts:
    """Scripts in the order they were added; the first one matching a route answers."""

    def __init__(self) -> None:
        self._queue: list[Script] = []

    def add(
        self,
        route: str,
        *,
        status: int = 503,
        times: int = 1,
        retry_after: str | None = None,
        body: bytes | Mapping[str, Any] | None = None,
        delay: float = 0.0,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        stream: Iterable[bytes] | None = None,
    ) -> None:
        if route != ANY_ROUTE and route not in ROUTE_NAMES:
            raise ValueError(f"unknown route {route!r}; expected one of {sorted(ROUTE_NAMES)}")
        if times < 1 or delay < 0 or not 100 <= status <= 599:
            raise ValueError("times must be >= 1, delay >= 0 and status an HTTP status")
        if stream is not None and body is not None:
            raise ValueError("give a body or a stream of chunks, not both")
        extra = dict(headers or {})
        self._queue.append(
            Script(route, status, times, retry_after, body, delay, content_type, extra, stream)
        )

    def take(self, route: str) -> Script | None:
        """Use up one answer of the first script for ``route`` (``*`` covers API routes)."""
        for script in self._queue:
            if script.route == route or (script.route == ANY_ROUTE and route != STORAGE_ROUTE):
                script.remaining -= 1
                if script.remaining == 0:
                    self._queue.remove(script)
                return script
        return None

    def clear(self) -> None:
        self._queue.clear()

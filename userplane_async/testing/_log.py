"""The fake's request log: one frozen record per request, for assertions in tests."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from aiohttp import web


@attrs.frozen
class RequestRecord:
    """One request as the fake saw it and what it answered.

    ``time`` is the fake's clock (``monotonic()``) when the request arrived; ``path`` and
    ``query`` are raw, as sent on the wire; ``headers`` has lower-case names; ``route`` is a
    route name (``"storage.get"`` for the object store) or ``"unknown"``; ``status`` is ``0``
    if the request ended without an answer.
    """

    time: float
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    route: str
    status: int


def headers_of(request: web.Request) -> dict[str, str]:
    """A plain copy of the request headers with lower-case names (repeats joined by ", ")."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers

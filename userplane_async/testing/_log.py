"""The fake's request log: one frozen record per request, for assertions in tests."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from aiohttp import web

from ._storage_faults import StorageFault


@attrs.frozen
class RequestRecord:
    """One request as the fake saw it and what it answered.

    ``time`` is the fake's clock (``monotonic()``) when the request arrived; ``path`` and
    ``query`` are raw, as sent on the wire; ``headers`` has lower-case names; ``route`` is a
    route name (``"storage.get"`` for the object store) or ``"unknown"``; ``status`` is the
    status line sent, or ``0`` if none was sent or the connection was reset (by a scripted
    fault or by the client leaving) before the answer was complete; ``fault`` is the scripted
    storage fault the request got, if any; ``finished`` is the fake's clock when it was done.
    """

    time: float
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    route: str
    status: int
    fault: StorageFault | None = None
    finished: float | None = None


@attrs.define
class Exchange:
    """What the fake did with a request, filled in while answering it.

    ``status`` stays ``None`` when the returned response is the answer; storage sets it when
    it wrote the answer itself or the connection broke.
    """

    status: int | None = None
    fault: StorageFault | None = None


def headers_of(request: web.Request) -> dict[str, str]:
    """A plain copy of the request headers with lower-case names (repeats joined by ", ")."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers

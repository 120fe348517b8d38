"""The fake's request log: one frozen record per request, for assertions in tests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs
from aiohttp import web

from ._storage_faults import StorageFault


@attrs.frozen
class RequestRecord:
    """One request as the fake saw it and what it answered.

    ``time`` is the fake's clock (``monotonic()``) when the request arrived; ``path`` and
    ``query`` are raw, as sent on the wire; ``headers`` has lower-case names and an
    ``authorization`` header only as :meth:`redacted`; ``route`` is a
    route name (``"storage.get"`` for the object store) or ``"unknown"``; ``status`` is the
    status line sent, or ``0`` if none was sent or the connection was reset (by a scripted
    fault or by the client leaving) before the answer was complete; ``fault`` is the scripted
    storage fault the request got, if any; ``finished`` is the fake's clock when it was done;
    ``user_id`` is the user whose key authenticated an API call (never the key itself), or
    ``None`` for storage and for calls no key authenticated.
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
    user_id: str | None = None

    @staticmethod
    def redacted(authorization: str) -> str:
        """What the log keeps of an ``Authorization`` header: the scheme and a fingerprint of
        the credential, never the credential (``headers["authorization"] ==
        RequestRecord.redacted(f"Bearer {key}")`` tells which key was sent)."""
        scheme, _, credential = authorization.partition(" ")
        digest = hashlib.sha256(credential.encode()).hexdigest()[:12]
        return f"{scheme} <redacted sha256:{digest}>"


@attrs.define
class Exchange:
    """What the fake did with a request, filled in while answering it.

    ``status`` stays ``None`` when the returned response is the answer; storage sets it when
    it wrote the answer itself or the connection broke; the API sets ``user_id`` once a key
    authenticated the call.
    """

    status: int | None = None
    fault: StorageFault | None = None
    user_id: str | None = None


def headers_of(request: web.Request) -> dict[str, str]:
    """A plain copy of the request headers with lower-case names (repeats joined by ", ")."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        if key == "authorization":  # the log is printed and kept: no key in it
            value = RequestRecord.redacted(value)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers

"""Sending an object: the normal S3 answer, and the scripted faults that break it.

Preconditions and ``Range`` are settled first (:func:`plan`); the plan's status, span and
headers are then sent whole (:func:`stream`) or broken by a fault (:func:`play`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from aiohttp import web

from ._content import StoredObject
from ._ranges import Span, Unsatisfiable, etag_matches, parse_range
from ._s3 import invalid_range, precondition_failed
from ._storage_faults import (
    ChunkedWithoutEnd,
    CloseWithoutLength,
    IgnoreRange,
    ReplaceAfter,
    ResetAfter,
    ShiftContentRange,
    StallAfter,
    StorageFault,
    Trickle,
    TruncateAfter,
    WrongLength,
)
from ._wire import RawAnswer

Pause = Callable[[float | None], Awaitable[None]]
"""Sleeps on the fake's clock (``None``: until the fake closes); ``aclose()`` cuts it short."""

_CHUNK = 64 * 1024


@attrs.frozen
class Plan:
    """What a correct server would send: status, the bytes' span and the headers."""

    stored: StoredObject
    status: int
    span: Span
    headers: dict[str, str]

    def with_length(self, length: int | None = None) -> dict[str, str]:
        """The headers plus a ``Content-Length`` (the span's, unless told otherwise)."""
        return {**self.headers, "Content-Length": str(len(self.span) if length is None else length)}


def _base_headers(stored: StoredObject, etag: str) -> dict[str, str]:
    headers = {"Content-Type": stored.type, "ETag": etag, "Accept-Ranges": "bytes"}
    if stored.content_encoding is not None:
        headers["Content-Encoding"] = stored.content_encoding
    return headers


def _wanted_range(request: web.Request, etag: str, fault: StorageFault | None) -> str | None:
    """The ``Range`` header to honour: none if the fault ignores it or ``If-Range`` fails."""
    if isinstance(fault, IgnoreRange):
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and not etag_matches(if_range, etag):
        return None
    return request.headers.get("Range")


def plan(
    request: web.Request, stored: StoredObject, fault: StorageFault | None
) -> Plan | web.Response:
    """The 200/206 to send, or S3's 412 (``If-Match``) or 416 (``Range``) instead."""
    etag = stored.etag
    if_match = request.headers.get("If-Match")
    if if_match is not None and not etag_matches(if_match, etag):
        return precondition_failed()
    wanted = _wanted_range(request, etag, fault)
    try:
        span = parse_range(wanted, stored.size)
    except Unsatisfiable:
        return invalid_range(wanted or "", stored.size)
    headers = _base_headers(stored, etag)
    if isinstance(fault, ShiftContentRange):
        span = span or Span.whole(stored.size)
        headers["Content-Range"] = span.content_range(shift=fault.by)
        return Plan(stored, 206, span, headers)
    if span is None:
        return Plan(stored, 200, Span.whole(stored.size), headers)
    headers["Content-Range"] = span.content_range()
    return Plan(stored, 206, span, headers)


async def stream(request: web.Request, plan: Plan) -> web.StreamResponse:
    """Send the planned answer whole, streaming the body in chunks."""
    response = web.StreamResponse(status=plan.status, headers=plan.headers)
    response.content_length = len(plan.span)
    await response.prepare(request)
    for chunk in plan.stored.chunks(plan.span.start, plan.span.stop, size=_CHUNK):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _cut(wire: RawAnswer, plan: Plan, after: int, length: int | None = None) -> None:
    """Headers with a ``Content-Length`` and the first ``after`` bytes of the span."""
    await wire.head(plan.status, plan.with_length(length))
    await wire.body(plan.stored, plan.span.head(after))


async def _trickle(wire: RawAnswer, plan: Plan, fault: Trickle, pause: Pause) -> None:
    await wire.head(plan.status, plan.with_length())
    span, delay = plan.span, fault.chunk / fault.bytes_per_second
    for offset in range(span.start, span.stop, fault.chunk):
        if offset > span.start:
            await pause(delay)
        await wire.body(plan.stored, attrs.evolve(span, start=offset).head(fault.chunk))


async def _replace_after(wire: RawAnswer, plan: Plan, fault: ReplaceAfter) -> None:
    try:
        await _cut(wire, plan, fault.after)
    finally:
        # Replaced even if the client left early: the test asked for a new version.
        plan.stored.replace(fault.resource)


async def _send_broken(wire: RawAnswer, plan: Plan, fault: StorageFault, pause: Pause) -> None:
    """Everything the fault sends before the connection ends."""
    if isinstance(fault, (ResetAfter, TruncateAfter, StallAfter)):
        await _cut(wire, plan, fault.after)
    elif isinstance(fault, ReplaceAfter):
        await _replace_after(wire, plan, fault)
    elif isinstance(fault, WrongLength):
        await _cut(wire, plan, fault.content_length, length=fault.content_length)
    elif isinstance(fault, CloseWithoutLength):
        await wire.head(plan.status, plan.headers)
        await wire.body(plan.stored, plan.span.head(fault.after))
    elif isinstance(fault, ChunkedWithoutEnd):
        await wire.head(plan.status, {**plan.headers, "Transfer-Encoding": "chunked"})
        await wire.body(plan.stored, plan.span.head(fault.after))
    elif isinstance(fault, Trickle):
        await _trickle(wire, plan, fault, pause)
    if isinstance(fault, StallAfter):
        await pause(None)


async def play(request: web.Request, plan: Plan, fault: StorageFault, pause: Pause) -> bool:
    """Send ``plan`` broken the way ``fault`` says; ``True`` if it ended in a reset."""
    wire = RawAnswer(request)
    await _send_broken(wire, plan, fault, pause)
    if isinstance(fault, (ResetAfter, ReplaceAfter)):
        wire.reset()
        return True
    wire.close()
    return False

"""Scripted object-store faults: what the next storage GETs get instead of the normal answer.

Each fault is a frozen value; ``FakeUserplane.script_storage`` queues it. Faults that send a
body send the object's real bytes (of the range being served), so a client that resumes
correctly still ends with byte-identical content.
"""

from __future__ import annotations

from typing import TypeAlias, get_args

import attrs
from attrs import validators as v

from ._content import RESOURCE_KINDS, FakeResource

_count = [v.instance_of(int), v.ge(0)]


@attrs.frozen
class ResetAfter:
    """Full ``Content-Length``, ``after`` body bytes, then a TCP RST (``SO_LINGER`` 0)."""

    after: int = attrs.field(validator=_count)


@attrs.frozen
class TruncateAfter:
    """Full ``Content-Length``, ``after`` body bytes, then a clean close (FIN)."""

    after: int = attrs.field(validator=_count)


@attrs.frozen
class CloseWithoutLength:
    """No ``Content-Length``, not chunked (``Connection: close``), ``after`` bytes, then FIN.

    An HTTP client cannot tell this short body from a whole one.
    """

    after: int = attrs.field(validator=_count)


@attrs.frozen
class ChunkedWithoutEnd:
    """Chunked transfer encoding, ``after`` bytes, then a close without the final 0 chunk."""

    after: int = attrs.field(validator=_count)


@attrs.frozen
class StallAfter:
    """Headers and ``after`` bytes, then nothing until the client leaves or the fake closes."""

    after: int = attrs.field(default=0, validator=_count)


@attrs.frozen
class Trickle:
    """The whole body, ``chunk`` bytes at a time, ``chunk / bytes_per_second`` apart.

    The waits are on the fake's clock, so a ``FakeClock`` records them and a ``ScaledClock``
    shortens them.
    """

    bytes_per_second: float = attrs.field(converter=float, validator=v.gt(0.0))
    chunk: int = attrs.field(default=1, validator=[v.instance_of(int), v.ge(1)])


@attrs.frozen
class Expired:
    """403 ``AccessDenied`` "Request has expired" although the URL is still valid."""


@attrs.frozen
class WrongLength:
    """Declare this ``Content-Length``; send ``min(content_length, actual)`` bytes, then FIN."""

    content_length: int = attrs.field(validator=_count)


@attrs.frozen
class IgnoreRange:
    """200 with the whole body even when a ``Range`` was sent (a server without ranges)."""


@attrs.frozen
class ShiftContentRange:
    """A 206 whose ``Content-Range`` is moved by ``by`` bytes; the body is the real range."""

    by: int = attrs.field(validator=v.instance_of(int))


@attrs.frozen
class ReplaceAfter:
    """``after`` bytes of the current object, then ``resource`` replaces it, then a reset."""

    after: int = attrs.field(validator=_count)
    resource: FakeResource = attrs.field(validator=v.instance_of(FakeResource))


@attrs.frozen
class Redirect:
    """A redirect (``status``, 302 by default) to ``location``, with an empty body."""

    location: str = attrs.field(validator=v.instance_of(str))
    status: int = attrs.field(default=302, validator=[v.instance_of(int), v.ge(300), v.le(399)])


@attrs.frozen
class S3Error:
    """An S3 XML error, e.g. ``S3Error(503, "SlowDown", "Please reduce your request rate.")``."""

    status: int = attrs.field(validator=[v.instance_of(int), v.ge(400), v.le(599)])
    code: str = attrs.field(validator=v.instance_of(str))
    message: str = attrs.field(validator=v.instance_of(str))


StorageFault: TypeAlias = (
    ResetAfter
    | TruncateAfter
    | CloseWithoutLength
    | ChunkedWithoutEnd
    | StallAfter
    | Trickle
    | Expired
    | WrongLength
    | IgnoreRange
    | ShiftContentRange
    | ReplaceAfter
    | Redirect
    | S3Error
)
"""Any scripted storage fault."""

FAULT_TYPES: tuple[type, ...] = get_args(StorageFault)


@attrs.define
class _Queued:
    fault: StorageFault
    remaining: int
    recording_id: str | None
    kind: str | None

    def applies_to(self, recording_id: str, kind: str) -> bool:
        return self.recording_id in (None, recording_id) and self.kind in (None, kind)


class StorageScripts:
    """Queued faults, oldest first; a request gets the first one whose scope it is in."""

    def __init__(self) -> None:
        self._queue: list[_Queued] = []

    def add(
        self, fault: StorageFault, *, times: int, recording_id: str | None, kind: str | None
    ) -> None:
        if not isinstance(fault, FAULT_TYPES):
            raise TypeError(f"not a storage fault: {fault!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if kind is not None and kind not in RESOURCE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(RESOURCE_KINDS)}, not {kind!r}")
        self._queue.append(_Queued(fault, times, recording_id, kind))

    def peek(self, recording_id: str, kind: str) -> StorageFault | None:
        """The fault the next request for this object would get, without using it up."""
        found = self._find(recording_id, kind)
        return None if found is None else found.fault

    def take(self, recording_id: str, kind: str) -> StorageFault | None:
        """Use up one answer of the first fault that applies to this object."""
        found = self._find(recording_id, kind)
        if found is None:
            return None
        found.remaining -= 1
        if found.remaining == 0:
            self._queue.remove(found)
        return found.fault

    def _find(self, recording_id: str, kind: str) -> _Queued | None:
        return next((q for q in self._queue if q.applies_to(recording_id, kind)), None)

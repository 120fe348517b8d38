"""What a web app answers a browser's request for a resource, whatever the framework.

Each request costs one API call (a fresh presigned URL) and one storage GET, so a browser
that seeks spends one call per ``Range`` request it sends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

import attrs

from .._client import AsyncUserplane
from .._errors import (
    GoneError,
    InvalidIDError,
    NotFoundError,
    RangeNotSatisfiableError,
    RateLimitError,
    ResourceUnavailableError,
    UserplaneError,
)
from .._models import ResourceKind
from .._ranges import ByteRange, is_strong_etag
from .._stream import ResourceStream

logger = logging.getLogger("userplane_async.web")
_UNKNOWN_TYPE = "application/octet-stream"


@attrs.frozen
class Asked:
    """What a request's ``Range`` and ``If-Range`` headers ask for.

    A header this cannot serve as asked (malformed, another unit, several ranges) is
    ignored, as HTTP allows: the reply is the whole object, 200. So is an ``If-Range`` that
    cannot match (a date, or a weak ETag: the object has no Last-Modified to compare).
    """

    range: ByteRange | None = None
    if_range: str | None = None

    @classmethod
    def of(cls, range_header: str | None, if_range_header: str | None) -> Asked:
        wanted = ByteRange.parse(range_header)
        if wanted is None or if_range_header is None:
            return cls(wanted)
        tag = if_range_header.strip()
        return cls(wanted, tag) if is_strong_etag(tag) else cls()


@attrs.frozen
class Refusal:
    """An answer without the resource: a status, a short text and its headers."""

    status: int
    text: str
    headers: Mapping[str, str] = attrs.field(factory=dict)


def refusal(error: UserplaneError) -> Refusal | None:
    """The answer for an error raised while opening a stream; ``None``: a real failure (500).

    Unknown or deleted recordings, IDs no recording can have (from the request's path), and
    resources that were not captured are the viewer's 404 or 410; a range past the end is
    416; a spent API budget is 503 with ``Retry-After``.
    """
    if isinstance(error, (ResourceUnavailableError, NotFoundError, InvalidIDError)):
        return Refusal(404, error.message)
    if isinstance(error, GoneError):
        return Refusal(410, error.message)
    if isinstance(error, RangeNotSatisfiableError):
        size = {} if error.size is None else {"Content-Range": f"bytes */{error.size}"}
        return Refusal(416, "the range asked for lies past the end", size)
    if isinstance(error, RateLimitError):
        wait = (
            {} if error.retry_after is None else {"Retry-After": str(math.ceil(error.retry_after))}
        )
        return Refusal(503, "the Userplane API budget is spent for now; try again later", wait)
    return None


def reply_headers(body: ResourceStream, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The headers of the 200 or 206 carrying ``body``, plus ``extra`` ones (say
    Cache-Control) where they do not contradict these."""
    ours = {"Accept-Ranges": "bytes", "Content-Type": body.content_type or _UNKNOWN_TYPE}
    if body.content_length is not None:
        ours["Content-Length"] = str(body.content_length)
    if body.content_range is not None:
        ours["Content-Range"] = body.content_range
    if body.etag is not None:
        ours["ETag"] = body.etag
    taken = {name.lower() for name in ours}
    return {name: v for name, v in (extra or {}).items() if name.lower() not in taken} | ours


def open_resource(
    client: AsyncUserplane,
    workspace_id: str,
    recording_id: str,
    kind: ResourceKind | str,
    asked: Asked,
) -> AbstractAsyncContextManager[ResourceStream]:
    """The stream that answers ``asked`` (the API call happens on entering it)."""
    return client.recordings.stream(
        workspace_id, recording_id, kind, range=asked.range, if_range=asked.if_range
    )

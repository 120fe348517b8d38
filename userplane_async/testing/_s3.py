"""S3's error dialect: XML bodies with a code, a message and a request ID."""

from __future__ import annotations

import secrets
import time
from xml.sax.saxutils import escape

from aiohttp import web

_XML_TIME = "%Y-%m-%dT%H:%M:%SZ"


def s3_error(status: int, code: str, message: str, **extra: str) -> web.Response:
    """An S3-style XML error body."""
    fields = {"Code": code, "Message": message, **extra, "RequestId": secrets.token_hex(8)}
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


def expired_error(expires_param: str, expires_at: float, now: float) -> web.Response:
    """S3's answer to a presigned URL past its lifetime (also used for early expiry)."""
    return s3_error(
        403,
        "AccessDenied",
        "Request has expired",
        **{"X-Amz-Expires": expires_param},
        Expires=time.strftime(_XML_TIME, time.gmtime(expires_at)),
        ServerTime=time.strftime(_XML_TIME, time.gmtime(now)),
    )


def precondition_failed() -> web.Response:
    """S3's 412 for an ``If-Match`` that names another version of the object."""
    return s3_error(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        Condition="If-Match",
    )


def invalid_range(requested: str, size: int) -> web.Response:
    """S3's 416 for a range that starts at or past the end of the object."""
    answer = s3_error(
        416,
        "InvalidRange",
        "The requested range is not satisfiable",
        RangeRequested=requested,
        ActualObjectSize=str(size),
    )
    answer.headers["Content-Range"] = f"bytes */{size}"
    return answer

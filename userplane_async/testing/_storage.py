"""The fake object store: SigV4-style presigned URLs and S3-like answers to them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timezone
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

import attrs
from aiohttp import web

from .._clock import Clock
from ._content import RESOURCE_KINDS, StoredObject
from ._store import Store

STORAGE_PREFIX = "/storage"
ACCESS_KEY = "FAKEUSERPLANEACCESSKEY"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SIGNATURE = "X-Amz-Signature"
_CHUNK = 64 * 1024


def s3_error(status: int, code: str, message: str, **extra: str) -> web.Response:
    """An S3-style XML error body."""
    fields = {"Code": code, "Message": message, **extra, "RequestId": secrets.token_hex(8)}
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime(_AMZ_DATE)


def _parse_stamp(value: str) -> float:
    parsed = datetime.strptime(value, _AMZ_DATE).replace(tzinfo=timezone.utc)
    return parsed.timestamp()


@attrs.define
class Presigner:
    """Issues and checks presigned storage URLs with a per-fake secret."""

    clock: Clock
    lifetime: float
    origin: str = ""
    secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), repr=False)

    def _sign(self, method: str, raw_path: str, pairs: list[str]) -> str:
        canonical = "\n".join([method, raw_path, "&".join(sorted(pairs))])
        return hmac.new(self.secret, canonical.encode(), hashlib.sha256).hexdigest()

    def url(self, workspace_id: str, recording_id: str, kind: str) -> str:
        """A presigned GET URL for one resource, valid for ``lifetime`` from now."""
        path = "/".join(
            [STORAGE_PREFIX, *(quote(part, safe="") for part in (workspace_id, recording_id, kind))]
        )
        stamp = _stamp(self.clock.time())
        credential = f"{ACCESS_KEY}/{stamp[:8]}/us-east-1/s3/aws4_request"
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": credential,
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(int(self.lifetime)),
            "X-Amz-SignedHeaders": "host",
        }
        pairs = [f"{name}={quote(value, safe='')}" for name, value in params.items()]
        signature = self._sign("GET", path, pairs)
        return f"{self.origin}{path}?{'&'.join(pairs)}&{_SIGNATURE}={signature}"

    def check(self, method: str, raw_path: str, raw_query: str) -> web.Response | None:
        """``None`` if the query signs this request and has not expired, else the S3 error."""
        pairs = [pair for pair in raw_query.split("&") if pair]
        given = [p.partition("=")[2] for p in pairs if p.partition("=")[0] == _SIGNATURE]
        rest = [p for p in pairs if p.partition("=")[0] != _SIGNATURE]
        expected = self._sign(method, raw_path, rest)
        if len(given) != 1 or not hmac.compare_digest(given[0], expected):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        params = {name: unquote(value) for name, _, value in (p.partition("=") for p in rest)}
        issued = _parse_stamp(params["X-Amz-Date"])
        expires = issued + int(params["X-Amz-Expires"])
        now = self.clock.time()
        if now > expires:
            return s3_error(
                403,
                "AccessDenied",
                "Request has expired",
                **{"X-Amz-Expires": params["X-Amz-Expires"]},
                Expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                ServerTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            )
        return None


def _front_door(request: web.Request) -> web.Response | None:
    """S3's answers that depend on the request shape, not on the object."""
    if request.method == "HEAD":
        return web.Response(status=403)
    if "Authorization" in request.headers:
        return s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            ArgumentName="Authorization",
            ArgumentValue=request.headers["Authorization"],
        )
    unsigned = sorted(name.lower() for name in request.headers if name.lower().startswith("x-amz-"))
    if unsigned:
        return s3_error(
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )
    return None


def _find(store: Store, raw_path: str) -> StoredObject | None:
    parts = [unquote(part) for part in raw_path[len(STORAGE_PREFIX) :].split("/")]
    if len(parts) != 4 or parts[0] or parts[3] not in RESOURCE_KINDS:
        return None
    recording = store.recordings.get(parts[2])
    if recording is None or recording.workspace_id != parts[1]:
        return None
    stored = recording.resources[parts[3]]
    return stored if stored.captured else None


async def serve_storage(
    presigner: Presigner, store: Store, request: web.Request, raw_path: str, raw_query: str
) -> web.StreamResponse:
    """Answer one object-store request the way S3 answers a presigned GET."""
    refused = _front_door(request) or presigner.check(request.method, raw_path, raw_query)
    if refused is not None:
        return refused
    stored = _find(store, raw_path)
    if stored is None:
        key = unquote(raw_path[len(STORAGE_PREFIX) + 1 :])
        return s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
    response = web.StreamResponse(headers={"Content-Type": stored.type, "ETag": stored.etag})
    response.content_length = stored.size
    await response.prepare(request)
    try:
        for chunk in stored.chunks(size=_CHUNK):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away mid-body; nothing left to answer
    return response

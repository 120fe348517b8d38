"""SigV4-style presigned storage URLs: issued by the API, checked by the object store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timezone
from urllib.parse import quote, unquote

import attrs
from aiohttp import web

from .._clock import Clock
from ._s3 import expired_error, s3_error

STORAGE_PREFIX = "/storage"
ACCESS_KEY = "FAKEUSERPLANEACCESSKEY"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SIGNATURE = "X-Amz-Signature"


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime(_AMZ_DATE)


def _parse_stamp(value: str) -> float:
    parsed = datetime.strptime(value, _AMZ_DATE).replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _split(raw_query: str) -> tuple[list[str], list[str]]:
    """The given signatures and the other ``name=value`` pairs, still percent-encoded."""
    pairs = [pair for pair in raw_query.split("&") if pair]
    given = [p.partition("=")[2] for p in pairs if p.partition("=")[0] == _SIGNATURE]
    rest = [p for p in pairs if p.partition("=")[0] != _SIGNATURE]
    return given, rest


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
            # As from temporary (STS) credentials: a secret ending in "==" (so it needs
            # percent-encoding) that makes every issued URL unique, so a request log shows
            # whether a URL was reused.
            "X-Amz-Security-Token": base64.b64encode(secrets.token_bytes(58)).decode(),
            "X-Amz-SignedHeaders": "host",
        }
        pairs = [f"{name}={quote(value, safe='')}" for name, value in params.items()]
        signature = self._sign("GET", path, pairs)
        return f"{self.origin}{path}?{'&'.join(pairs)}&{_SIGNATURE}={signature}"

    def check_signature(self, method: str, raw_path: str, raw_query: str) -> web.Response | None:
        """``None`` if the query signs exactly this request, else S3's 403."""
        given, rest = _split(raw_query)
        expected = self._sign(method, raw_path, rest)
        if len(given) == 1 and hmac.compare_digest(given[0], expected):
            return None
        return s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you "
            "provided. Check your key and signing method.",
        )

    def expired(self, raw_query: str) -> web.Response | None:
        """S3's "Request has expired" if a signed query is past its lifetime, else ``None``."""
        answer, expires = self._expiry(raw_query)
        return answer if self.clock.time() > expires else None

    def expire_early(self, raw_query: str) -> web.Response:
        """The same answer for a query that is still valid (S3 may cut a URL's life short)."""
        return self._expiry(raw_query)[0]

    def _expiry(self, raw_query: str) -> tuple[web.Response, float]:
        _, rest = _split(raw_query)
        params = {name: unquote(value) for name, _, value in (p.partition("=") for p in rest)}
        expires = _parse_stamp(params["X-Amz-Date"]) + int(params["X-Amz-Expires"])
        return expired_error(params["X-Amz-Expires"], expires, self.clock.time()), expires

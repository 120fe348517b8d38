"""The fake object store: S3's answers to presigned GETs, and the scripted faults on them.

Checks run in S3's order: the request's shape (the front door), the signature, expiry, then
the object, ``If-Match`` and ``Range``. A scripted fault is used up after the signature and
expiry checks (an ``Expired`` fault before expiry, since it stands in for it).
"""

from __future__ import annotations

from urllib.parse import unquote

import attrs
from aiohttp import web

from ._content import RESOURCE_KINDS, StoredObject
from ._delivery import Pause, Plan, plan, play, stream
from ._log import Exchange
from ._presign import STORAGE_PREFIX, Presigner
from ._s3 import s3_error
from ._storage_faults import (
    Expired,
    IgnoreRange,
    Redirect,
    S3Error,
    ShiftContentRange,
    StorageFault,
    StorageScripts,
)
from ._store import Store


@attrs.frozen
class Key:
    """The object a storage path names."""

    workspace_id: str
    recording_id: str
    kind: str


def parse_key(raw_path: str) -> Key | None:
    """``/storage/{workspace}/{recording}/{kind}`` decoded one segment at a time."""
    parts = [unquote(part) for part in raw_path[len(STORAGE_PREFIX) :].split("/")]
    if len(parts) != 4 or parts[0] or parts[3] not in RESOURCE_KINDS:
        return None
    return Key(parts[1], parts[2], parts[3])


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


def _no_such_key(raw_path: str) -> web.Response:
    key = unquote(raw_path[len(STORAGE_PREFIX) + 1 :])
    return s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=key)


def _simple_fault(fault: Redirect | S3Error) -> web.Response:
    if isinstance(fault, Redirect):
        return web.Response(status=fault.status, headers={"Location": fault.location})
    return s3_error(fault.status, fault.code, fault.message)


@attrs.define
class ObjectStore:
    """Answers object-store requests; ``faults`` holds the scripted ones still to come."""

    presigner: Presigner
    store: Store
    pause: Pause
    faults: StorageScripts = attrs.field(factory=StorageScripts)

    def find(self, key: Key | None) -> StoredObject | None:
        """The captured object under ``key``, if there is one."""
        recording = None if key is None else self.store.recordings.get(key.recording_id)
        if key is None or recording is None or recording.workspace_id != key.workspace_id:
            return None
        stored = recording.resources[key.kind]
        return stored if stored.captured else None

    def _checks(self, request: web.Request, raw_path: str, raw_query: str) -> web.Response | None:
        return _front_door(request) or self.presigner.check_signature(
            request.method, raw_path, raw_query
        )

    def _take_fault(
        self, key: Key | None, raw_query: str, exchange: Exchange
    ) -> web.Response | None:
        """Use up the fault due for ``key`` (into ``exchange``), or answer an expired URL.

        A URL that really has expired gets S3's answer and leaves the queued fault for a
        request with a fresh URL; an ``Expired`` fault answers the same for a valid one.
        """
        if key is None:
            return self.presigner.expired(raw_query)
        if isinstance(self.faults.peek(key.recording_id, key.kind), Expired):
            exchange.fault = self.faults.take(key.recording_id, key.kind)
            return self.presigner.expire_early(raw_query)
        refused = self.presigner.expired(raw_query)
        if refused is None:
            exchange.fault = self.faults.take(key.recording_id, key.kind)
        return refused

    async def serve(
        self, request: web.Request, raw_path: str, raw_query: str, exchange: Exchange
    ) -> web.StreamResponse:
        """Answer one object-store request the way S3 answers a presigned GET."""
        refused = self._checks(request, raw_path, raw_query)
        if refused is not None:
            return refused
        key = parse_key(raw_path)
        refused = self._take_fault(key, raw_query, exchange)
        if refused is not None:
            return refused
        fault = exchange.fault
        if isinstance(fault, (Redirect, S3Error)):
            return _simple_fault(fault)
        stored = self.find(key)
        if stored is None:
            return _no_such_key(raw_path)
        planned = plan(request, stored, fault)
        if isinstance(planned, web.Response):
            return planned
        return await self._send(request, planned, fault, exchange)

    async def _send(
        self, request: web.Request, planned: Plan, fault: StorageFault | None, exchange: Exchange
    ) -> web.StreamResponse:
        """Send the plan, whole or broken; a connection that breaks is logged as status 0."""
        try:
            if fault is None or isinstance(fault, (IgnoreRange, ShiftContentRange)):
                return await stream(request, planned)
            reset = await play(request, planned, fault, self.pause)
        except ConnectionError:
            reset = True  # the client went away mid-answer
        exchange.status = 0 if reset else planned.status
        # Whatever was sent is on the wire and the connection is closed: aiohttp's attempt to
        # send this placeholder fails quietly, as for any client that went away.
        return web.Response(status=planned.status)

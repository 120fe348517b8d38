"""``FakeUserplane``: the in-process fake API and object store, on 127.0.0.1 and port 0."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
from aiohttp import web

from .._clock import SYSTEM_CLOCK, Clock
from ._api import Api
from ._faults import Script, Scripts
from ._log import Exchange, RequestRecord, headers_of
from ._presign import Presigner
from ._quota import Quota
from ._ratelimit import SlidingWindowLimiter
from ._routes import API_PREFIX, STORAGE_ROUTE, Match, resolve
from ._seeding import DEFAULT_API_KEY, DEFAULT_USER_ID, Seeding
from ._storage import ObjectStore
from ._storage_faults import StorageFault

DEFAULT_RATE_LIMITS = ((120, 60.0), (10_000, 86_400.0))


class FakeUserplane(Seeding):
    """A fake Userplane API (under ``/api/v1``) plus its object store, served in-process.

    Use it as an async context manager; ``base_url`` and ``api_key`` then point a client at it.
    Every time-dependent decision uses ``clock``, so tests can pass a fast or virtual clock.
    The default user has ``keys_per_user`` active keys (``api_keys``, ``api_key`` first); like
    the real service, ``rate_limits`` count per user, so all of a user's keys share them.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        keys_per_user: int = 1,
        clock: Clock = SYSTEM_CLOCK,
        rate_limits: Sequence[tuple[int, float]] | None = DEFAULT_RATE_LIMITS,
        url_lifetime: float = 900.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, clock=clock, keys_per_user=keys_per_user)
        self.requests: list[RequestRecord] = []
        self._scripts = Scripts()
        self._presigner = Presigner(clock, url_lifetime)
        limiter = SlidingWindowLimiter(rate_limits) if rate_limits is not None else None
        self._quota = Quota(limiter)
        self._api = Api(self._store, self._presigner, self._quota)
        self._storage = ObjectStore(self._presigner, self._store, self._pause)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._origin: str | None = None
        self._pauses: set[anyio.CancelScope] = set()

    def __repr__(self) -> str:
        return f"FakeUserplane(origin={self._origin!r}, running={self._runner is not None})"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v1`` once started."""
        if self._origin is None:
            raise RuntimeError("FakeUserplane is not started; use 'async with fake:'")
        return self._origin + API_PREFIX

    @property
    def rate_limited_count(self) -> int:
        """How many 429s the rate limiter produced (scripted ones not included)."""
        return self._api.rate_limited_count

    def script(
        self,
        route: str,
        *,
        status: int = 503,
        times: int = 1,
        retry_after: str | None = None,
        body: bytes | Mapping[str, Any] | None = None,
        delay: float = 0.0,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        stream: Iterable[bytes] | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` (or ``"*"``: any API route) this way.

        Without ``body`` the answer is the documented error for ``status``; ``delay`` seconds
        pass on the clock first; ``status=200`` without a body delays the real answer.
        ``headers`` are added to the answer (a redirect's ``Location``, a
        ``Content-Encoding``) and win over the ones the fake sets. ``stream`` sends the body
        chunk by chunk instead (chunked, no ``Content-Length``), pulling each chunk only when
        the previous one has been written, so an endless iterator makes an endless body that
        lasts until the client hangs up; one iterator serves all ``times`` answers.
        """
        self._scripts.add(
            route,
            status=status,
            times=times,
            retry_after=retry_after,
            body=body,
            delay=delay,
            content_type=content_type,
            headers=headers,
            stream=stream,
        )

    def script_storage(
        self,
        fault: StorageFault,
        *,
        times: int = 1,
        recording_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Give the next ``times`` storage GETs (of that recording and/or kind) ``fault``.

        Faults apply in the order scripted, after S3's request-shape and signature checks and
        after the expiry check (``Expired`` stands in for that check, so it comes before it).
        """
        self._storage.faults.add(fault, times=times, recording_id=recording_id, kind=kind)

    def accepted_api_calls(
        self, user_id: str = DEFAULT_USER_ID, *, include_foreign: bool = False
    ) -> list[float]:
        """When ``user_id``'s API calls that the rate limit let through arrived, in order.

        Times are the fake's ``clock.monotonic()``. Every call a key of that user
        authenticated counts (all of them without ``rate_limits``), except the 429s of the
        limit; scripted answers never reach the limit and do not count. ``include_foreign``
        merges in the accepted calls of :meth:`foreign_traffic` due by now: everything the
        limit counted. Not cleared by :meth:`clear_requests`.
        """
        self._user(user_id)
        calls = self._quota.accepted(user_id)
        if include_foreign:
            self._quota.settle(user_id, self._clock.monotonic())
            calls = sorted(calls + self._quota.foreign(user_id))
        return calls

    def foreign_traffic(self, per_minute: float, *, user_id: str = DEFAULT_USER_ID) -> None:
        """Spend ``per_minute`` calls a minute of ``user_id``'s quota outside the SDK.

        Like a dashboard open next to your code: from now on the clock, one call every
        ``60 / per_minute`` seconds (the first one that long from now) goes through the same
        per-user rate limit as the API calls and is refused like theirs when the limit has no
        room (a refused one is not retried and does not count). Calling it again changes the
        rate from now on; ``per_minute=0`` stops it. See :meth:`foreign_calls`. Needs
        ``rate_limits`` (``RuntimeError`` otherwise): without a limit it could change nothing.
        """
        if not self._quota.limited:
            raise RuntimeError("foreign traffic needs rate_limits")
        self._user(user_id)
        self._quota.set_foreign(user_id, per_minute, self._clock.monotonic())

    def foreign_calls(self, user_id: str = DEFAULT_USER_ID) -> int:
        """How many foreign calls of ``user_id`` the rate limit accepted, up to now."""
        self._user(user_id)
        self._quota.settle(user_id, self._clock.monotonic())
        return len(self._quota.foreign(user_id))

    def api_requests(self) -> list[RequestRecord]:
        """Logged requests under ``/api/v1`` (including unknown paths there)."""
        return [r for r in self.requests if r.path.startswith(API_PREFIX + "/")]

    def storage_requests(self) -> list[RequestRecord]:
        """Logged object-store requests, whatever their method."""
        return [r for r in self.requests if r.route == STORAGE_ROUTE]

    def clear_requests(self) -> None:
        self.requests.clear()

    def seed_demo(self) -> str:
        """Seed the demo workspace (see ``_demo``) and return its ID."""
        from ._demo import seed_demo

        return seed_demo(self)

    async def start(self) -> None:
        """Bind the port and start serving."""
        if self._runner is not None:
            raise RuntimeError("FakeUserplane is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Handler cancellation ends a stalled storage answer as soon as its client leaves.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.5,
            handler_cancellation=True,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._origin = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._presigner.origin = self._origin

    async def aclose(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        runner, self._runner = self._runner, None
        for pause in list(self._pauses):
            pause.cancel()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeUserplane:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrival = self._clock.monotonic()
        raw_path, _, raw_query = request.raw_path.partition("?")
        route, found = resolve(request.method, raw_path)
        exchange = Exchange()
        status = 0
        try:
            response = await self._answer(
                request, route, found, arrival, raw_path, raw_query, exchange
            )
            status = response.status if exchange.status is None else exchange.status
            return response
        finally:
            headers = headers_of(request)
            self.requests.append(
                RequestRecord(
                    arrival,
                    request.method,
                    raw_path,
                    raw_query,
                    headers,
                    route,
                    status,
                    exchange.fault,
                    self._clock.monotonic(),
                    exchange.user_id,
                )
            )

    async def _answer(
        self,
        request: web.Request,
        route: str,
        found: Match | web.Response | None,
        arrival: float,
        raw_path: str,
        raw_query: str,
        exchange: Exchange,
    ) -> web.StreamResponse:
        if isinstance(found, web.Response):
            return found
        script = self._scripts.take(route)
        if script is not None:
            if script.delay > 0:
                await self._pause(script.delay)
            if script.stream is not None:
                return await self._stream(request, route, script, script.stream, exchange)
            if not script.passes_through:
                return self._cors(route, script.response(route))
        if found is None:
            return await self._storage.serve(request, raw_path, raw_query, exchange)
        answer = await self._api.serve(request, found, arrival, self._clock.time(), exchange)
        return self._cors(route, answer)

    async def _stream(
        self,
        request: web.Request,
        route: str,
        script: Script,
        chunks: Iterable[bytes],
        exchange: Exchange,
    ) -> web.StreamResponse:
        """Send a scripted ``stream`` body; a client that hangs up is logged as status 0."""
        response = script.stream_response()
        if route != STORAGE_ROUTE:
            response.headers["Access-Control-Allow-Origin"] = "*"
        try:
            await response.prepare(request)
            for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:
            exchange.status = 0
            return web.Response(status=script.status)  # not sent: the connection is gone
        return response

    async def _pause(self, seconds: float | None) -> None:
        """Sleep on the clock (``None``: until closed); ``aclose()`` cuts any sleep short."""
        if self._runner is None:
            return
        with anyio.CancelScope() as scope:
            self._pauses.add(scope)
            try:
                if seconds is None:
                    await anyio.sleep_forever()
                else:
                    await self._clock.sleep(seconds)
            finally:
                self._pauses.discard(scope)

    @staticmethod
    def _cors(route: str, response: web.Response) -> web.Response:
        if route != STORAGE_ROUTE:
            response.headers["Access-Control-Allow-Origin"] = "*"
        return response

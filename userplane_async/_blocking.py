"""``Userplane``: the blocking client, for scripts, notebooks and WSGI views.

It holds an :class:`AsyncUserplane` on an event loop of its own, in a background thread, and
runs each call there while the calling thread waits. Everything the async client does, with
the same arguments, results and typed errors, works from any thread, including one whose own
event loop is running (a notebook cell's).
"""

from __future__ import annotations

from types import TracebackType

from ._blocking_resources import Facade, Links, Projects, Recordings, Workspaces, blocking
from ._budget import Budget
from ._client import AsyncUserplane
from ._clock import SYSTEM_CLOCK, Clock
from ._http import Timeout
from ._portal import LoopThread
from ._ratelimit import RateLimit
from ._retry import RetryPolicy


class Userplane(Facade[AsyncUserplane]):
    """Blocking client for the whole Userplane public API.

    Use it as ``with Userplane() as client:`` or call :meth:`close` yourself: each client runs
    one event loop in a thread of its own until then. The arguments are those of
    :class:`AsyncUserplane` (an ``aiohttp`` session cannot be passed: it belongs to another
    loop). One client can be shared by many threads, which then share its API budget.

    Callbacks (``progress``, ``on_retry``, ``on_event``) run on the client's loop thread, not
    the calling one: keep them short, and do not call the client from them. A
    ``KeyboardInterrupt`` while a call waits cancels that call, waits for it to clean up, then
    goes on up. Calls after :meth:`close`, or in a process forked from the one that made the
    client, raise :class:`ClientClosedError`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | Timeout = Timeout(),  # noqa: B008 - frozen value object
        max_retries: int | None = None,
        concurrency: int = 8,
        stream_concurrency: int = 100,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen value object
        budget: Budget | str | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen value object
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        async def build() -> AsyncUserplane:  # on the loop: what it creates belongs to it
            return AsyncUserplane(
                api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                concurrency=concurrency,
                stream_concurrency=stream_concurrency,
                rate_limit=rate_limit,
                budget=budget,
                retry=retry,
                clock=clock,
            )

        loop = LoopThread()
        try:
            client = loop.call(build)
        except BaseException:
            loop.close(None)
            raise
        super().__init__(loop, client)
        self.workspaces = Workspaces(loop, client.workspaces)
        self.projects = Projects(loop, client.projects)
        self.links = Links(loop, client.links)
        self.recordings = Recordings(loop, client.recordings)

    me = blocking(AsyncUserplane.me)
    budget_status = blocking(AsyncUserplane.budget_status)
    archive = blocking(AsyncUserplane.archive)

    @property
    def base_url(self) -> str:
        return self._target.base_url

    @property
    def api_calls(self) -> int:
        """API calls this client has sent so far, retries included."""
        return self._target.api_calls

    @property
    def closed(self) -> bool:
        return self._loop.closed

    @property
    def concurrency(self) -> int:
        return self._target.concurrency

    @property
    def stream_concurrency(self) -> int:
        return self._target.stream_concurrency

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._target.rate_limit

    @property
    def retry(self) -> RetryPolicy:
        return self._target.retry

    @property
    def clock(self) -> Clock:
        return self._target.clock

    def close(self) -> None:
        """Close the connections, stop the loop and join its thread; safe to call twice.

        Calls under way in other threads, and open streams, end with :class:`ClientClosedError`.
        """
        self._loop.close(self._target.aclose)

    def __enter__(self) -> Userplane:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Userplane base_url={self.base_url!r} {state}>"

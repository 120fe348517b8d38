"""``AsyncUserplane``: configuration, lifecycle and the API namespaces."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import aiohttp
import attrs

from ._archive import archive
from ._budget import Budget, BudgetOwner, key_digest
from ._clock import SYSTEM_CLOCK, Clock
from ._convert import structure
from ._errors import ConfigurationError
from ._events import ArchiveEvent
from ._fetch import StorageSession
from ._http import ApiTransport, Timeout
from ._models import BudgetStatus, Me, ResourceKind
from ._ratelimit import LocalBudget, RateLimit
from ._redisbudget import RedisBudget
from ._resources.links import Links
from ._resources.projects import Projects
from ._resources.recordings import Recordings
from ._resources.workspaces import Workspaces
from ._results import ArchiveReport
from ._retry import RetryPolicy
from ._urls import DEFAULT_BASE_URL, check_base_url

_KEY_SHAPE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: nothing that could split a header


def _api_key(api_key: object) -> str:
    key = api_key if api_key is not None else os.environ.get("USERPLANE_API_KEY")
    if not key:
        raise ConfigurationError(
            "no API key: pass api_key=... or set the USERPLANE_API_KEY environment variable"
        )
    if not isinstance(key, str) or not _KEY_SHAPE.fullmatch(key):
        raise ConfigurationError("the API key must be visible ASCII with no spaces")
    return key


def _budget(budget: object) -> Budget:
    """``budget=``, else ``$USERPLANE_BUDGET_URL``, else this process's own count."""
    value = budget if budget is not None else os.environ.get("USERPLANE_BUDGET_URL") or None
    if value is None:
        return LocalBudget()
    if isinstance(value, str):
        return RedisBudget(value)
    if not callable(getattr(value, "open", None)):
        raise ConfigurationError(
            f"budget must be a LocalBudget, a RedisBudget or a redis:// URL, "
            f"not {type(value).__name__}"
        )
    return value  # type: ignore[return-value]


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int")
    return value


class AsyncUserplane:
    """Async client for the whole Userplane public API.

    Use it as ``async with AsyncUserplane() as client:`` or call :meth:`aclose` yourself.
    One client is meant to live long and be shared by many tasks: its limiter keeps all of
    them within the API budget, and a 429 pauses them all once.

    Args:
        api_key: The ``uspl_...`` key; defaults to ``$USERPLANE_API_KEY``.
        base_url: Defaults to ``$USERPLANE_BASE_URL``, then the production API. Only https,
            except on loopback hosts.
        timeout: Seconds, or a :class:`Timeout` with separate connect/read/total values.
        max_retries: Shorthand for ``retry.attempts - 1``.
        concurrency: Downloads this client runs in parallel, across all recordings (and
            the default number of archive workers).
        stream_concurrency: Streams open at once; a further ``stream()`` waits until one
            closes. These slots are apart from the download slots: open streams, however
            slow their readers, never hold up downloads or archives, nor they streams. A
            stream opened inside another's block, in the same task, shares its slot.
        rate_limit: The limits of the API budget; ``None`` switches the limiter off.
        budget: Where the budget is counted: :class:`LocalBudget` (this client alone, the
            default), or :class:`RedisBudget` (or its ``redis://`` URL) to share one budget
            with every process of the key's user; defaults to ``$USERPLANE_BUDGET_URL``.
        retry: How 429s, 5xx answers and network failures are retried.
        session: An ``aiohttp.ClientSession`` to send API calls with; it is left open.
        clock: Time source for the limiter and retries (tests pass a fake one).
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
        session: aiohttp.ClientSession | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        key = _api_key(api_key)
        url = check_base_url(base_url or os.environ.get("USERPLANE_BASE_URL") or DEFAULT_BASE_URL)
        if max_retries is not None:
            retry = attrs.evolve(retry, attempts=max_retries + 1)
        self.concurrency = _positive_int(concurrency, "concurrency")
        self.stream_concurrency = _positive_int(stream_concurrency, "stream_concurrency")
        self.clock = clock
        self.rate_limit = rate_limit
        self.retry = retry
        timeout = Timeout.of(timeout)
        self.budget = _budget(budget)
        owner = BudgetOwner(
            rate_limit,
            clock,
            key_digest(key),
            self._user_id,
            lease=(timeout.total or 300.0) + 10.0,  # no call outlives its timeout
        )
        self._storage = StorageSession(
            concurrency=self.concurrency,
            stream_concurrency=self.stream_concurrency,
            timeout=timeout,
            retry=retry,
            clock=clock,
        )
        self._http = ApiTransport(
            api_key=key,
            base_url=url,
            timeout=timeout,
            retry=retry,
            limiter=self.budget.open(owner),
            clock=clock,
            session=session,
        )
        self.workspaces = Workspaces(self._http)
        self.projects = Projects(self._http)
        self.links = Links(self._http)
        self.recordings = Recordings(self._http, self._storage)

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    @property
    def api_calls(self) -> int:
        """API calls this client has sent so far, retries included."""
        return self._http.limiter.calls

    @property
    def closed(self) -> bool:
        return self._http.closed

    async def me(self) -> Me:
        """The key's user and their aggregate stats."""
        data = await self._http.request("GET", ["public", "me"])
        return structure(data, Me, path="$.data")

    async def _user_id(self) -> str:
        return (await self.me()).user.id

    async def budget_status(self) -> BudgetStatus:
        """The API budget now: calls used in the last minute and day, any pause, the rate."""
        return await self._http.limiter.status()

    async def archive(
        self,
        workspace_id: str,
        dest: str | os.PathLike[str],
        *,
        kinds: Sequence[ResourceKind | str] | None = None,
        recording_ids: Sequence[str] | None = None,
        concurrency: int | None = None,
        on_event: Callable[[ArchiveEvent], object] | None = None,
        verify: bool = False,
        store: Any = None,
    ) -> ArchiveReport:
        """Archive a workspace (or ``recording_ids``) into ``dest``; resumable and verified.

        Layout: ``dest/<workspace>/<recording>/recording.json`` plus ``<kind>.<ext>`` per
        resource, and ``dest/manifest.jsonl`` with one line per (recording, kind) outcome. A
        re-run skips what the manifest and the files agree is complete (``verify`` re-hashes
        them), retries the rest, and spends no API call on complete recordings. When the API
        budget runs out, the remaining items are marked ``deferred`` and the run ends cleanly.
        ``concurrency`` workers (default: the client's) archive recordings side by side;
        ``on_event`` receives typed progress events.

        ``dest`` may be an object-store URL (``s3://bucket/prefix``, ``gs://``, ``az://``,
        ``file://``) with credentials from the cloud's usual environment variables, or, with
        ``store`` (a configured obstore store), a key prefix inside it; objects get the same
        keys as the local layout's paths. Needs the ``objectstore`` extra.
        """
        return await archive(
            self,
            workspace_id,
            dest,
            kinds=kinds,
            recording_ids=recording_ids,
            concurrency=_positive_int(concurrency or self.concurrency, "concurrency"),
            on_event=on_event,
            verify=verify,
            store=store,
        )

    async def aclose(self) -> None:
        """Close the connections this client opened; safe to call more than once.

        Open streams, and downloads under way or waiting, end with :class:`ClientClosedError`.
        """
        await self._storage.aclose()
        await self._http.aclose()
        await self._http.limiter.aclose()

    async def __aenter__(self) -> AsyncUserplane:
        await self._http.limiter.start()  # a budget that cannot work fails here, not mid-job
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<AsyncUserplane base_url={self.base_url!r} {state}>"

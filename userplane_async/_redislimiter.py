"""The limiter of a :class:`RedisBudget`: admission by one Lua script, a local share as fallback.

Each API call takes a FIFO ticket in Redis and is admitted by ``_budget.lua`` on the Redis
server's clock, so processes on machines whose clocks disagree still share one exact count,
and each process gets its turn (one ticket per process at a time: equal processes get equal
shares). This process remembers its own calls of the last day: while Redis is out of reach it
keeps to its share of the budget with them, and after Redis comes back (or lost its state) it
re-adds them, and trusts Redis alone only once a minute has passed.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.resources
import itertools
import math
import random
import secrets
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    RedisError,
    ResponseError,
    TimeoutError,
)

from ._budget import BudgetOwner, Turn
from ._errors import BUDGET_SPENT, ConfigurationError, RateLimitError
from ._models import BudgetStatus
from ._ratelimit import DAY, MINUTE, RateLimit, RateLimiter, logger, wall_time
from ._redisbudget import RedisBudget, public_url
from ._retry import RetryPolicy

SCRIPT = importlib.resources.files(__package__).joinpath("_budget.lua").read_text()
#: What Redis being out of reach looks like (refused, reset, timed out, restarting).
UNREACHABLE = (ConnectionError, TimeoutError, OSError)
KEY_CACHE_SECONDS = 30 * 86_400
#: Real seconds: how often a waiter looks again when its slot belongs to a call in flight,
#: and how long a waiter's place in the queue outlives the wait it was told.
POLL, GRACE = 0.05, 2.0
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 30.0  # seconds on the client's clock
REPLAY_BATCH = 300

# Set while the call that finds this key's user runs: it is counted by this process alone.
_IDENTIFYING: contextvars.ContextVar[bool] = contextvars.ContextVar("identifying", default=False)


@attrs.define
class _Reply:
    """What the script answers: its fields, the server's time and the state's epoch."""

    fields: list[Any]
    now: float
    epoch: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SharedLimiter:
    """Admits one client's API calls within a budget shared through Redis."""

    def __init__(self, budget: RedisBudget, owner: BudgetOwner) -> None:
        self._budget = budget
        self._owner = owner
        self._clock = owner.clock
        self._limit = owner.rate_limit or RateLimit(per_minute=None, per_day=None)
        self._where = public_url(budget.url)
        self._redis = aioredis.Redis.from_url(
            budget.url,
            socket_connect_timeout=budget.timeout,
            socket_timeout=budget.timeout,
            # One quick retry replaces a pooled connection that died with an earlier server;
            # beyond that we fall back to a local share instead of waiting.
            retry=Retry(NoBackoff(), 1),
            client_name="userplane-async",
        )
        self._script = self._redis.register_script(SCRIPT)
        # A test's ScaledClock runs faster than real time: the script's clock runs as fast.
        self._scale = float(getattr(self._clock, "factor", 1.0))
        self._process = secrets.token_hex(8)
        self._call_ids = itertools.count(1)
        self._group = budget.name
        self._keys: list[str] = []
        self._epoch: str | None = None
        self._offset = 0.0  # the server's clock minus ours
        self._processes = 1
        self._answered: deque[tuple[str, float]] = deque()  # this process's calls of the day
        self._solo = RateLimiter(owner.rate_limit, self._clock)  # for the call finding the user
        self._local: RateLimiter | None = None  # our share, while Redis can't be trusted
        self._down_since: float | None = None
        self._reconnect_at = -math.inf
        self._reconnect_wait = RECONNECT_FIRST
        self._distrust_until = -math.inf
        self._paused_until = -math.inf  # the shared pause as last heard, on our clock
        self._replay_due = False
        self._releases: set[asyncio.Future[_Reply | None]] = set()
        self._started = False
        self._start_lock = anyio.Lock()
        self._lock = anyio.Lock()
        self.calls = 0

    def __repr__(self) -> str:
        return f"<SharedLimiter {self._where} group={self._group!r}>"

    # --- admission ---------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Turn]:
        if _IDENTIFYING.get():
            async with self._solo.slot() as turn:
                self.calls += 1
                try:
                    yield turn
                finally:
                    self._answered_at(f"{self._process}:0", turn)
            return
        await self.start()
        call = f"{self._process}:{next(self._call_ids)}"
        turn = Turn()
        async with AsyncExitStack() as stack:
            async with self._lock:
                shared = await self._take(call)
                gate = self._gate(shared)
                local = await stack.enter_async_context(gate.slot()) if gate else None
                self.calls += 1
            try:
                yield turn
            finally:
                if local is not None:
                    local.status = turn.status
                self._answered_at(call, turn)
                if shared:  # in the background: the answer need not wait for Redis
                    self._release_soon(call, turn)

    def _release_soon(self, call: str, turn: Turn) -> None:
        """Free the call's slot a window after now. Until the release lands the slot stays
        leased, which only ever frees it later; aclose() waits for releases under way."""
        if self._down_since is not None:
            return  # Redis is away: the call is re-added with the others when it is back
        release = asyncio.ensure_future(self._run("release", call, "0" if turn.throttled else "1"))
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)

    def _answered_at(self, call: str, turn: Turn) -> None:
        now = self._clock.monotonic()
        self._answered.append((call, now))
        while self._answered and self._answered[0][1] + DAY <= now:
            self._answered.popleft()

    async def _take(self, call: str) -> bool:
        """Wait for a turn in Redis; False if Redis is out of reach (the local share decides)."""
        if not await self._connected():
            return False
        ticket = ""
        try:
            while True:
                reply = await self._run(
                    "acquire",
                    self._process,
                    ticket,
                    call,
                    self._limit.per_minute or 0,
                    self._limit.per_day or 0,
                    self._owner.lease,
                    POLL * self._scale,
                    GRACE * self._scale,
                )
                if reply is None:
                    return False
                admitted, ticket, wait, why, processes = reply.fields
                ticket, wait, self._processes = _text(ticket), float(wait), int(processes)
                if _text(why) == "pause":
                    self._heard_pause(wait)
                if admitted:
                    ticket = ""
                    return True
                if wait > self._limit.max_wait:
                    raise RateLimitError(
                        f"the API budget is spent; the next call is possible in {wait:.0f} s",
                        code=BUDGET_SPENT if _text(why) == "budget" else "RATE_LIMITED",
                        retry_after=wait,
                    )
                await self._clock.sleep(wait)
        finally:
            if ticket and self._down_since is None:  # given up: let the next in line go
                with anyio.CancelScope(shield=True):
                    await self._run("cancel", ticket)

    def _gate(self, shared: bool) -> RateLimiter | None:
        """The local share, while Redis is out of reach or not trusted yet after it was."""
        if shared and self._clock.monotonic() >= self._distrust_until:
            self._local = None
            return None
        if self._local is None:
            self._local = self._share()
        return self._local

    def _share_limit(self) -> RateLimit:
        """This process's part of the budget: the limits over the processes last seen."""

        def share(limit: int | None) -> int | None:
            return None if limit is None else max(1, limit // max(self._processes, 1))

        per_minute, per_day = share(self._limit.per_minute), share(self._limit.per_day)
        return attrs.evolve(self._limit, per_minute=per_minute, per_day=per_day)

    def _share(self) -> RateLimiter:
        """A local limiter for our share, knowing our calls and the shared pause."""
        history = [at for _, at in self._answered]
        share = RateLimiter(self._share_limit(), self._clock, history=history)
        share.pause(self._paused_until - self._clock.monotonic())
        return share

    def _heard_pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    async def rate_limited(self, retry_after: float | None, policy: RetryPolicy) -> float:
        if not _IDENTIFYING.get() and self._keys and self._down_since is None:
            reply = await self._run(
                "throttle",
                -1 if retry_after is None else retry_after,
                policy.wait_initial,
                policy.wait_max,
                policy.wait_exp_base,
                random.random(),  # noqa: S311 - jitter, not cryptography
                policy.wait_scale,
                self._limit.per_minute or 0,
            )
            if reply is not None:
                pause, rate, lowered = reply.fields
                if lowered:
                    logger.warning(
                        "429 although the shared API budget had room: someone else spends "
                        "this user's quota; keeping to %.0f calls a minute for now",
                        float(rate),
                    )
                self._heard_pause(float(pause))
                if self._local is not None:
                    self._local.pause(float(pause))
                return float(pause)
        fallback = self._solo if _IDENTIFYING.get() else (self._local or self._share())
        return await fallback.rate_limited(retry_after, policy)

    # --- Redis -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Reach Redis once: refused credentials are a ConfigurationError, absence a warning."""
        async with self._start_lock:
            if not self._started:
                await self._reach()
                self._started = True

    async def _reach(self) -> None:
        try:
            await self._redis.ping()
        except AuthenticationError as exc:
            raise ConfigurationError(
                f"the Redis budget at {self._where} refused the credentials: {exc}"
            ) from None
        except ResponseError as exc:
            raise ConfigurationError(
                f"the Redis budget at {self._where} answered an error: {exc}"
            ) from None
        except UNREACHABLE as exc:
            self._went_down(exc)

    async def _connected(self) -> bool:
        """Whether Redis decides now: joined to the group, reachable, and told our calls."""
        if self._down_since is not None and self._clock.monotonic() < self._reconnect_at:
            return False
        if not self._keys and not await self._join():
            return False
        if self._down_since is not None and not await self._run("cancel", ""):
            return False  # still away; the next try waits longer
        if self._replay_due:
            await self._replay()
        return self._down_since is None

    async def _join(self) -> bool:
        """Find the group (the key's user, cached in Redis by the key's HMAC) and its keys."""
        try:
            if self._group is None:
                cache = f"userplane-async:key:{self._owner.key_digest}"
                cached = await self._redis.get(cache)
                if cached is None:
                    token = _IDENTIFYING.set(True)
                    try:
                        user = await self._owner.identify()
                    finally:
                        _IDENTIFYING.reset(token)
                    await self._redis.set(cache, user, ex=KEY_CACHE_SECONDS)
                else:
                    user = _text(cached)
                self._group = user
        except UNREACHABLE as exc:
            self._went_down(exc)
            return False
        prefix = f"userplane-async:budget:{{{self._group}}}"
        names = ("minute", "day", "queue", "deadlines", "state", "processes")
        self._keys = [f"{prefix}:{name}" for name in names]
        self._replay_due = True  # calls made before joining (finding the user, say)
        return True

    async def _run(self, op: str, *args: object) -> _Reply | None:
        """Run one operation of the script; None (and the local share) if Redis is away."""
        sent = self._clock.monotonic()
        try:
            # A fresh epoch each time: a state re-created after Redis lost it gets a new one.
            argv: list[Any] = [op, self._scale, secrets.token_hex(8), *args]
            raw = await self._script(keys=self._keys, args=argv)
        except UNREACHABLE as exc:
            self._went_down(exc)
            return None
        except RedisError as exc:  # a script error, or a server that is not quite Redis
            self._went_down(exc)
            return None
        reply = _Reply(list(raw[:-2]), float(_text(raw[-2])), _text(raw[-1]))
        # The script ran between `sent` and now: this offset maps our times onto the server's
        # no earlier than they were, so a call we re-add never frees its slot early.
        self._offset = reply.now - sent
        self._came_back(reply.epoch)
        return reply

    def _went_down(self, exc: BaseException) -> None:
        now = self._clock.monotonic()
        if self._down_since is None:
            self._down_since = now
            if self._local is None:
                self._local = self._share()
            share = self._share_limit()
            logger.warning(
                "the Redis budget at %s is out of reach (%s); this process keeps to its share "
                "(%s a minute, %s a day) until it is back",
                self._where,
                type(exc).__name__,
                share.per_minute or "no limit",
                share.per_day or "no limit",
            )
            self._reconnect_at = now + self._reconnect_wait
        elif now >= self._reconnect_at:  # a try to reconnect failed: wait longer next time
            self._reconnect_wait = min(self._reconnect_wait * 2, RECONNECT_MAX)
            self._reconnect_at = now + self._reconnect_wait

    def _came_back(self, epoch: str) -> None:
        lost = self._epoch is not None and epoch != self._epoch
        recovered = self._down_since is not None
        if lost:
            logger.warning(
                "the Redis budget at %s lost its state; re-adding this process's calls",
                self._where,
            )
        if recovered:
            logger.warning("the Redis budget at %s is back; sharing it again", self._where)
            self._down_since = None
            self._reconnect_wait = RECONNECT_FIRST
        if lost or recovered:
            # Redis cannot know of the calls others made meanwhile, nor those it forgot: an
            # empty window is not trusted until a minute has passed; our share holds till then.
            self._replay_due = True
            self._distrust_until = self._clock.monotonic() + MINUTE
        self._epoch = epoch

    async def _replay(self) -> None:
        """Tell Redis of this process's calls of the last day it may not know of."""
        self._replay_due = False
        if self._epoch is None and await self._run("cancel", "") is None:
            self._replay_due = True  # first contact: learn the server's clock first
            return
        calls: Sequence[tuple[str, float]] = list(self._answered)
        for start in range(0, len(calls), REPLAY_BATCH):
            args: list[object] = []
            for call, at in calls[start : start + REPLAY_BATCH]:
                server_at = at + self._offset
                args += [call, server_at + MINUTE, server_at + DAY]
            if await self._run("replay", *args) is None:
                self._replay_due = True
                return

    # --- reporting and closing ------------------------------------------------------------------

    async def status(self) -> BudgetStatus:
        await self.start()
        reply = None
        if await self._connected():
            reply = await self._run("status", self._limit.per_minute or 0)
        if reply is None:
            local = await (self._local or self._share()).status()
            return attrs.evolve(local, group=self._group, processes=self._processes)
        used_minute, used_day, paused, rate, processes = reply.fields
        per_day = self._limit.per_day
        pause = float(paused)
        self._heard_pause(pause)
        return BudgetStatus(
            shared=True,
            group=self._group,
            used_last_minute=int(used_minute),
            used_today=int(used_day),
            remaining_today=None if per_day is None else max(per_day - int(used_day), 0),
            paused_until=wall_time(self._clock, pause) if pause > 0 else None,
            rate_per_minute=float(rate) if self._limit.per_minute is not None else None,
            processes=int(processes),
        )

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._releases:
                await asyncio.wait(list(self._releases), timeout=2 * self._budget.timeout)
            await self._redis.aclose()

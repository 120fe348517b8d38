"""Where API calls take their turn: the ``Budget`` a client is given, and what it reports.

A :class:`Budget` is configuration (``LocalBudget()``, ``RedisBudget(url)``); each client opens
it into a :class:`Limiter` of its own, which admits that client's calls. The limiter is the
only thing the transport and the retry loop see, so a budget shared through Redis plugs in
without the core knowing where the count lives.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

import attrs

from ._models import BudgetStatus

if TYPE_CHECKING:
    from ._clock import Clock
    from ._ratelimit import RateLimit
    from ._retry import RetryPolicy


class Turn:
    """One API call's hold on the budget; the transport notes the answer's status on it."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        self.status: int | None = None  # None: no answer (a network failure)

    @property
    def throttled(self) -> bool:
        return self.status == 429


class Limiter(Protocol):
    """A client's admission to its budget: what the transport and the retry loop use."""

    calls: int  # API calls let through by this client, retries included

    def slot(self) -> AbstractAsyncContextManager[Turn]:
        """Wait for budget, then hold it for one API call (from admission to its answer)."""

    async def rate_limited(self, retry_after: float | None, policy: RetryPolicy) -> float:
        """Note a 429 and pause every caller; returns the pause in seconds.

        ``retry_after`` is the server's, if it sent one; without it the pause grows with each
        429 in a row (``policy``'s backoff) and starts over after an answer that is not a 429.
        """

    async def start(self) -> None:
        """Reach the budget's store, if it has one; wrong settings raise ConfigurationError."""

    async def status(self) -> BudgetStatus: ...

    async def aclose(self) -> None: ...


@attrs.frozen
class BudgetOwner:
    """What a client tells the budget it opens: its limits, its clock and its key's identity.

    ``identify`` makes one API call that answers the key's user ID (``me()``); a shared budget
    calls it once per key, when no process has cached the answer yet. ``lease`` bounds how
    long one API call can take, so a call whose process died is not counted forever.
    """

    rate_limit: RateLimit | None
    clock: Clock
    key_digest: str = attrs.field(repr=False)
    identify: Callable[[], Awaitable[str]] = attrs.field(repr=False)
    lease: float = 120.0


class Budget(Protocol):
    """Anything ``AsyncUserplane(budget=...)`` accepts: opened once per client."""

    def open(self, owner: BudgetOwner) -> Limiter: ...


def key_digest(api_key: str) -> str:
    """A name for the key that Redis may hold: an HMAC, so the key cannot be read back."""
    return hmac.new(api_key.encode(), b"userplane-async budget v1", hashlib.sha256).hexdigest()

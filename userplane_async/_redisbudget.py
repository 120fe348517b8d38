"""``RedisBudget``: one API budget for every process and machine of a user, kept in Redis.

This module is only configuration and stays import-light; the limiter, and redis-py with it,
load when a client opens the budget (``pip install 'userplane-async[redis]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from yarl import URL

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._budget import BudgetOwner, Limiter

SCHEMES = ("redis", "rediss", "unix")
EXTRA_HINT = "the Redis budget needs redis-py: pip install 'userplane-async[redis]'"


def public_url(url: str) -> str:
    """The URL without its user name or password, fit for logs and errors."""
    try:
        return str(URL(url).with_user(None))
    except ValueError:
        return "<an unparsable URL>"


def _check_url(_: object, __: object, url: Any) -> None:
    if not isinstance(url, str):
        raise ConfigurationError(f"the budget URL must be a str, not {type(url).__name__}")
    scheme = url.partition("://")[0]
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"the budget URL must start with redis://, rediss:// or unix://, not "
            f"{public_url(url)!r}"
        )
    try:
        from redis.asyncio.connection import parse_url
    except ImportError:
        raise ConfigurationError(EXTRA_HINT) from None
    try:
        parse_url(url)
    except ValueError as exc:  # redis-py's messages name the part, never the password
        raise ConfigurationError(
            f"the budget URL {public_url(url)!r} is not valid: {exc}"
        ) from None


def _check_name(_: object, __: object, name: Any) -> None:
    if name is not None and (not isinstance(name, str) or not name.isprintable() or not name):
        raise ConfigurationError("the budget name must be a non-empty printable str, or None")


@attrs.frozen
class RedisBudget:
    """The API budget of a user, shared through Redis by all their clients, on any machine.

    Userplane counts its limits per user, across all of that user's keys; so does this budget.
    Each key's user is found once (one ``me()`` call, counted) and cached in Redis under an
    HMAC of the key, never the key itself; ``name`` sets the group instead (clients that give
    the same name share one budget, whoever their keys belong to).

    While Redis is out of reach, each process keeps to its share of the budget (the limits
    divided by the processes last seen) and logs one warning; sharing resumes once Redis is
    back. A URL that cannot work (a wrong scheme, refused credentials) is a
    :class:`ConfigurationError`. ``timeout`` bounds each Redis round trip, in seconds.
    """

    url: str = attrs.field(validator=_check_url, repr=public_url)
    name: str | None = attrs.field(default=None, kw_only=True, validator=_check_name)
    timeout: float = attrs.field(default=1.0, kw_only=True, validator=attrs.validators.gt(0))

    def open(self, owner: BudgetOwner) -> Limiter:
        from ._redislimiter import SharedLimiter

        return SharedLimiter(self, owner)

"""Asyncio-first SDK for the Userplane public API.

```python
from userplane_async import AsyncUserplane, ResourceKind

async with AsyncUserplane() as client:
    async for recording in client.recordings.list("ws_1"):
        ...
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The errors are loaded with the package (they need nothing but the standard library), so a
# traceback names them by their public path even before the caller has touched one.
from ._errors import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    DestinationError,
    DownloadError,
    GoneError,
    IntegrityError,
    InvalidIDError,
    NotFoundError,
    ObjectStoreError,
    PermissionDeniedError,
    RangeNotSatisfiableError,
    RateLimitError,
    RequestTimeoutError,
    ResourceUnavailableError,
    ResponseFormatError,
    ServerError,
    StorageError,
    TLSError,
    TransportError,
    URLExpiredError,
    URLPolicyError,
    UserplaneAPIError,
    UserplaneError,
)

if TYPE_CHECKING:
    from ._blocking import Userplane
    from ._blocking_resources import BlockingResourceStream, Paginator
    from ._budget import Budget
    from ._client import AsyncUserplane
    from ._clock import Clock
    from ._destination import verify_archive
    from ._events import (
        ArchiveEvent,
        ArchiveFinished,
        ArchiveStarted,
        DownloadFinished,
        DownloadProgress,
        DownloadRetried,
        DownloadStarted,
        ItemFailed,
        RecordingQueued,
    )
    from ._http import Timeout
    from ._models import (
        BudgetStatus,
        Creator,
        DeletedLink,
        DeletedRecording,
        Domain,
        InviteURL,
        Link,
        Me,
        Page,
        Pagination,
        Project,
        ProjectRef,
        Recording,
        RecordingLink,
        RecordingMeta,
        RecordingResource,
        ResourceKind,
        ResourceSource,
        User,
        UserStats,
        Workspace,
        WorkspaceMembership,
    )
    from ._pagination import AsyncPaginator
    from ._ranges import ByteRange
    from ._ratelimit import LocalBudget, RateLimit
    from ._redisbudget import RedisBudget
    from ._results import ArchiveReport, DownloadResult, ItemStatus, ManifestEntry, VerifyReport
    from ._retry import RetryPolicy
    from ._stream import ResourceStream
    from ._version import __version__

#: Where each other public name lives. They load on first use (PEP 562), so that
#: ``import userplane_async`` costs only what the caller uses: aiohttp, attrs and cattrs come
#: with the first client or model, not with the package.
_LAZY: dict[str, tuple[str, ...]] = {
    "_blocking": ("Userplane",),
    "_blocking_resources": ("BlockingResourceStream", "Paginator"),
    "_budget": ("Budget",),
    "_client": ("AsyncUserplane",),
    "_clock": ("Clock",),
    "_destination": ("verify_archive",),
    "_events": (
        "ArchiveEvent",
        "ArchiveFinished",
        "ArchiveStarted",
        "DownloadFinished",
        "DownloadProgress",
        "DownloadRetried",
        "DownloadStarted",
        "ItemFailed",
        "RecordingQueued",
    ),
    "_http": ("Timeout",),
    "_models": (
        "BudgetStatus",
        "Creator",
        "DeletedLink",
        "DeletedRecording",
        "Domain",
        "InviteURL",
        "Link",
        "Me",
        "Page",
        "Pagination",
        "Project",
        "ProjectRef",
        "Recording",
        "RecordingLink",
        "RecordingMeta",
        "RecordingResource",
        "ResourceKind",
        "ResourceSource",
        "User",
        "UserStats",
        "Workspace",
        "WorkspaceMembership",
    ),
    "_pagination": ("AsyncPaginator",),
    "_ranges": ("ByteRange",),
    "_ratelimit": ("LocalBudget", "RateLimit"),
    "_redisbudget": ("RedisBudget",),
    "_results": ("ArchiveReport", "DownloadResult", "ItemStatus", "ManifestEntry", "VerifyReport"),
    "_retry": ("RetryPolicy",),
    "_stream": ("ResourceStream",),
    "_version": ("__version__",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "ArchiveEvent",
    "ArchiveFinished",
    "ArchiveReport",
    "ArchiveStarted",
    "AsyncPaginator",
    "AsyncUserplane",
    "AuthenticationError",
    "BlockingResourceStream",
    "Budget",
    "BudgetStatus",
    "ByteRange",
    "ClientClosedError",
    "Clock",
    "ConfigurationError",
    "ConnectError",
    "Creator",
    "DeletedLink",
    "DeletedRecording",
    "DestinationError",
    "Domain",
    "DownloadError",
    "DownloadFinished",
    "DownloadProgress",
    "DownloadResult",
    "DownloadRetried",
    "DownloadStarted",
    "GoneError",
    "IntegrityError",
    "InvalidIDError",
    "InviteURL",
    "ItemFailed",
    "ItemStatus",
    "Link",
    "LocalBudget",
    "ManifestEntry",
    "Me",
    "NotFoundError",
    "ObjectStoreError",
    "Page",
    "Pagination",
    "Paginator",
    "PermissionDeniedError",
    "Project",
    "ProjectRef",
    "RangeNotSatisfiableError",
    "RateLimit",
    "RateLimitError",
    "Recording",
    "RecordingLink",
    "RecordingMeta",
    "RecordingQueued",
    "RecordingResource",
    "RedisBudget",
    "RequestTimeoutError",
    "ResourceKind",
    "ResourceSource",
    "ResourceStream",
    "ResourceUnavailableError",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "StorageError",
    "TLSError",
    "Timeout",
    "TransportError",
    "URLExpiredError",
    "URLPolicyError",
    "User",
    "UserStats",
    "Userplane",
    "UserplaneAPIError",
    "UserplaneError",
    "VerifyReport",
    "Workspace",
    "WorkspaceMembership",
    "__version__",
    "verify_archive",
]


def _published(obj: Any) -> Any:
    """Show users the public path (userplane_async.AsyncUserplane), not the private module."""
    if getattr(obj, "__module__", "").startswith(f"{__name__}."):
        obj.__module__ = __name__
    return obj


for _name in __all__:
    if _name in globals():
        _published(globals()[_name])
del _name

if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        loaded = importlib.import_module(f"{__name__}.{module}")
        for public in _LAZY[module]:
            globals()[public] = _published(getattr(loaded, public))
        return globals()[name]

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})

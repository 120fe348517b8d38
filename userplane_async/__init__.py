"""Asyncio-first SDK for the Userplane public API.

```python
from userplane_async import AsyncUserplane, ResourceKind

async with AsyncUserplane() as client:
    async for recording in client.recordings.list("ws_1"):
        ...
```
"""

from __future__ import annotations

from ._blocking import Userplane
from ._blocking_resources import BlockingResourceStream, Paginator
from ._budget import Budget
from ._client import AsyncUserplane
from ._clock import Clock
from ._destination import verify_archive
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

# Show users the public path (userplane_async.AsyncUserplane), not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("userplane_async."):
        _obj.__module__ = __name__
del _name, _obj

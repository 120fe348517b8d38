"""A fake Userplane for tests and demos: the API and its object store, in-process.

```python
from userplane_async.testing import FakeUserplane, ResetAfter

async with FakeUserplane() as fake:
    workspace_id = fake.seed_demo()
    fake.script_storage(ResetAfter(1024), kind="video")  # the next video GET breaks
    # point a client at fake.base_url with fake.api_key
```
"""

from __future__ import annotations

from ._clock import FakeClock, ScaledClock
from ._content import FakeResource
from ._log import RequestRecord
from ._redis import RedisServer
from ._s3server import S3FaultProxy, S3Server
from ._seeding import DEFAULT_API_KEY
from ._server import FakeUserplane
from ._storage_faults import (
    ChunkedWithoutEnd,
    CloseWithoutLength,
    Expired,
    IgnoreRange,
    Redirect,
    ReplaceAfter,
    ResetAfter,
    S3Error,
    ShiftContentRange,
    StallAfter,
    StorageFault,
    Trickle,
    TruncateAfter,
    WrongLength,
)

__all__ = [
    "DEFAULT_API_KEY",
    "ChunkedWithoutEnd",
    "CloseWithoutLength",
    "Expired",
    "FakeClock",
    "FakeResource",
    "FakeUserplane",
    "IgnoreRange",
    "Redirect",
    "RedisServer",
    "ReplaceAfter",
    "RequestRecord",
    "ResetAfter",
    "S3Error",
    "S3FaultProxy",
    "S3Server",
    "ScaledClock",
    "ShiftContentRange",
    "StallAfter",
    "StorageFault",
    "Trickle",
    "TruncateAfter",
    "WrongLength",
]

for _public in (
    ChunkedWithoutEnd,
    CloseWithoutLength,
    Expired,
    FakeClock,
    FakeResource,
    FakeUserplane,
    IgnoreRange,
    Redirect,
    ReplaceAfter,
    RedisServer,
    RequestRecord,
    ResetAfter,
    S3Error,
    ScaledClock,
    ShiftContentRange,
    StallAfter,
    Trickle,
    TruncateAfter,
    WrongLength,
):
    _public.__module__ = __name__
del _public

"""A fake Userplane for tests and demos: the API and its object store, in-process.

```python
from userplane_async.testing import FakeUserplane

async with FakeUserplane() as fake:
    workspace_id = fake.seed_demo()
    # point a client at fake.base_url with fake.api_key
```
"""

from __future__ import annotations

from ._clock import FakeClock, ScaledClock
from ._content import FakeResource
from ._log import RequestRecord
from ._server import DEFAULT_API_KEY, FakeUserplane

__all__ = [
    "DEFAULT_API_KEY",
    "FakeClock",
    "FakeResource",
    "FakeUserplane",
    "RequestRecord",
    "ScaledClock",
]

FakeClock.__module__ = __name__
FakeResource.__module__ = __name__
FakeUserplane.__module__ = __name__
RequestRecord.__module__ = __name__
ScaledClock.__module__ = __name__

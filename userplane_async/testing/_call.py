"""What a route handler gets: the store, the caller and the request's parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import attrs

from ._http import Reply
from ._presign import Presigner
from ._records import Member, User, Workspace
from ._store import Store


@attrs.frozen
class Call:
    """One authenticated API call, already routed."""

    store: Store
    presigner: Presigner
    user: User
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    now: datetime

    def membership(self) -> tuple[Workspace, Member]:
        """The path's workspace and the caller's membership (404 / 403 otherwise)."""
        return self.store.membership(self.user, self.params["workspace"])


Handler = Callable[[Call], Reply]

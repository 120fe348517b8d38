"""The API behind the front door: authentication, the rate limit, then the route's handler."""

from __future__ import annotations

import attrs
from aiohttp import web

from . import _api_account, _api_links, _api_recordings
from ._call import Call, Handler
from ._http import RATE_LIMITED_MESSAGE, ApiError, error_response, from_epoch, ok_response
from ._log import Exchange
from ._presign import Presigner
from ._quota import Quota
from ._routes import Match
from ._store import Store

HANDLERS: dict[str, Handler] = {
    "me": _api_account.me,
    "workspaces.list": _api_account.list_workspaces,
    "workspaces.get": _api_account.get_workspace,
    "workspaces.invite_url": _api_account.invite_url,
    "projects.list": _api_account.list_projects,
    "projects.get": _api_account.get_project,
    "links.list": _api_links.list_links,
    "links.create": _api_links.create_link,
    "links.get": _api_links.get_link,
    "links.update": _api_links.update_link,
    "links.delete": _api_links.delete_link,
    "recordings.list": _api_recordings.list_recordings,
    "recordings.get": _api_recordings.get_recording,
    "recordings.delete": _api_recordings.delete_recording,
    "recordings.resource": _api_recordings.get_resource,
}


@attrs.define
class Api:
    """Answers routed API requests; counts the 429s its limit produces."""

    store: Store
    presigner: Presigner
    quota: Quota
    rate_limited_count: int = 0

    async def serve(
        self, request: web.Request, match: Match, arrival: float, now: float, exchange: Exchange
    ) -> web.Response:
        """Authenticate, apply the per-user limit at ``arrival``, then run the handler."""
        try:
            user = self.store.authenticate(request.headers.get("Authorization"))
            exchange.user_id = user.id
            if not self.quota.admit(user.id, arrival):
                self.rate_limited_count += 1
                raise ApiError(429, "RATE_LIMITED", RATE_LIMITED_MESSAGE)
            body = await request.read()
            call = Call(
                self.store, self.presigner, user, match.params, request.query, body, from_epoch(now)
            )
            return ok_response(HANDLERS[match.name](call))
        except ApiError as error:
            return error_response(error.status, error.code, error.message)

"""The API's route table, matched on raw path segments decoded one at a time.

aiohttp's router matches the *decoded* path, so an ID holding ``%2F`` would split in two;
the fake routes everything through one catch-all and matches the raw segments here.
"""

from __future__ import annotations

from urllib.parse import unquote

import attrs
from aiohttp import web

from ._content import RESOURCE_KINDS
from ._http import error_response
from ._presign import STORAGE_PREFIX

API_PREFIX = "/api/v1"
STORAGE_ROUTE = "storage.get"
UNKNOWN_ROUTE = "unknown"

_WS = ("public", "workspace", "{workspace}")


@attrs.frozen
class Route:
    name: str
    method: str
    pattern: tuple[str, ...]

    def bind(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters if ``segments`` fit the pattern, else ``None``."""
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for part, value in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                if not value or (part == "{kind}" and value not in RESOURCE_KINDS):
                    return None
                params[part[1:-1]] = value
            elif part != value:
                return None
        return params


ROUTES = (
    Route("me", "GET", ("public", "me")),
    Route("workspaces.list", "GET", ("public", "workspaces")),
    Route("workspaces.get", "GET", _WS),
    Route("workspaces.invite_url", "GET", (*_WS, "invite-url")),
    Route("projects.list", "GET", (*_WS, "projects")),
    Route("projects.get", "GET", (*_WS, "projects", "{project}")),
    Route("links.list", "GET", (*_WS, "links")),
    Route("links.create", "POST", (*_WS, "links")),
    Route("links.get", "GET", (*_WS, "links", "{link}")),
    Route("links.update", "PUT", (*_WS, "links", "{link}")),
    Route("links.delete", "DELETE", (*_WS, "links", "{link}")),
    Route("recordings.list", "GET", (*_WS, "recordings")),
    Route("recordings.get", "GET", (*_WS, "recordings", "{recording}")),
    Route("recordings.delete", "DELETE", (*_WS, "recordings", "{recording}")),
    Route("recordings.resource", "GET", (*_WS, "recordings", "{recording}", "{kind}")),
)

API_ROUTE_NAMES = frozenset(route.name for route in ROUTES)
ROUTE_NAMES = API_ROUTE_NAMES | {STORAGE_ROUTE}


@attrs.frozen
class Match:
    name: str
    params: dict[str, str]


def api_segments(raw_path: str) -> list[str] | None:
    """The decoded segments after ``/api/v1``, or ``None`` for a path outside the API."""
    if not raw_path.startswith(API_PREFIX + "/"):
        return None
    return [unquote(part) for part in raw_path[len(API_PREFIX) + 1 :].split("/")]


def match(method: str, segments: list[str]) -> Match | list[str]:
    """The route for ``method`` and ``segments``, or the methods the path allows (maybe none)."""
    allowed = []
    for route in ROUTES:
        params = route.bind(segments)
        if params is None:
            continue
        if route.method == method:
            return Match(route.name, params)
        allowed.append(route.method)
    return allowed


def _is_storage(raw_path: str) -> bool:
    return raw_path == STORAGE_PREFIX or raw_path.startswith(STORAGE_PREFIX + "/")


def resolve(method: str, raw_path: str) -> tuple[str, Match | web.Response | None]:
    """The route name and its match, or an answer for a path no route takes."""
    if _is_storage(raw_path):
        return STORAGE_ROUTE, None
    segments = api_segments(raw_path)
    found = match(method, segments) if segments is not None else []
    if isinstance(found, Match):
        return found.name, found
    if found:
        allowed = ", ".join(sorted(set(found)))
        answer = error_response(
            405, "METHOD_NOT_ALLOWED", f"Method {method} not allowed", {"Allow": allowed}
        )
        return UNKNOWN_ROUTE, answer
    return UNKNOWN_ROUTE, error_response(404, "NOT_FOUND", "Route not found")

"""What every API namespace shares: the transport, path building and list paging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .._errors import ConfigurationError
from .._http import ApiTransport
from .._models import Page
from .._pagination import AsyncPaginator, parse_page
from .._urls import path_segment

T = TypeVar("T")

QueryValue = str | int | bool | None


def workspace_path(workspace_id: str, *rest: tuple[str, object] | str) -> list[str]:
    """``public/workspace/{id}/...``: each ``(name, id)`` pair is checked and encoded."""
    segments = ["public", "workspace", path_segment(workspace_id, "workspace_id")]
    for part in rest:
        segments.append(part if isinstance(part, str) else path_segment(part[1], part[0]))
    return segments


def query(params: Mapping[str, QueryValue]) -> dict[str, str]:
    """Query parameters as the API expects them: no Nones, booleans as ``true``/``false``."""
    out: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, (str, int)):
            out[name] = str(value)
        else:
            raise ConfigurationError(f"query parameter {name!r} must be a str, int or bool")
    return out


class Namespace:
    """Base of the API namespaces: holds the transport."""

    def __init__(self, http: ApiTransport) -> None:
        self._http = http

    def _paginate(
        self,
        segments: list[str],
        key: str,
        item: type[T],
        *,
        per_page: int,
        max_per_page: int,
        params: Mapping[str, QueryValue],
    ) -> AsyncPaginator[T]:
        if isinstance(per_page, bool) or not isinstance(per_page, int):
            raise ConfigurationError("per_page must be an int")
        if not 1 <= per_page <= max_per_page:
            raise ConfigurationError(f"per_page must be between 1 and {max_per_page}")
        fixed = query(params)

        async def fetch(number: int) -> Page[T]:
            page_query = {**fixed, "page": str(number), "per_page": str(per_page)}
            data = await self._http.request("GET", segments, params=page_query)
            return parse_page(data, key, item, "$.data")

        return AsyncPaginator(fetch)

    async def _get(self, segments: list[str], **params: QueryValue) -> dict[str, Any]:
        return await self._http.request("GET", segments, params=query(params))

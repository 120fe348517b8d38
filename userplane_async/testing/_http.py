"""Shared HTTP pieces of the fake API: envelopes, error bodies, timestamps and pagination."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import attrs
from aiohttp import web

T = TypeVar("T")

_DIGITS = re.compile(r"[0-9]+")
_MAX_PAGE = 9_007_199_254_740_991  # JavaScript's Number.MAX_SAFE_INTEGER, as the docs show

RATE_LIMITED_MESSAGE = (
    "Rate limit exceeded. Wait and retry with exponential backoff. "
    "See https://docs.userplane.io/api/rate-limits"
)

Reply = tuple[str, dict[str, Any]]
"""What a route handler returns: the envelope's ``message`` and ``data``."""


class ApiError(Exception):
    """Raised inside the fake to answer with ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def ok_response(reply: Reply) -> web.Response:
    message, data = reply
    return web.json_response({"message": message, "data": data})


def to_utc(value: datetime) -> datetime:
    """A timezone-aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def from_epoch(seconds: float) -> datetime:
    """A UTC datetime for Unix time ``seconds``, truncated to whole seconds like the API shows."""
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc)


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with a ``Z`` suffix, as in the docs' examples (``2023-11-07T05:31:56Z``)."""
    if value is None:
        return None
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_param(query: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise ApiError(
            400, "VALIDATION_ERROR", f"{name} must be an integer between 1 and {maximum}"
        )
    return int(raw)


@attrs.frozen
class Page:
    page: int
    per_page: int

    @classmethod
    def from_query(cls, query: Mapping[str, str], default: int, maximum: int) -> Page:
        """Parse ``page`` and ``per_page``; a bad value is a 400 ``VALIDATION_ERROR``."""
        page = _int_param(query, "page", 1, _MAX_PAGE)
        return cls(page, _int_param(query, "per_page", default, maximum))

    def slice(self, items: Sequence[T]) -> tuple[list[T], dict[str, Any]]:
        """This page of ``items`` and the ``pagination`` object describing it."""
        total = len(items)
        total_pages = math.ceil(total / self.per_page)
        start = (self.page - 1) * self.per_page
        pagination = {
            "page": self.page,
            "perPage": self.per_page,
            "total": total,
            "totalPages": total_pages,
            "hasMore": self.page < total_pages,
        }
        return list(items[start : start + self.per_page]), pagination


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON request body that must be an object; anything else is a 400."""
    try:
        value = json.loads(body)
    except ValueError:
        raise ApiError(400, "VALIDATION_ERROR", "Request body must be valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "VALIDATION_ERROR", "Request body must be a JSON object")
    return value


def optional_field(body: Mapping[str, Any], name: str, kind: type) -> Any:
    """``body[name]`` if present and of type ``kind`` (``None`` allowed), else a 400."""
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise ApiError(400, "VALIDATION_ERROR", f"{name} has the wrong type")
    return value

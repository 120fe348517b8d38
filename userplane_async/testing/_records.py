"""The fake's in-memory rows: one mutable attrs class per thing the API talks about."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import attrs

from ._content import StoredObject

ROLES = ("owner", "admin", "member")
KEY_STATUSES = ("active", "disabled", "expired")


def member_id(workspace_id: str, user_id: str) -> str:
    """A stable, opaque workspace-member ID for one user in one workspace."""
    digest = hashlib.sha256(f"{workspace_id}\0{user_id}".encode()).hexdigest()
    return f"wsm_{digest[:16]}"


@attrs.define
class User:
    id: str
    name: str
    email: str
    created_at: datetime


@attrs.define
class ApiKey:
    key: str
    user_id: str
    status: str


@attrs.define
class Member:
    id: str
    user_id: str
    role: str
    joined_at: datetime


@attrs.define
class Workspace:
    id: str
    name: str
    created_at: datetime
    members: dict[str, Member] = attrs.field(factory=dict)


@attrs.define
class Project:
    id: str
    workspace_id: str
    title: str
    created_at: datetime
    deleted: bool = False


@attrs.define
class Domain:
    id: str
    workspace_id: str
    url: str
    status: str


@attrs.define
class Link:
    id: str
    workspace_id: str
    title: str | None
    project_id: str | None
    domain_id: str | None
    reusable: bool
    provider_type: str | None
    provider_id: str | None
    provider_ref: str | None
    meta: dict[str, Any]
    creator_user_id: str
    created_at: datetime
    deleted: bool = False


@attrs.define
class Recording:
    id: str
    workspace_id: str
    project_id: str | None
    link_id: str | None
    created_by: str
    duration_ms: int | None
    status: str
    custom_meta: dict[str, Any]
    system_meta: dict[str, Any]
    notes: str | None
    expires_at: datetime | None
    created_at: datetime
    resources: dict[str, StoredObject]
    deleted: bool = False

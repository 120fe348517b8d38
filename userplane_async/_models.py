"""The API's objects as frozen attrs classes; (de)serialization lives in ``_convert``.

Fields the docs mark as examples or leave undocumented are optional, enum-like values are
open strings, and free-form objects stay dicts (userplane-api.md, "model [inferred] leniently").
A field whose JSON key is not the camelCase of its name says so in ``metadata={"json": ...}``.
"""

# No ``from __future__ import annotations`` here: the public classes report their module as
# ``userplane_async``, where string annotations could not be resolved (typing.get_type_hints).
import enum
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from ._urls import redact_url

T = TypeVar("T")


class ResourceKind(str, enum.Enum):
    """The five resources of a recording; values are the API's path suffixes."""

    VIDEO = "video"
    THUMBNAIL = "thumbnail"
    CONSOLE_LOG = "console-log"
    NETWORK_LOG = "network-log"
    ACTION = "action"

    def __str__(self) -> str:
        return self.value


# --- me -------------------------------------------------------------------------------------


@attrs.frozen
class User:
    id: str
    name: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    image: str | None = None
    created_at: datetime | None = None


@attrs.frozen
class UserStats:
    workspaces: int | None = None
    recordings: int | None = None
    links: int | None = None


@attrs.frozen
class Me:
    """The key's user and their aggregate stats (``GET /public/me``)."""

    user: User
    stats: UserStats | None = None


# --- workspaces and projects ----------------------------------------------------------------


@attrs.frozen
class WorkspaceMembership:
    workspace_member_id: str | None = None
    workspace_role: str | None = None
    workspace_joined_at: datetime | None = None


@attrs.frozen
class Workspace:
    workspace_id: str
    workspace_name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    workspace_membership: WorkspaceMembership | None = None


@attrs.frozen
class InviteURL:
    workspace_id: str
    invite_url: str


@attrs.frozen
class Project:
    project_id: str
    title: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


# --- shared references ----------------------------------------------------------------------


@attrs.frozen
class ProjectRef:
    project_id: str
    title: str | None = None


@attrs.frozen
class Creator:
    workspace_member_id: str
    name: str | None = None


@attrs.frozen
class Domain:
    domain_id: str
    url: str | None = None
    status: str | None = None


# --- links ----------------------------------------------------------------------------------


@attrs.frozen
class Link:
    link_id: str
    link_title: str | None = None
    link_type: str | None = None
    link_reusable: bool | None = None
    link_provider_type: str | None = None
    link_provider_id: str | None = None
    link_provider_reference: str | None = None
    link_url: str | None = attrs.field(default=None, metadata={"json": "linkURL"})
    meta: dict[str, Any] | None = None
    created_at: datetime | None = None
    project: ProjectRef | None = None
    creator: Creator | None = None
    domain: Domain | None = None


@attrs.frozen
class DeletedLink:
    workspace_id: str
    link_id: str


# --- recordings -----------------------------------------------------------------------------


@attrs.frozen
class RecordingLink:
    """The link that produced a recording (``meta.link``)."""

    link_id: str
    title: str | None = None
    provider_type: str | None = None
    provider_id: str | None = None
    provider_ref: str | None = None
    created_at: datetime | None = None
    provider_data: Any = None


@attrs.frozen
class RecordingMeta:
    workspace_id: str | None = None
    status: str | None = None
    link: RecordingLink | None = None
    creator: Creator | None = None
    project: ProjectRef | None = None
    domain: Domain | None = None
    system_meta: dict[str, Any] | None = None
    custom_meta: dict[str, Any] | None = None
    notes: str | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen
class Recording:
    recording_id: str
    recording_duration_ms: int | None = None
    recording_started_at: datetime | None = None
    meta: RecordingMeta | None = None


@attrs.frozen
class DeletedRecording:
    workspace_id: str
    recording_id: str


@attrs.frozen
class ResourceSource:
    """One source of a video; ``url`` is a presigned URL and never shown in ``repr``."""

    url: str = attrs.field(repr=redact_url)
    type: str | None = None


@attrs.frozen
class RecordingResource:
    """Where one resource of a recording can be fetched, right now.

    ``url`` is a short-lived presigned URL: use it once and drop it (``repr`` hides its query).
    It is ``None`` when the resource is unavailable; ``message`` and ``capture_enabled`` say why.
    """

    recording_id: str
    kind: ResourceKind | None = None
    url: str | None = attrs.field(default=None, repr=redact_url)
    message: str | None = None
    type: str | None = None
    size: int | None = None
    capture_enabled: bool | None = None
    duration_ms: int | None = None
    sources: tuple[ResourceSource, ...] = ()

    @property
    def available(self) -> bool:
        return self.url is not None


# --- pagination -----------------------------------------------------------------------------


@attrs.frozen
class Pagination:
    page: int
    per_page: int
    total: int | None = None
    total_pages: int | None = None
    has_more: bool = False


@attrs.frozen
class Page(Generic[T]):
    """One page of a list endpoint."""

    items: tuple[T, ...]
    pagination: Pagination


# --- the API budget ---------------------------------------------------------------------


@attrs.frozen
class BudgetStatus:
    """The API budget as one client sees it, from :meth:`AsyncUserplane.budget_status`.

    ``shared`` is true while the count comes from Redis; ``group`` names what is shared (the
    user's ID, or ``RedisBudget(name=...)``). ``used_last_minute`` and ``used_today`` count
    calls still inside each window (in flight or answered less than a window ago), by every
    process of the group; ``remaining_today`` is what the daily window still admits.
    ``rate_per_minute`` is the per-minute limit in force: lower than the configured one
    after 429s showed that someone outside the SDK spends the same quota. ``processes`` is
    how many processes used the budget in the last minute.
    """

    shared: bool
    used_last_minute: int
    used_today: int
    processes: int = 1
    group: str | None = None
    remaining_today: int | None = None
    paused_until: datetime | None = None
    rate_per_minute: float | None = None

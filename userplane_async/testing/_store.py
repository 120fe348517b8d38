"""The fake's data and the lookups routes share, answering with the documented error codes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeVar

from ._http import ApiError
from ._records import ApiKey, Domain, Link, Member, Project, Recording, User, Workspace

API_KEY_REQUIRED_MESSAGE = (
    "API key is required. Include it as Authorization: Bearer <your-api-key>. "
    "See https://docs.userplane.io/api/authentication"
)


class _Dated(Protocol):
    id: str
    created_at: datetime


D = TypeVar("D", bound=_Dated)


def newest_first(items: Iterable[D]) -> list[D]:
    """Order by ``createdAt`` descending; equal timestamps by ID ascending."""
    by_id = sorted(items, key=lambda item: item.id)
    return sorted(by_id, key=lambda item: item.created_at, reverse=True)


def oldest_first(items: Iterable[D]) -> list[D]:
    """Order by ``createdAt`` ascending, then by ID."""
    return sorted(items, key=lambda item: (item.created_at, item.id))


class Store:
    """Every row of the fake, keyed by ID (IDs are unique across workspaces)."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.keys: dict[str, ApiKey] = {}
        self.workspaces: dict[str, Workspace] = {}
        self.projects: dict[str, Project] = {}
        self.domains: dict[str, Domain] = {}
        self.links: dict[str, Link] = {}
        self.recordings: dict[str, Recording] = {}

    def authenticate(self, header: str | None) -> User:
        """The user owning the bearer key in ``header``, or the documented 401/403."""
        scheme, _, key = (header or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "API_KEY_REQUIRED", API_KEY_REQUIRED_MESSAGE)
        found = self.keys.get(key)
        if found is None:
            raise ApiError(401, "API_KEY_INVALID", "Invalid API key")
        if found.status == "expired":
            raise ApiError(401, "API_KEY_EXPIRED", "API key has expired")
        if found.status == "disabled":
            raise ApiError(403, "API_KEY_DISABLED", "API key is disabled")
        return self.users[found.user_id]

    def membership(self, user: User, workspace_id: str) -> tuple[Workspace, Member]:
        """The workspace and the user's membership, or 404 / 403 ``NOT_A_MEMBER``."""
        workspace = self.workspaces.get(workspace_id)
        if workspace is None:
            raise ApiError(404, "WORKSPACE_NOT_FOUND", "Workspace not found")
        member = workspace.members.get(user.id)
        if member is None:
            raise ApiError(403, "NOT_A_MEMBER", "You are not a member of this workspace")
        return workspace, member

    def workspaces_of(self, user: User) -> list[Workspace]:
        return oldest_first(ws for ws in self.workspaces.values() if user.id in ws.members)

    def project(self, workspace_id: str, project_id: str) -> Project:
        project = self.projects.get(project_id)
        if project is None or project.workspace_id != workspace_id:
            raise ApiError(404, "PROJECT_NOT_FOUND", "Project not found")
        if project.deleted:
            raise ApiError(410, "PROJECT_GONE", "Project has been deleted")
        return project

    def projects_in(self, workspace_id: str) -> list[Project]:
        return oldest_first(
            p for p in self.projects.values() if p.workspace_id == workspace_id and not p.deleted
        )

    def link(self, workspace_id: str, link_id: str) -> Link:
        link = self.links.get(link_id)
        if link is None or link.workspace_id != workspace_id:
            raise ApiError(404, "LINK_NOT_FOUND", "Link not found")
        if link.deleted:
            raise ApiError(410, "LINK_GONE", "Link has been deleted")
        return link

    def links_in(self, workspace_id: str) -> list[Link]:
        return newest_first(
            x for x in self.links.values() if x.workspace_id == workspace_id and not x.deleted
        )

    def recording(self, workspace_id: str, recording_id: str) -> Recording:
        recording = self.recordings.get(recording_id)
        if recording is None:
            raise ApiError(404, "RECORDING_NOT_FOUND", "Recording not found")
        if recording.workspace_id != workspace_id:
            raise ApiError(
                403,
                "RECORDING_WORKSPACE_MISMATCH",
                "Recording does not belong to this workspace",
            )
        if recording.deleted:
            raise ApiError(410, "RECORDING_GONE", "Recording has already been deleted")
        return recording

    def recordings_in(self, workspace_id: str) -> list[Recording]:
        return newest_first(
            r for r in self.recordings.values() if r.workspace_id == workspace_id and not r.deleted
        )

    def display_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.name if user is not None else user_id

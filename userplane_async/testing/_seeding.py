"""Seeding the fake: plain methods that add users, keys, workspaces, links and recordings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from .._clock import Clock
from ._content import RESOURCE_KINDS, FakeResource, StoredObject
from ._http import from_epoch, to_utc
from ._records import (
    KEY_STATUSES,
    ROLES,
    ApiKey,
    Domain,
    Link,
    Member,
    Project,
    Recording,
    User,
    Workspace,
    member_id,
)
from ._store import Store

DEFAULT_USER_ID = "usr_default"
DOMAIN_STATUSES = ("pending", "verified", "revoked")


def fake_api_key(index: int) -> str:
    """The ``index``-th generated key: clearly fake, shaped like a real one (``uspl_`` + 32
    characters: ``fake`` and ``index`` in 28 digits)."""
    return f"uspl_fake{index:028d}"


DEFAULT_API_KEY = fake_api_key(0)
"""The default user's key: clearly fake, shaped like a real one (``uspl_`` + 32 characters)."""


def _more_keys(first: str) -> Iterator[str]:
    """Generated keys after ``first``, skipping it if it is one of them."""
    return (key for key in map(fake_api_key, itertools.count(1)) if key != first)


def _check_new(table: Mapping[str, object], key: str, what: str) -> None:
    if not key:
        raise ValueError(f"{what} ID must not be empty")
    if key in table:
        raise ValueError(f"{what} {key!r} already exists")


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, not {value!r}")


class Seeding:
    """The seeding half of :class:`FakeUserplane`; usable before or after the server starts."""

    def __init__(self, *, api_key: str, clock: Clock, keys_per_user: int = 1) -> None:
        if keys_per_user < 1:
            raise ValueError(f"keys_per_user must be at least 1, not {keys_per_user}")
        self._clock = clock
        self._store = Store()
        self.api_key = api_key
        self.add_user(DEFAULT_USER_ID, name="Default User", email="default@example.test")
        for key in itertools.chain(
            [api_key], itertools.islice(_more_keys(api_key), keys_per_user - 1)
        ):
            self.add_api_key(key)

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The default user's active keys, ``api_key`` first (``keys_per_user`` of them, plus
        any added since)."""
        return self.keys_of(DEFAULT_USER_ID)

    def keys_of(self, user_id: str) -> tuple[str, ...]:
        """A user's active keys (the ones the API accepts), in the order they were added."""
        self._user(user_id)
        return tuple(
            k.key
            for k in self._store.keys.values()
            if k.user_id == user_id and k.status == "active"
        )

    def _when(self, value: datetime | None) -> datetime:
        return from_epoch(self._clock.time()) if value is None else to_utc(value)

    def _workspace(self, workspace_id: str) -> Workspace:
        try:
            return self._store.workspaces[workspace_id]
        except KeyError:
            raise ValueError(f"unknown workspace {workspace_id!r}") from None

    def _user(self, user_id: str) -> User:
        try:
            return self._store.users[user_id]
        except KeyError:
            raise ValueError(f"unknown user {user_id!r}") from None

    def _in_workspace(
        self, table: Mapping[str, Any], key: str, workspace_id: str, what: str
    ) -> Any:
        row = table.get(key)
        if row is None or row.workspace_id != workspace_id:
            raise ValueError(f"unknown {what} {key!r} in workspace {workspace_id!r}")
        return row

    def _default_project(self, workspace_id: str) -> str | None:
        projects = self._store.projects_in(workspace_id)
        return projects[0].id if projects else None

    def add_user(self, user_id: str, *, name: str = "Test User", email: str | None = None) -> None:
        """Add a user (``email`` defaults to ``<user_id>@example.test``)."""
        _check_new(self._store.users, user_id, "user")
        email = email if email is not None else f"{user_id}@example.test"
        self._store.users[user_id] = User(user_id, name, email, self._when(None))

    def add_api_key(
        self, key: str, *, user_id: str = DEFAULT_USER_ID, status: str = "active"
    ) -> None:
        """Add a key for ``user_id``; ``status`` is ``active``, ``disabled`` or ``expired``."""
        _check_new(self._store.keys, key, "API key")
        _check_choice(status, KEY_STATUSES, "status")
        self._user(user_id)
        self._store.keys[key] = ApiKey(key, user_id, status)

    def add_workspace(
        self,
        workspace_id: str,
        *,
        name: str = "Test workspace",
        members: Mapping[str, str] | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Add a workspace; ``members`` maps user IDs to roles (default: the default user owns it)."""
        _check_new(self._store.workspaces, workspace_id, "workspace")
        created = self._when(created_at)
        workspace = Workspace(workspace_id, name, created)
        for user_id, role in (members or {DEFAULT_USER_ID: "owner"}).items():
            self._user(user_id)
            _check_choice(role, ROLES, "role")
            workspace.members[user_id] = Member(
                member_id(workspace_id, user_id), user_id, role, created
            )
        self._store.workspaces[workspace_id] = workspace

    def add_project(
        self,
        workspace_id: str,
        project_id: str,
        *,
        title: str = "Test project",
        created_at: datetime | None = None,
    ) -> None:
        """Add a project; the oldest live project is the workspace's default."""
        self._workspace(workspace_id)
        _check_new(self._store.projects, project_id, "project")
        self._store.projects[project_id] = Project(
            project_id, workspace_id, title, self._when(created_at)
        )

    def add_domain(
        self,
        workspace_id: str,
        domain_id: str,
        *,
        url: str = "https://example.test",
        status: str = "verified",
    ) -> None:
        """Add a domain; only ``verified`` domains can be used to create links."""
        self._workspace(workspace_id)
        _check_new(self._store.domains, domain_id, "domain")
        _check_choice(status, DOMAIN_STATUSES, "status")
        self._store.domains[domain_id] = Domain(domain_id, workspace_id, url, status)

    def add_link(
        self,
        workspace_id: str,
        link_id: str,
        *,
        title: str | None = None,
        project_id: str | None = None,
        domain_id: str | None = None,
        reusable: bool = False,
        provider_type: str | None = None,
        provider_id: str | None = None,
        provider_ref: str | None = None,
        meta: Mapping[str, Any] | None = None,
        creator_user_id: str = DEFAULT_USER_ID,
        created_at: datetime | None = None,
    ) -> None:
        """Add a recording link (``project_id`` defaults to the workspace's default project)."""
        self._workspace(workspace_id)
        _check_new(self._store.links, link_id, "link")
        self._user(creator_user_id)
        if project_id is not None:
            self._in_workspace(self._store.projects, project_id, workspace_id, "project")
        if domain_id is not None:
            self._in_workspace(self._store.domains, domain_id, workspace_id, "domain")
        self._store.links[link_id] = Link(
            id=link_id,
            workspace_id=workspace_id,
            title=title,
            project_id=project_id or self._default_project(workspace_id),
            domain_id=domain_id,
            reusable=reusable,
            provider_type=provider_type,
            provider_id=provider_id,
            provider_ref=provider_ref,
            meta=dict(meta or {}),
            creator_user_id=creator_user_id,
            created_at=self._when(created_at),
        )

    def add_recording(
        self,
        workspace_id: str,
        recording_id: str,
        *,
        project_id: str | None = None,
        link_id: str | None = None,
        created_by: str = DEFAULT_USER_ID,
        duration_ms: int | None = 45_200,
        status: str = "completed",
        custom_meta: Mapping[str, Any] | None = None,
        system_meta: Mapping[str, Any] | None = None,
        notes: str | None = None,
        expires_at: datetime | None = None,
        resources: Mapping[str, FakeResource] | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Add a recording; resource kinds left out get small generated content."""
        self._workspace(workspace_id)
        _check_new(self._store.recordings, recording_id, "recording")
        self._user(created_by)
        link = None
        if link_id is not None:
            link = self._in_workspace(self._store.links, link_id, workspace_id, "link")
        if project_id is not None:
            self._in_workspace(self._store.projects, project_id, workspace_id, "project")
        given = dict(resources or {})
        for kind in given:
            _check_choice(kind, RESOURCE_KINDS, "resource kind")
        self._store.recordings[recording_id] = Recording(
            id=recording_id,
            workspace_id=workspace_id,
            project_id=project_id
            or (link.project_id if link is not None else self._default_project(workspace_id)),
            link_id=link_id,
            created_by=created_by,
            duration_ms=duration_ms,
            status=status,
            custom_meta=dict(custom_meta or {}),
            system_meta=dict(system_meta or {}),
            notes=notes,
            expires_at=None if expires_at is None else to_utc(expires_at),
            created_at=self._when(created_at),
            resources={
                kind: StoredObject(kind, given.get(kind, FakeResource()), f"{recording_id}/{kind}")
                for kind in RESOURCE_KINDS
            },
        )

    def replace_resource(
        self, workspace_id: str, recording_id: str, kind: str, resource: FakeResource
    ) -> None:
        """Put a new object under one resource: new bytes, a new ETag.

        The API's ``size`` and ``type`` follow it; URLs issued before stay valid and now serve
        the new object (as a presigned S3 URL names a key, not a version).
        """
        _check_choice(kind, RESOURCE_KINDS, "resource kind")
        recording = self._in_workspace(
            self._store.recordings, recording_id, workspace_id, "recording"
        )
        recording.resources[kind].replace(resource)

    def delete_recording(self, workspace_id: str, recording_id: str) -> None:
        """Soft-delete a recording: later requests get 410 ``RECORDING_GONE``."""
        self._in_workspace(
            self._store.recordings, recording_id, workspace_id, "recording"
        ).deleted = True

    def delete_link(self, workspace_id: str, link_id: str) -> None:
        """Soft-delete a link: later requests get 410 ``LINK_GONE``."""
        self._in_workspace(self._store.links, link_id, workspace_id, "link").deleted = True

    def delete_project(self, workspace_id: str, project_id: str) -> None:
        """Soft-delete a project: later requests get 410 ``PROJECT_GONE``."""
        self._in_workspace(self._store.projects, project_id, workspace_id, "project").deleted = True

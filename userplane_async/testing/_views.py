"""JSON shapes of the fake's rows, camelCase as in userplane-api.md."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ._http import iso
from ._records import Link, Member, Project, Recording, Workspace, member_id
from ._store import Store

Json = dict[str, Any]


def workspace_json(workspace: Workspace, member: Member | None = None) -> Json:
    """A workspace; with ``member``, also its ``workspaceMembership``."""
    data: Json = {
        "workspaceId": workspace.id,
        "workspaceName": workspace.name,
        "createdAt": iso(workspace.created_at),
        "updatedAt": iso(workspace.created_at),
    }
    if member is not None:
        data["workspaceMembership"] = {
            "workspaceMemberId": member.id,
            "workspaceRole": member.role,
            "workspaceJoinedAt": iso(member.joined_at),
        }
    return data


def project_json(project: Project) -> Json:
    return {
        "projectId": project.id,
        "title": project.title,
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.created_at),
    }


def _creator(store: Store, workspace_id: str, user_id: str) -> Json:
    return {
        "workspaceMemberId": member_id(workspace_id, user_id),
        "name": store.display_name(user_id),
    }


def _project_ref(store: Store, project_id: str | None) -> Json | None:
    project = store.projects.get(project_id) if project_id is not None else None
    return None if project is None else {"projectId": project.id, "title": project.title}


def link_json(store: Store, link: Link) -> Json:
    """The link object returned by the link endpoints (note ``linkProviderReference``)."""
    domain = store.domains.get(link.domain_id) if link.domain_id is not None else None
    return {
        "linkId": link.id,
        "linkTitle": link.title,
        "linkType": "file",
        "linkReusable": link.reusable,
        "linkProviderType": link.provider_type,
        "linkProviderId": link.provider_id,
        "linkProviderReference": link.provider_ref,
        "linkURL": f"https://record.userplane.test/l/{quote(link.id, safe='')}",
        "meta": link.meta,
        "createdAt": iso(link.created_at),
        "project": _project_ref(store, link.project_id),
        "creator": _creator(store, link.workspace_id, link.creator_user_id),
        "domain": None
        if domain is None
        else {"domainId": domain.id, "url": domain.url, "status": domain.status},
    }


def _recording_link(store: Store, link_id: str | None) -> Json | None:
    link = store.links.get(link_id) if link_id is not None else None
    if link is None:
        return None
    return {
        "linkId": link.id,
        "title": link.title,
        "providerType": link.provider_type,
        "providerId": link.provider_id,
        "providerRef": link.provider_ref,
        "createdAt": iso(link.created_at),
        "providerData": None,
    }


def _recording_domain(store: Store, link_id: str | None) -> Json | None:
    link = store.links.get(link_id) if link_id is not None else None
    domain = store.domains.get(link.domain_id) if link and link.domain_id else None
    return None if domain is None else {"domainId": domain.id, "url": domain.url}


def recording_json(store: Store, recording: Recording) -> Json:
    """The ``recording`` object of Get Recording (also each List Recordings item)."""
    return {
        "recordingId": recording.id,
        "recordingDurationMs": recording.duration_ms,
        "recordingStartedAt": iso(recording.created_at),
        "meta": {
            "link": _recording_link(store, recording.link_id),
            "creator": _creator(store, recording.workspace_id, recording.created_by),
            "project": _project_ref(store, recording.project_id),
            "domain": _recording_domain(store, recording.link_id),
            "workspaceId": recording.workspace_id,
            "status": recording.status,
            "systemMeta": recording.system_meta,
            "customMeta": recording.custom_meta,
            "notes": recording.notes,
            "expiresAt": iso(recording.expires_at),
            "createdAt": iso(recording.created_at),
            "updatedAt": iso(recording.created_at),
        },
    }

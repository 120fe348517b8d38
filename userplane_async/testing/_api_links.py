"""Handlers for the link routes: list, create, get, update and (soft) delete."""

from __future__ import annotations

import secrets
from typing import Any

from ._call import Call
from ._http import ApiError, Page, Reply, json_object, optional_field
from ._records import Domain, Link, Project
from ._store import Store
from ._views import link_json

ADMIN_ROLES = ("owner", "admin")

# Update body key -> (Link attribute, JSON type, null allowed)
_UPDATABLE: dict[str, tuple[str, type, bool]] = {
    "linkTitle": ("title", str, True),
    "linkReusable": ("reusable", bool, False),
    "linkProviderType": ("provider_type", str, True),
    "linkProviderId": ("provider_id", str, True),
    "linkProviderRef": ("provider_ref", str, True),
    "meta": ("meta", dict, False),
}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message)


def _domain(store: Store, workspace_id: str, domain_id: Any) -> Domain:
    if not isinstance(domain_id, str) or not domain_id:
        raise _invalid("domainId is required")
    domain = store.domains.get(domain_id)
    if domain is None or domain.workspace_id != workspace_id:
        raise ApiError(404, "DOMAIN_NOT_FOUND", "Domain not found")
    if domain.status != "verified":
        raise _invalid("Domain must be verified before links can be created")
    return domain


def _project(store: Store, workspace_id: str, project_id: str | None) -> Project:
    if project_id is None:
        projects = store.projects_in(workspace_id)
        if not projects:
            raise ApiError(404, "LINK_DEFAULT_PROJECT_NOT_FOUND", "No default project found")
        return projects[0]
    project = store.projects.get(project_id)
    if project is None or project.workspace_id != workspace_id:
        raise ApiError(404, "PROJECT_NOT_FOUND", "Project not found")
    if project.deleted:
        raise ApiError(410, "LINK_PROJECT_DELETED", "The specified project has been deleted")
    return project


def _new_link_id(store: Store) -> str:
    while True:
        link_id = f"lnk_{secrets.token_hex(8)}"
        if link_id not in store.links:
            return link_id


def list_links(call: Call) -> Reply:
    """``GET .../links``: live links, newest first."""
    workspace, _ = call.membership()
    page = Page.from_query(call.query, default=10, maximum=20)
    items, pagination = page.slice(call.store.links_in(workspace.id))
    return "Links retrieved successfully", {
        "workspaceId": workspace.id,
        "links": [link_json(call.store, link) for link in items],
        "pagination": pagination,
    }


def create_link(call: Call) -> Reply:
    """``POST .../links``: needs a verified ``domainId``; the project defaults to the oldest."""
    workspace, _ = call.membership()
    body = json_object(call.body)
    domain = _domain(call.store, workspace.id, body.get("domainId"))
    project_id = optional_field(body, "projectId", str)
    reference = optional_field(body, "linkReference", str)
    reusable = optional_field(body, "linkReusable", bool)
    meta = optional_field(body, "meta", dict)
    project = _project(call.store, workspace.id, project_id)
    link = Link(
        id=_new_link_id(call.store),
        workspace_id=workspace.id,
        title=None,
        project_id=project.id,
        domain_id=domain.id,
        reusable=bool(reusable),
        provider_type=None,
        provider_id=None,
        provider_ref=reference,
        meta=dict(meta or {}),
        creator_user_id=call.user.id,
        created_at=call.now,
    )
    call.store.links[link.id] = link
    return "Link created successfully", {
        "workspaceId": workspace.id,
        "link": link_json(call.store, link),
    }


def get_link(call: Call) -> Reply:
    workspace, _ = call.membership()
    link = call.store.link(workspace.id, call.params["link"])
    return "Link retrieved successfully", {
        "workspaceId": workspace.id,
        "link": link_json(call.store, link),
    }


def update_link(call: Call) -> Reply:
    """``PUT .../links/{linkId}``: a partial update; every body field is optional."""
    workspace, _ = call.membership()
    link = call.store.link(workspace.id, call.params["link"])
    body = json_object(call.body)
    changes: dict[str, Any] = {}
    for key, (attribute, kind, nullable) in _UPDATABLE.items():
        if key in body:
            if body[key] is None and not nullable:
                raise _invalid(f"{key} must not be null")
            changes[attribute] = optional_field(body, key, kind)
    for attribute, value in changes.items():
        setattr(link, attribute, value)
    return "Link updated successfully", {
        "workspaceId": workspace.id,
        "link": link_json(call.store, link),
    }


def delete_link(call: Call) -> Reply:
    """``DELETE .../links/{linkId}``: soft; only the creator or an admin/owner may."""
    workspace, member = call.membership()
    link = call.store.link(workspace.id, call.params["link"])
    if member.role not in ADMIN_ROLES and link.creator_user_id != call.user.id:
        raise ApiError(
            403, "LINK_DELETE_FORBIDDEN", "You do not have permission to delete this link"
        )
    link.deleted = True
    return "Link deleted successfully", {"workspaceId": workspace.id, "linkId": link.id}

"""Handlers for the user, workspace and project routes."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from ._call import Call
from ._http import Page, Reply, iso
from ._views import project_json, workspace_json

_TRUE = ("true", "1")


def me(call: Call) -> Reply:
    """``GET /public/me``: the key's user and counts across their workspaces."""
    store = call.store
    workspace_ids = {ws.id for ws in store.workspaces_of(call.user)}
    recordings = [r for r in store.recordings.values() if r.workspace_id in workspace_ids]
    links = [x for x in store.links.values() if x.workspace_id in workspace_ids]
    return "User retrieved successfully", {
        "user": {
            "id": call.user.id,
            "name": call.user.name,
            "email": call.user.email,
            "emailVerified": True,
            "image": None,
            "createdAt": iso(call.user.created_at),
        },
        "stats": {
            "workspaces": len(workspace_ids),
            "recordings": sum(not r.deleted for r in recordings),
            "links": sum(not x.deleted for x in links),
        },
    }


def list_workspaces(call: Call) -> Reply:
    """``GET /public/workspaces``: the caller's workspaces, oldest first."""
    page = Page.from_query(call.query, default=10, maximum=20)
    include = call.query.get("include_workspace_membership", "").lower() in _TRUE
    workspaces = call.store.workspaces_of(call.user)
    items, pagination = page.slice(workspaces)
    return "Workspaces retrieved successfully", {
        "workspaces": [
            workspace_json(ws, ws.members[call.user.id] if include else None) for ws in items
        ],
        "total": len(workspaces),
        "pagination": pagination,
    }


def get_workspace(call: Call) -> Reply:
    workspace, _ = call.membership()
    return "Workspace retrieved successfully", {"workspace": workspace_json(workspace)}


def invite_url(call: Call) -> Reply:
    workspace, _ = call.membership()
    token = hashlib.sha256(f"invite\0{workspace.id}".encode()).hexdigest()[:24]
    url = f"https://dash.userplane.test/invite/{quote(workspace.id, safe='')}?token={token}"
    return "Invite URL retrieved successfully", {"inviteUrl": url, "workspaceId": workspace.id}


def list_projects(call: Call) -> Reply:
    """``GET .../projects``: live projects, oldest first."""
    workspace, _ = call.membership()
    page = Page.from_query(call.query, default=5, maximum=10)
    items, pagination = page.slice(call.store.projects_in(workspace.id))
    return "Projects retrieved successfully", {
        "workspaceId": workspace.id,
        "projects": [project_json(p) for p in items],
        "pagination": pagination,
    }


def get_project(call: Call) -> Reply:
    workspace, _ = call.membership()
    project = call.store.project(workspace.id, call.params["project"])
    return "Project retrieved successfully", {
        "workspaceId": workspace.id,
        "project": project_json(project),
    }

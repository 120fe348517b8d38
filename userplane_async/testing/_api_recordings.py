"""Handlers for the recording routes: list, get, (soft) delete and the five resources."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._api_links import ADMIN_ROLES
from ._call import Call
from ._http import ApiError, Page, Reply
from ._records import Recording, member_id
from ._views import recording_json

_LABELS = {
    "video": "Video",
    "thumbnail": "Thumbnail",
    "console-log": "Console log",
    "network-log": "Network log",
    "action": "Action data",
}

# List Recordings query parameter -> how a recording matches it
_FILTERS: dict[str, Callable[[Recording, str], bool]] = {
    "project_id": lambda r, value: r.project_id == value,
    "link_id": lambda r, value: r.link_id == value,
    "created_by": lambda r, value: member_id(r.workspace_id, r.created_by) == value,
}


def _matches(recording: Recording, query: Mapping[str, str]) -> bool:
    return all(test(recording, query[name]) for name, test in _FILTERS.items() if name in query)


def list_recordings(call: Call) -> Reply:
    """``GET .../recordings``: live recordings, newest first, with optional filters."""
    workspace, _ = call.membership()
    page = Page.from_query(call.query, default=10, maximum=20)
    found = [r for r in call.store.recordings_in(workspace.id) if _matches(r, call.query)]
    items, pagination = page.slice(found)
    return "Recordings retrieved successfully", {
        "workspaceId": workspace.id,
        "recordings": [recording_json(call.store, r) for r in items],
        "pagination": pagination,
    }


def get_recording(call: Call) -> Reply:
    workspace, _ = call.membership()
    recording = call.store.recording(workspace.id, call.params["recording"])
    return "Recording retrieved successfully", {
        "workspaceId": workspace.id,
        "recording": recording_json(call.store, recording),
    }


def _may_delete(call: Call, role: str, recording: Recording) -> bool:
    link = call.store.links.get(recording.link_id) if recording.link_id else None
    creators = {recording.created_by, link.creator_user_id if link else None}
    return role in ADMIN_ROLES or call.user.id in creators


def delete_recording(call: Call) -> Reply:
    """``DELETE .../recordings/{id}``: soft; the creator (or link creator) or an admin/owner."""
    workspace, member = call.membership()
    recording = call.store.recording(workspace.id, call.params["recording"])
    if not _may_delete(call, member.role, recording):
        raise ApiError(
            403,
            "RECORDING_DELETE_FORBIDDEN",
            "You do not have permission to delete this recording",
        )
    recording.deleted = True
    return "Recording deleted successfully", {
        "workspaceId": workspace.id,
        "recordingId": recording.id,
    }


def _availability(recording: Recording, kind: str) -> tuple[bool, str]:
    label = _LABELS[kind]
    if not recording.resources[kind].captured:
        return False, f"{label} not captured"
    if recording.status != "completed":
        return False, f"{label} not available yet (recording is {recording.status})"
    return True, f"{label} available"


def get_resource(call: Call) -> Reply:
    """``GET .../recordings/{id}/{kind}``: a presigned URL, or ``url: null`` if unavailable."""
    workspace, _ = call.membership()
    recording = call.store.recording(workspace.id, call.params["recording"])
    kind = call.params["kind"]
    stored = recording.resources[kind]
    available, message = _availability(recording, kind)
    url = call.presigner.url(workspace.id, recording.id, kind) if available else None
    resource: dict[str, Any] = {"url": url, "message": message, "type": stored.type}
    if kind == "video":
        resource["sources"] = [{"url": url, "type": stored.type}] if url else []
    resource["size"] = stored.declared_size if available else 0
    if kind == "video":
        resource["durationMs"] = recording.duration_ms
    resource["captureEnabled"] = stored.captured
    return f"Recording {_LABELS[kind].lower()} retrieved successfully", {
        "recordingId": recording.id,
        "resource": resource,
    }

"""The shipped fake Userplane itself, driven with plain aiohttp over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import aiohttp
import anyio
import pytest
from yarl import URL

import userplane_async.testing as testing
from userplane_async.testing import (
    DEFAULT_API_KEY,
    FakeClock,
    FakeResource,
    FakeUserplane,
    RequestRecord,
    ScaledClock,
)

pytestmark = pytest.mark.anyio

WS = "ws_demo"
RESOURCE_KINDS = ["video", "thumbnail", "console-log", "network-log", "action"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeUserplane]:
    """A started fake on virtual time with the demo workspace and no rate limit."""
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        fake.seed_demo()
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    fake: FakeUserplane,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One API request (the fake's key unless ``headers`` say otherwise): status and JSON."""
    if headers is None:
        headers = {"Authorization": f"Bearer {fake.api_key}"}
    url = URL(fake.base_url + path, encoded=True)
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def get(http: aiohttp.ClientSession, fake: FakeUserplane, path: str, **kw: Any) -> Any:
    """A GET that must succeed; returns the envelope's ``data``."""
    status, body = await call(http, fake, "GET", path, **kw)
    assert status == 200, body
    assert isinstance(body["message"], str)
    return body["data"]


async def fetch(http: aiohttp.ClientSession, url: str, **kw: Any) -> aiohttp.ClientResponse:
    """A storage request to ``url`` byte for byte; the body is read before returning."""
    async with http.get(URL(url, encoded=True), **kw) as response:
        await response.read()
        return response


async def resource_url(
    http: aiohttp.ClientSession, fake: FakeUserplane, rec: str, kind: str
) -> str:
    data = await get(http, fake, f"/public/workspace/{WS}/recordings/{rec}/{kind}")
    url = data["resource"]["url"]
    assert isinstance(url, str)
    return url


# Public surface and lifecycle


def test_public_names() -> None:
    """The package exports exactly its public names, sorted, under its own module name."""
    expected = [
        "DEFAULT_API_KEY",
        "ChunkedWithoutEnd",
        "CloseWithoutLength",
        "Expired",
        "FakeClock",
        "FakeResource",
        "FakeUserplane",
        "IgnoreRange",
        "Redirect",
        "RedisServer",
        "ReplaceAfter",
        "RequestRecord",
        "ResetAfter",
        "S3Error",
        "S3FaultProxy",
        "S3Server",
        "ScaledClock",
        "ShiftContentRange",
        "StallAfter",
        "StorageFault",
        "Trickle",
        "TruncateAfter",
        "WrongLength",
    ]
    assert testing.__all__ == expected
    assert FakeUserplane.__module__ == "userplane_async.testing"
    assert DEFAULT_API_KEY.startswith("uspl_")
    assert len(DEFAULT_API_KEY) == 37


async def test_lifecycle() -> None:
    """base_url needs a started fake, points at port 0's choice, and aclose is idempotent."""
    before = asyncio.all_tasks()
    fake = FakeUserplane()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    async with fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert fake.base_url.endswith("/api/v1")
        assert fake.api_key == DEFAULT_API_KEY
    await fake.aclose()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(fake.base_url + "/public/me")
    assert asyncio.all_tasks() <= before


class _StallClock(FakeClock):
    """Virtual time whose sleeps never end, and which says when one has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = anyio.Event()

    async def sleep(self, seconds: float) -> None:
        self.stalled.set()
        await anyio.sleep_forever()


async def test_aclose_ends_stalled_requests() -> None:
    """aclose() cuts a scripted stall short, so no request task outlives it."""
    before = asyncio.all_tasks()
    clock = _StallClock()
    statuses: list[int] = []
    async with FakeUserplane(clock=clock) as fake, aiohttp.ClientSession() as http:
        fake.script("me", status=503, delay=3600)

        async def request() -> None:
            async with http.get(fake.base_url + "/public/me") as response:
                statuses.append(response.status)

        async with anyio.create_task_group() as tg:
            tg.start_soon(request)
            await clock.stalled.wait()
            await fake.aclose()
    assert statuses == [503]
    assert [r.status for r in fake.requests] == [503]
    assert asyncio.all_tasks() <= before


async def test_plugin_fixture(fake_userplane: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """The pytest plugin's fixture yields a started fake with the demo workspace seeded."""
    data = await get(http, fake_userplane, f"/public/workspace/{WS}")
    assert data["workspace"]["workspaceName"] == "Demo workspace"


def test_seeding_rejects_mistakes() -> None:
    """Seeding refuses duplicate IDs, unknown references and unknown choices."""
    fake = FakeUserplane()
    fake.add_workspace("ws_1")
    with pytest.raises(ValueError, match="already exists"):
        fake.add_workspace("ws_1")
    with pytest.raises(ValueError, match="unknown workspace"):
        fake.add_project("ws_nope", "p")
    with pytest.raises(ValueError, match="unknown user"):
        fake.add_workspace("ws_2", members={"usr_nope": "owner"})
    with pytest.raises(ValueError, match="status"):
        fake.add_api_key("uspl_x", status="revoked")
    with pytest.raises(ValueError, match="resource kind"):
        fake.add_recording("ws_1", "rec_1", resources={"audio": FakeResource(b"")})


# User, workspaces and projects


async def test_me(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """/public/me returns the key's user and counts over that user's workspaces."""
    data = await get(http, fake, "/public/me")
    assert set(data["user"]) == {"id", "name", "email", "emailVerified", "image", "createdAt"}
    assert data["user"]["id"] == "usr_default"
    assert data["user"]["createdAt"].endswith("Z")
    assert data["stats"] == {"workspaces": 1, "recordings": 5, "links": 2}


async def test_list_workspaces(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Workspaces list with total and pagination; membership only when asked for."""
    fake.add_workspace("ws_other", name="Other", members={"usr_default": "member"})
    data = await get(http, fake, "/public/workspaces")
    assert data["total"] == 2
    assert data["pagination"] == {
        "page": 1,
        "perPage": 10,
        "total": 2,
        "totalPages": 1,
        "hasMore": False,
    }
    first = data["workspaces"][0]
    assert set(first) == {"workspaceId", "workspaceName", "createdAt", "updatedAt"}
    data = await get(http, fake, "/public/workspaces?include_workspace_membership=true")
    roles = {
        w["workspaceId"]: w["workspaceMembership"]["workspaceRole"] for w in data["workspaces"]
    }
    assert roles == {"ws_demo": "owner", "ws_other": "member"}
    membership = data["workspaces"][0]["workspaceMembership"]
    assert set(membership) == {"workspaceMemberId", "workspaceRole", "workspaceJoinedAt"}


async def test_workspace_and_invite_url(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Get workspace and its invite URL have the documented shapes."""
    data = await get(http, fake, f"/public/workspace/{WS}")
    assert data["workspace"]["workspaceId"] == WS
    assert set(data["workspace"]) == {"workspaceId", "workspaceName", "createdAt", "updatedAt"}
    data = await get(http, fake, f"/public/workspace/{WS}/invite-url")
    assert data["workspaceId"] == WS
    assert data["inviteUrl"].startswith("https://")


async def test_projects(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Projects list and get; a deleted project is 410 and unlisted, an unknown one 404."""
    fake.add_project(WS, "prj_old", title="Old")
    data = await get(http, fake, f"/public/workspace/{WS}/projects")
    assert [p["projectId"] for p in data["projects"]] == ["prj_demo", "prj_old"]
    assert data["pagination"]["perPage"] == 5
    assert set(data["projects"][0]) == {"projectId", "title", "createdAt", "updatedAt"}
    data = await get(http, fake, f"/public/workspace/{WS}/projects/prj_demo")
    assert data == {"workspaceId": WS, "project": data["project"]}
    assert data["project"]["title"] == "Demo project"
    fake.delete_project(WS, "prj_old")
    status, body = await call(http, fake, "GET", f"/public/workspace/{WS}/projects/prj_old")
    assert (status, body["error"]) == (410, "PROJECT_GONE")
    status, body = await call(http, fake, "GET", f"/public/workspace/{WS}/projects/nope")
    assert (status, body["error"]) == (404, "PROJECT_NOT_FOUND")
    data = await get(http, fake, f"/public/workspace/{WS}/projects")
    assert data["pagination"]["total"] == 1


# Links

LINK_KEYS = {
    "linkId",
    "linkTitle",
    "linkType",
    "linkReusable",
    "linkProviderType",
    "linkProviderId",
    "linkProviderReference",
    "linkURL",
    "meta",
    "createdAt",
    "project",
    "creator",
    "domain",
}


async def test_list_and_get_links(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Links list and get return the documented link object."""
    data = await get(http, fake, f"/public/workspace/{WS}/links")
    assert data["workspaceId"] == WS
    assert {x["linkId"] for x in data["links"]} == {"lnk_demo_support", "lnk_demo_feedback"}
    data = await get(http, fake, f"/public/workspace/{WS}/links/lnk_demo_support")
    link = data["link"]
    assert set(link) == LINK_KEYS
    assert link["linkType"] == "file"
    assert link["linkProviderType"] == "intercom"
    assert link["linkProviderReference"] == "4521"
    assert link["project"] == {"projectId": "prj_demo", "title": "Demo project"}
    assert link["domain"] == {
        "domainId": "dom_demo",
        "url": "https://shop.demo.test",
        "status": "verified",
    }
    assert set(link["creator"]) == {"workspaceMemberId", "name"}


async def test_create_update_delete_link(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A created link uses the default project, updates partially, and deletes softly."""
    links = f"/public/workspace/{WS}/links"
    body = {"domainId": "dom_demo", "linkReference": "T-1", "meta": {"a": 1}}
    status, created = await call(http, fake, "POST", links, json=body)
    assert status == 200, created
    link = created["data"]["link"]
    assert set(link) == LINK_KEYS
    assert link["project"]["projectId"] == "prj_demo"
    assert (link["linkProviderReference"], link["meta"], link["linkReusable"]) == (
        "T-1",
        {"a": 1},
        False,
    )
    path = f"{links}/{link['linkId']}"
    update = {"linkTitle": "New", "linkReusable": True, "linkProviderRef": "R-9"}
    status, updated = await call(http, fake, "PUT", path, json=update)
    assert status == 200, updated
    changed = updated["data"]["link"]
    assert (changed["linkTitle"], changed["linkReusable"]) == ("New", True)
    assert changed["linkProviderReference"] == "R-9"
    assert changed["meta"] == {"a": 1}
    status, deleted = await call(http, fake, "DELETE", path)
    assert (status, deleted["data"]) == (200, {"workspaceId": WS, "linkId": link["linkId"]})
    for method in ("GET", "PUT", "DELETE"):
        status, gone = await call(http, fake, method, path, json={})
        assert (status, gone["error"]) == (410, "LINK_GONE")


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        pytest.param(b"{not json", 400, "VALIDATION_ERROR", id="bad-json"),
        pytest.param(b"[]", 400, "VALIDATION_ERROR", id="not-object"),
        pytest.param(b"{}", 400, "VALIDATION_ERROR", id="no-domain"),
        pytest.param(
            b'{"domainId": "dom_demo", "linkReusable": "yes"}',
            400,
            "VALIDATION_ERROR",
            id="bad-type",
        ),
        pytest.param(b'{"domainId": "nope"}', 404, "DOMAIN_NOT_FOUND", id="unknown-domain"),
        pytest.param(b'{"domainId": "dom_pending"}', 400, "VALIDATION_ERROR", id="unverified"),
        pytest.param(
            b'{"domainId": "dom_demo", "projectId": "prj_gone"}',
            410,
            "LINK_PROJECT_DELETED",
            id="project-gone",
        ),
        pytest.param(
            b'{"domainId": "dom_demo", "projectId": "nope"}',
            404,
            "PROJECT_NOT_FOUND",
            id="project-unknown",
        ),
    ],
)
async def test_create_link_errors(
    fake: FakeUserplane, http: aiohttp.ClientSession, payload: bytes, status: int, code: str
) -> None:
    """Create Link validates its body and its references with the documented codes."""
    fake.add_domain(WS, "dom_pending", status="pending")
    fake.add_project(WS, "prj_gone")
    fake.delete_project(WS, "prj_gone")
    headers = {"Authorization": f"Bearer {fake.api_key}", "Content-Type": "application/json"}
    got = await call(
        http, fake, "POST", f"/public/workspace/{WS}/links", headers=headers, data=payload
    )
    assert (got[0], got[1]["error"]) == (status, code)


async def test_create_link_without_default_project(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """A workspace with no live project cannot create a link without a projectId."""
    fake.add_workspace("ws_bare")
    fake.add_domain("ws_bare", "dom_bare")
    status, body = await call(
        http, fake, "POST", "/public/workspace/ws_bare/links", json={"domainId": "dom_bare"}
    )
    assert (status, body["error"]) == (404, "LINK_DEFAULT_PROJECT_NOT_FOUND")


async def test_link_delete_permissions(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A plain member may not delete someone else's link; an unknown link is 404."""
    fake.add_user("usr_member")
    fake.add_api_key("uspl_member", user_id="usr_member")
    fake.add_workspace("ws_team", members={"usr_default": "owner", "usr_member": "member"})
    fake.add_link("ws_team", "lnk_team")
    auth = {"Authorization": "Bearer uspl_member"}
    status, body = await call(
        http, fake, "DELETE", "/public/workspace/ws_team/links/lnk_team", headers=auth
    )
    assert (status, body["error"]) == (403, "LINK_DELETE_FORBIDDEN")
    status, body = await call(http, fake, "GET", "/public/workspace/ws_team/links/nope")
    assert (status, body["error"]) == (404, "LINK_NOT_FOUND")


# Recordings


async def test_get_recording_shape(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Get Recording returns the documented nested recording object."""
    data = await get(http, fake, f"/public/workspace/{WS}/recordings/rec_demo_full")
    assert data["workspaceId"] == WS
    rec = data["recording"]
    assert set(rec) == {"recordingId", "recordingDurationMs", "recordingStartedAt", "meta"}
    assert rec["recordingDurationMs"] == 5_000
    meta = rec["meta"]
    assert set(meta) == {
        "link",
        "creator",
        "project",
        "domain",
        "workspaceId",
        "status",
        "systemMeta",
        "customMeta",
        "notes",
        "expiresAt",
        "createdAt",
        "updatedAt",
    }
    assert set(meta["link"]) == {
        "linkId",
        "title",
        "providerType",
        "providerId",
        "providerRef",
        "createdAt",
        "providerData",
    }
    assert meta["project"] == {"projectId": "prj_demo", "title": "Demo project"}
    assert meta["domain"] == {"domainId": "dom_demo", "url": "https://shop.demo.test"}
    assert meta["customMeta"] == {"plan": "pro", "customerId": "cust_42"}
    assert meta["createdAt"].endswith("Z")
    assert meta["expiresAt"] is None


async def test_list_recordings(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """List Recordings is newest first, skips deleted ones, and items match Get Recording."""
    data = await get(http, fake, f"/public/workspace/{WS}/recordings")
    ids = [r["recordingId"] for r in data["recordings"]]
    assert ids == [
        "rec_demo_full",
        "rec_demo_no_logs",
        "rec_demo_no_video",
        "rec_demo_large",
        "rec_demo_small",
    ]
    single = await get(http, fake, f"/public/workspace/{WS}/recordings/rec_demo_full")
    assert data["recordings"][0] == single["recording"]
    assert data["pagination"]["total"] == 5


async def test_list_recordings_filters(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """project_id, link_id and created_by narrow the list; unknown parameters are ignored."""
    base = f"/public/workspace/{WS}/recordings"
    data = await get(http, fake, f"{base}?link_id=lnk_demo_support&sort=whatever")
    assert [r["recordingId"] for r in data["recordings"]] == ["rec_demo_full", "rec_demo_large"]
    member = data["recordings"][0]["meta"]["creator"]["workspaceMemberId"]
    data = await get(http, fake, f"{base}?created_by={member}&project_id=prj_demo")
    assert data["pagination"]["total"] == 5
    data = await get(http, fake, f"{base}?created_by=someone_else")
    assert data["recordings"] == []


async def test_recording_errors(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Unknown recordings are 404, deleted ones 410, and other workspaces' ones 403."""
    fake.add_workspace("ws_two")
    fake.add_recording("ws_two", "rec_two")
    base = f"/public/workspace/{WS}/recordings"
    cases = {
        "nope": (404, "RECORDING_NOT_FOUND"),
        "rec_demo_deleted": (410, "RECORDING_GONE"),
        "rec_two": (403, "RECORDING_WORKSPACE_MISMATCH"),
    }
    for rec, expected in cases.items():
        for suffix in ("", "/video", "/action"):
            status, body = await call(http, fake, "GET", f"{base}/{rec}{suffix}")
            assert (status, body["error"]) == expected


async def test_delete_recording(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Delete is soft: the answer names the recording, then it is 410 and unlisted."""
    path = f"/public/workspace/{WS}/recordings/rec_demo_small"
    status, body = await call(http, fake, "DELETE", path)
    assert (status, body["data"]) == (200, {"workspaceId": WS, "recordingId": "rec_demo_small"})
    status, body = await call(http, fake, "DELETE", path)
    assert (status, body["error"]) == (410, "RECORDING_GONE")
    data = await get(http, fake, f"/public/workspace/{WS}/recordings")
    assert "rec_demo_small" not in [r["recordingId"] for r in data["recordings"]]


async def test_delete_recording_forbidden(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A plain member may delete their own recording but not another member's."""
    fake.add_user("usr_member")
    fake.add_api_key("uspl_member", user_id="usr_member")
    fake.add_workspace("ws_team", members={"usr_default": "owner", "usr_member": "member"})
    fake.add_recording("ws_team", "rec_owner")
    fake.add_recording("ws_team", "rec_mine", created_by="usr_member")
    auth = {"Authorization": "Bearer uspl_member"}
    base = "/public/workspace/ws_team/recordings"
    status, body = await call(http, fake, "DELETE", f"{base}/rec_owner", headers=auth)
    assert (status, body["error"]) == (403, "RECORDING_DELETE_FORBIDDEN")
    status, _ = await call(http, fake, "DELETE", f"{base}/rec_mine", headers=auth)
    assert status == 200


@pytest.mark.parametrize("kind", RESOURCE_KINDS)
async def test_resource_available(
    fake: FakeUserplane, http: aiohttp.ClientSession, kind: str
) -> None:
    """Each resource endpoint returns a presigned URL on the fake's own host."""
    data = await get(http, fake, f"/public/workspace/{WS}/recordings/rec_demo_full/{kind}")
    assert data["recordingId"] == "rec_demo_full"
    res = data["resource"]
    extra = {"sources", "durationMs"} if kind == "video" else set()
    assert set(res) == {"url", "message", "type", "size", "captureEnabled"} | extra
    assert res["captureEnabled"] is True
    assert res["message"].endswith("available")
    assert res["url"].startswith(fake.base_url.removesuffix("/api/v1") + "/storage/ws_demo/")
    query = dict(parse_qsl(urlsplit(res["url"]).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "900"
    if kind == "video":
        assert res["sources"] == [{"url": res["url"], "type": "video/webm"}]
        assert res["durationMs"] == 5_000


@pytest.mark.parametrize(
    ("rec", "kind", "message"),
    [
        ("rec_demo_no_logs", "console-log", "Console log not captured"),
        ("rec_demo_no_logs", "network-log", "Network log not captured"),
        ("rec_demo_no_video", "video", "Video not captured"),
    ],
)
async def test_resource_not_captured(
    fake: FakeUserplane, http: aiohttp.ClientSession, rec: str, kind: str, message: str
) -> None:
    """An uncaptured resource is a 200 with url null and captureEnabled false."""
    data = await get(http, fake, f"/public/workspace/{WS}/recordings/{rec}/{kind}")
    res = data["resource"]
    assert (res["url"], res["captureEnabled"], res["message"]) == (None, False, message)


async def test_percent_encoded_ids(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Path IDs are decoded once per segment, so an ID may hold '/' or '%'."""
    fake.add_workspace("ws/odd")
    fake.add_recording("ws/odd", "rec/a b%2F", resources={"video": FakeResource(b"abc")})
    path = f"/public/workspace/{quote('ws/odd', safe='')}/recordings/{quote('rec/a b%2F', safe='')}"
    data = await get(http, fake, path)
    assert data["recording"]["recordingId"] == "rec/a b%2F"
    data = await get(http, fake, path + "/video")
    response = await fetch(http, data["resource"]["url"])
    assert response.status == 200
    assert "%2F" in fake.storage_requests()[-1].path


# Pagination


@pytest.mark.parametrize(
    ("path", "default", "maximum"),
    [
        ("/public/workspaces", 10, 20),
        (f"/public/workspace/{WS}/projects", 5, 10),
        (f"/public/workspace/{WS}/links", 10, 20),
        (f"/public/workspace/{WS}/recordings", 10, 20),
    ],
)
@pytest.mark.parametrize(
    "query", ["page=0", "page=x", "page=-1", "per_page=0", "per_page=1.5", "per_page=MAX+1"]
)
async def test_pagination_validation(
    fake: FakeUserplane,
    http: aiohttp.ClientSession,
    path: str,
    default: int,
    maximum: int,
    query: str,
) -> None:
    """A bad page or per_page is a 400 VALIDATION_ERROR; the maximum itself is fine."""
    query = query.replace("MAX+1", str(maximum + 1))
    status, body = await call(http, fake, "GET", f"{path}?{query}")
    assert (status, body["error"]) == (400, "VALIDATION_ERROR")
    data = await get(http, fake, f"{path}?per_page={maximum}")
    assert data["pagination"]["perPage"] == maximum
    data = await get(http, fake, path)
    assert data["pagination"]["perPage"] == default


async def test_pagination_pages(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Pages split the list exactly; a page past the end is empty without more."""
    for i in range(20):
        fake.add_recording(WS, f"rec_extra_{i:02}")
    base = f"/public/workspace/{WS}/recordings"
    seen: list[str] = []
    for page in (1, 2, 3):
        data = await get(http, fake, f"{base}?page={page}&per_page=10")
        seen += [r["recordingId"] for r in data["recordings"]]
        assert data["pagination"] == {
            "page": page,
            "perPage": 10,
            "total": 25,
            "totalPages": 3,
            "hasMore": page < 3,
        }
    assert len(seen) == len(set(seen)) == 25
    data = await get(http, fake, f"{base}?page=4&per_page=10")
    assert data["recordings"] == []
    assert data["pagination"]["hasMore"] is False


# Auth and membership


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 401, "API_KEY_REQUIRED"),
        ("Basic dXNlcjpwYXNz", 401, "API_KEY_REQUIRED"),
        ("Bearer ", 401, "API_KEY_REQUIRED"),
        ("Bearer uspl_unknown", 401, "API_KEY_INVALID"),
        ("Bearer uspl_expired", 401, "API_KEY_EXPIRED"),
        ("Bearer uspl_disabled", 403, "API_KEY_DISABLED"),
    ],
)
async def test_auth_errors(
    fake: FakeUserplane,
    http: aiohttp.ClientSession,
    authorization: str | None,
    status: int,
    code: str,
) -> None:
    """Missing, malformed, unknown, expired and disabled keys get the documented errors."""
    fake.add_api_key("uspl_expired", status="expired")
    fake.add_api_key("uspl_disabled", status="disabled")
    headers = {} if authorization is None else {"Authorization": authorization}
    got = await call(http, fake, "GET", "/public/me", headers=headers)
    assert got == (status, {"error": code, "message": got[1]["message"]})


async def test_membership_errors(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A workspace the user is not in is 403 NOT_A_MEMBER; an unknown one is 404."""
    fake.add_user("usr_other")
    fake.add_workspace("ws_private", members={"usr_other": "owner"})
    for path in ("", "/recordings", "/links", "/projects", "/invite-url"):
        status, body = await call(http, fake, "GET", f"/public/workspace/ws_private{path}")
        assert (status, body["error"]) == (403, "NOT_A_MEMBER")
        status, body = await call(http, fake, "GET", f"/public/workspace/ws_nope{path}")
        assert (status, body["error"]) == (404, "WORKSPACE_NOT_FOUND")


async def test_unknown_path_and_method(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Unknown paths are a JSON 404 and wrong methods a JSON 405, logged as 'unknown'."""
    status, body = await call(http, fake, "GET", "/public/nothing")
    assert (status, body["error"]) == (404, "NOT_FOUND")
    status, body = await call(http, fake, "POST", "/public/me")
    assert (status, body["error"]) == (405, "METHOD_NOT_ALLOWED")
    assert [r.route for r in fake.requests] == ["unknown", "unknown"]


# Rate limit


async def test_rate_limit_scaled_clock(http: aiohttp.ClientSession) -> None:
    """Past the limit the fake answers 429 RATE_LIMITED (no Retry-After) until the window passes."""
    clock = ScaledClock(factor=1000)
    async with FakeUserplane(clock=clock, rate_limits=[(3, 600.0)]) as fake:
        for _ in range(3):
            await get(http, fake, "/public/me")
        url = URL(fake.base_url + "/public/me")
        async with http.get(url, headers={"Authorization": f"Bearer {fake.api_key}"}) as response:
            assert response.status == 429
            assert "Retry-After" not in response.headers
            assert await response.json() == {
                "error": "RATE_LIMITED",
                "message": "Rate limit exceeded. Wait and retry with exponential backoff. "
                "See https://docs.userplane.io/api/rate-limits",
            }
        await clock.sleep(600)
        await get(http, fake, "/public/me")
        assert fake.rate_limited_count == 1


async def test_rate_limit_sliding_window(clock: FakeClock, http: aiohttp.ClientSession) -> None:
    """The window slides per user across keys; refused and unauthenticated calls don't count."""
    async with FakeUserplane(clock=clock, rate_limits=[(2, 60.0), (4, 3600.0)]) as fake:
        fake.add_api_key("uspl_second")
        second = {"Authorization": "Bearer uspl_second"}
        await call(http, fake, "GET", "/public/me", headers={"Authorization": "Bearer bad"})
        assert (await call(http, fake, "GET", "/public/me"))[0] == 200  # t=0
        clock.advance(30)
        assert (await call(http, fake, "GET", "/public/me", headers=second))[0] == 200  # t=30
        assert (await call(http, fake, "GET", "/public/me"))[0] == 429
        clock.advance(30)  # t=60: the first call has left the window, the second not
        assert (await call(http, fake, "GET", "/public/me"))[0] == 200
        assert (await call(http, fake, "GET", "/public/me"))[0] == 429
        clock.advance(60)  # t=120
        assert (await call(http, fake, "GET", "/public/me"))[0] == 200
        clock.advance(60)  # t=180: the hourly limit of 4 is reached
        assert (await call(http, fake, "GET", "/public/me"))[0] == 429
        assert fake.rate_limited_count == 3
        fake.script("me", status=429)
        assert (await call(http, fake, "GET", "/public/me"))[0] == 429
        assert fake.rate_limited_count == 3


async def test_storage_not_rate_limited(clock: FakeClock, http: aiohttp.ClientSession) -> None:
    """Storage downloads need no bearer key and do not use up the API budget."""
    async with FakeUserplane(clock=clock, rate_limits=[(1, 60.0)]) as fake:
        fake.seed_demo()
        url = await resource_url(http, fake, "rec_demo_small", "thumbnail")
        for _ in range(3):
            assert (await fetch(http, url)).status == 200
        assert fake.rate_limited_count == 0


# Scripted faults


async def test_script_times_and_retry_after(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """A script answers the next N requests of its route with the documented error body."""
    fake.script("me", status=503, times=2, retry_after="7")
    url = URL(fake.base_url + "/public/me")
    for _ in range(2):
        async with http.get(url) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "7"
            body = await response.json()
            assert body["error"] == "SERVICE_UNAVAILABLE"
    assert (await call(http, fake, "GET", "/public/me"))[0] == 200
    assert [r.status for r in fake.requests] == [503, 503, 200]


@pytest.mark.parametrize(
    ("status", "code"), [(429, "RATE_LIMITED"), (500, "INTERNAL_ERROR"), (502, "SCRIPTED")]
)
async def test_script_default_codes(
    fake: FakeUserplane, http: aiohttp.ClientSession, status: int, code: str
) -> None:
    """Without a body, a scripted status carries its documented error code."""
    fake.script("recordings.list", status=status)
    got = await call(http, fake, "GET", f"/public/workspace/{WS}/recordings")
    assert (got[0], got[1]["error"]) == (status, code)


async def test_script_bodies(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Scripts send raw bytes or a JSON mapping, with an optional content type."""
    fake.script("me", status=502, body=b"<html>bad gateway</html>", content_type="text/html")
    fake.script("me", status=200, body={"message": "odd", "data": {"user": None}})
    async with http.get(URL(fake.base_url + "/public/me")) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        assert await response.read() == b"<html>bad gateway</html>"
    assert await call(http, fake, "GET", "/public/me") == (
        200,
        {"message": "odd", "data": {"user": None}},
    )


async def test_script_headers(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Scripted headers are added to the answer and win over the fake's own."""
    fake.script("me", status=302, body=b"", headers={"Location": "http://127.0.0.1:9/x"})
    fake.script("me", status=200, body=b"{}", headers={"Content-Type": "text/plain"})
    url = URL(fake.base_url + "/public/me")
    async with http.get(url, allow_redirects=False) as response:
        assert (response.status, response.headers["Location"]) == (302, "http://127.0.0.1:9/x")
    async with http.get(url) as response:
        assert response.content_type == "text/plain"
    assert (await call(http, fake, "GET", "/public/me"))[0] == 200


async def test_script_stream(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A scripted stream is sent chunked, without Content-Length, pulling chunks as it goes."""
    pulled: list[int] = []

    def chunks() -> Iterator[bytes]:
        for number in range(3):
            pulled.append(number)
            yield b'{"n": %d}' % number

    fake.script("me", status=200, stream=chunks())
    async with http.get(URL(fake.base_url + "/public/me")) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in response.headers
        assert response.content_type == "application/json"
        assert await response.read() == b'{"n": 0}{"n": 1}{"n": 2}'
    assert pulled == [0, 1, 2]
    assert fake.requests[-1].status == 200
    with pytest.raises(ValueError, match="not both"):
        fake.script("me", status=200, body=b"x", stream=[b"y"])


async def test_endless_stream_stops_when_the_client_hangs_up(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """An endless stream is pulled only as fast as it is written, and ends with the client."""
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 65536

    fake.script("me", status=200, stream=endless())
    with anyio.fail_after(5):
        async with http.get(URL(fake.base_url + "/public/me")) as response:
            assert len(await response.content.readexactly(1 << 20)) == 1 << 20
            response.close()  # hang up mid-body
        await fake.aclose()  # waits for the handler: its request is logged by then
    assert fake.requests[-1].status == 0
    assert 16 <= pulled < 16 + 512  # 1 MiB read; at most 32 MiB more sat in buffers


async def test_script_fifo_and_wildcard(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Scripts apply in the order added; '*' covers every API route but not storage."""
    fake.script("*", status=500)
    fake.script("me", status=503)
    video = f"/public/workspace/{WS}/recordings/rec_demo_small/video"
    assert (await call(http, fake, "GET", video))[0] == 500
    assert (await call(http, fake, "GET", "/public/me"))[0] == 503
    url = await resource_url(http, fake, "rec_demo_small", "video")
    fake.script("*", status=500)
    assert (await fetch(http, url)).status == 200
    with pytest.raises(ValueError, match="unknown route"):
        fake.script("nope")


async def test_script_delay(
    fake: FakeUserplane, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """A delay passes on the fake's clock first; a 200 without a body is the real answer, late."""
    fake.script("me", status=200, delay=5.0)
    fake.script("me", status=503, delay=2.0)
    status, body = await call(http, fake, "GET", "/public/me")
    assert (status, body["data"]["user"]["id"]) == (200, "usr_default")
    assert (await call(http, fake, "GET", "/public/me"))[0] == 503
    assert clock.sleeps == [5.0, 2.0]


async def test_script_before_auth(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Scripted answers come before authentication, like a front door."""
    fake.script("me", status=503)
    status, _ = await call(http, fake, "GET", "/public/me", headers={})
    assert status == 503


async def test_storage_script(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Scripts on storage.get answer in S3's XML dialect."""
    url = await resource_url(http, fake, "rec_demo_small", "video")
    fake.script("storage.get", status=503, retry_after="1")
    async with http.get(URL(url, encoded=True)) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert "<Code>SlowDown</Code>" in await response.text()


# Request log


async def test_request_log(
    fake: FakeUserplane, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Every request is logged with its arrival time, raw path and query, headers and status."""
    clock.advance(12.5)
    await get(http, fake, f"/public/workspace/{WS}/recordings?per_page=2&link_id=a%2Fb")
    url = await resource_url(http, fake, "rec_demo_small", "thumbnail")
    await fetch(http, url, headers={"X-Trace": "t1"})
    first = fake.requests[0]
    assert isinstance(first, RequestRecord)
    assert first.time == 12.5
    assert (first.method, first.route, first.status) == ("GET", "recordings.list", 200)
    assert first.path == f"/api/v1/public/workspace/{WS}/recordings"
    assert first.query == "per_page=2&link_id=a%2Fb"
    assert first.headers["authorization"] == RequestRecord.redacted(f"Bearer {fake.api_key}")
    assert fake.api_key not in str(fake.requests)
    assert [r.route for r in fake.api_requests()] == ["recordings.list", "recordings.resource"]
    [stored] = fake.storage_requests()
    assert stored.headers["x-trace"] == "t1"
    assert "authorization" not in stored.headers
    assert stored.query == urlsplit(url).query
    fake.clear_requests()
    assert fake.requests == []


# Object store


async def test_storage_download(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """A presigned GET answers 200 with the bytes, type, length and a quoted ETag."""
    data = await get(http, fake, f"/public/workspace/{WS}/recordings/rec_demo_full/console-log")
    res = data["resource"]
    async with http.get(URL(res["url"], encoded=True)) as response:
        body = await response.read()
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert int(response.headers["Content-Length"]) == len(body) == res["size"]
        etag = response.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert b'"level": "error"' in body


async def test_generated_content(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """Generated content has the declared size and is the same on every download."""
    fake.add_recording(
        WS, "rec_sized", resources={"video": FakeResource(size=200_000, type="video/mp4")}
    )
    data = await get(http, fake, f"/public/workspace/{WS}/recordings/rec_sized/video")
    assert (data["resource"]["size"], data["resource"]["type"]) == (200_000, "video/mp4")
    bodies = []
    for _ in range(2):
        url = await resource_url(http, fake, "rec_sized", "video")
        async with http.get(URL(url, encoded=True)) as response:
            bodies.append((await response.read(), response.headers["ETag"]))
    assert bodies[0] == bodies[1]
    assert len(bodies[0][0]) == 200_000


async def test_large_video_streams(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """The demo's 50 MiB video streams in full."""
    url = await resource_url(http, fake, "rec_demo_large", "video")
    total = 0
    async with http.get(URL(url, encoded=True)) as response:
        async for chunk in response.content.iter_chunked(1 << 20):
            total += len(chunk)
    assert total == 50 * 1024 * 1024


async def test_storage_expired(
    fake: FakeUserplane, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Past X-Amz-Date + X-Amz-Expires the store answers 403 AccessDenied 'Request has expired'."""
    url = await resource_url(http, fake, "rec_demo_small", "video")
    clock.advance(900)
    assert (await fetch(http, url)).status == 200
    clock.advance(1)
    async with http.get(URL(url, encoded=True)) as response:
        assert response.status == 403
        assert response.content_type == "application/xml"
        text = await response.text()
    assert "<Code>AccessDenied</Code>" in text
    assert "<Message>Request has expired</Message>" in text


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda u: u[:-1] + ("0" if u[-1] != "0" else "1"), id="signature"),
        pytest.param(lambda u: u.replace("X-Amz-Expires=900", "X-Amz-Expires=9000"), id="expires"),
        pytest.param(lambda u: u.replace("/video?", "/thumbnail?"), id="path"),
        pytest.param(lambda u: u.partition("&X-Amz-Signature")[0], id="missing"),
    ],
)
async def test_storage_bad_signature(
    fake: FakeUserplane, http: aiohttp.ClientSession, tamper: Any
) -> None:
    """Any change to the signed path or query is 403 SignatureDoesNotMatch."""
    url = await resource_url(http, fake, "rec_demo_small", "video")
    async with http.get(URL(tamper(url), encoded=True)) as response:
        assert response.status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in await response.text()


async def test_storage_authorization_header(
    fake: FakeUserplane, http: aiohttp.ClientSession
) -> None:
    """An Authorization header is 400 InvalidArgument, echoing the header like S3 does."""
    url = await resource_url(http, fake, "rec_demo_small", "video")
    headers = {"Authorization": "Bearer uspl_leak"}
    async with http.get(URL(url, encoded=True), headers=headers) as response:
        assert response.status == 400
        text = await response.text()
    assert "<Code>InvalidArgument</Code>" in text
    assert "<ArgumentValue>Bearer uspl_leak</ArgumentValue>" in text
    assert "Only one auth mechanism allowed" in text


async def test_storage_head_and_unknown(fake: FakeUserplane, http: aiohttp.ClientSession) -> None:
    """HEAD is 403 with no body; a signed URL for a missing object is 404 NoSuchKey."""
    url = await resource_url(http, fake, "rec_demo_small", "video")
    async with http.head(URL(url, encoded=True)) as response:
        assert response.status == 403
        assert await response.read() == b""
    missing = fake._presigner.url(WS, "rec_missing", "video")
    async with http.get(URL(missing, encoded=True)) as response:
        assert response.status == 404
        assert "<Code>NoSuchKey</Code>" in await response.text()
    assert [r.route for r in fake.storage_requests()] == ["storage.get", "storage.get"]

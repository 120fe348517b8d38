"""Every endpoint of the public API, through the client, against the fake over real sockets."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from userplane_async import (
    AsyncUserplane,
    ConfigurationError,
    GoneError,
    InvalidIDError,
    NotFoundError,
    PermissionDeniedError,
    Recording,
    ResourceKind,
)
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio

WS = "ws_test"


@pytest.fixture
def seeded(fake_userplane: FakeUserplane) -> FakeUserplane:
    """The fake with one small workspace of our own besides the demo one."""
    fake = fake_userplane
    fake.add_workspace(WS, name="Test workspace")
    fake.add_project(WS, "proj_1", title="Support")
    fake.add_domain(WS, "dom_1", url="https://shop.example")
    fake.add_link(WS, "link_1", title="Ticket 42", project_id="proj_1", domain_id="dom_1")
    fake.add_recording(
        WS,
        "rec_1",
        project_id="proj_1",
        link_id="link_1",
        custom_meta={"plan": "pro"},
        resources={
            "video": FakeResource(b"video-bytes", type="video/mp4"),
            "console-log": FakeResource(captured=False),
        },
    )
    fake.add_recording(WS, "rec_2", project_id="proj_1")
    return fake


async def test_me(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """me() returns the key's user and stats."""
    me = await client.me()
    assert me.user.id == "usr_default"
    assert me.stats is not None
    assert me.stats.workspaces is not None
    assert me.stats.workspaces >= 2


async def test_workspaces(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """Workspaces can be listed (with membership), fetched and asked for an invite URL."""
    listed = [ws async for ws in client.workspaces.list(include_membership=True)]
    by_id = {ws.workspace_id: ws for ws in listed}
    assert by_id[WS].workspace_name == "Test workspace"
    membership = by_id[WS].workspace_membership
    assert membership is not None
    assert membership.workspace_role == "owner"
    workspace = await client.workspaces.get(WS)
    assert workspace.workspace_id == WS
    assert isinstance(workspace.created_at, datetime)
    invite = await client.workspaces.invite_url(WS)
    assert invite.workspace_id == WS
    assert invite.invite_url


async def test_projects(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """Projects can be listed and fetched; a deleted one is gone."""
    assert [p.project_id async for p in client.projects.list(WS)] == ["proj_1"]
    project = await client.projects.get(WS, "proj_1")
    assert project.title == "Support"
    seeded.delete_project(WS, "proj_1")
    with pytest.raises(GoneError) as caught:
        await client.projects.get(WS, "proj_1")
    assert caught.value.code == "PROJECT_GONE"


async def test_links_lifecycle(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """A link can be created, read, updated, listed and soft-deleted."""
    created = await client.links.create(WS, domain_id="dom_1", project_id="proj_1", meta={"a": 1})
    assert created.domain is not None
    assert created.domain.domain_id == "dom_1"
    fetched = await client.links.get(WS, created.link_id)
    assert fetched.link_id == created.link_id
    updated = await client.links.update(
        WS, created.link_id, link_title="Renamed", link_provider_ref="T-9"
    )
    assert updated.link_title == "Renamed"
    assert updated.link_provider_reference == "T-9"
    listed = {link.link_id async for link in client.links.list(WS)}
    assert {"link_1", created.link_id} <= listed
    deleted = await client.links.delete(WS, created.link_id)
    assert (deleted.workspace_id, deleted.link_id) == (WS, created.link_id)
    with pytest.raises(GoneError):
        await client.links.get(WS, created.link_id)
    with pytest.raises(GoneError):
        await client.links.delete(WS, created.link_id)


async def test_recording_get(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """get() parses the full recording shape, datetimes and free-form metadata included."""
    recording = await client.recordings.get(WS, "rec_1")
    assert recording.recording_id == "rec_1"
    assert recording.meta is not None
    assert recording.meta.custom_meta == {"plan": "pro"}
    assert recording.meta.project is not None
    assert recording.meta.project.project_id == "proj_1"
    assert recording.meta.created_at is not None
    assert recording.meta.created_at.tzinfo == timezone.utc


async def test_recordings_list_filters(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """list() sends the documented filters and passes unknown ones through."""
    by_link = [r.recording_id async for r in client.recordings.list(WS, link_id="link_1")]
    assert by_link == ["rec_1"]
    by_project = {r.recording_id async for r in client.recordings.list(WS, project_id="proj_1")}
    assert by_project == {"rec_1", "rec_2"}
    [_ async for _ in client.recordings.list(WS, created_by="usr_default", sort="createdAt")]
    query = seeded.api_requests()[-1].query
    assert "created_by=usr_default" in query
    assert "sort=createdAt" in query
    assert "per_page=20" in query
    assert "page=1" in query


async def test_recording_delete(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """A deleted recording answers 410 afterwards and is no longer listed."""
    deleted = await client.recordings.delete(WS, "rec_2")
    assert deleted.recording_id == "rec_2"
    with pytest.raises(GoneError) as caught:
        await client.recordings.get(WS, "rec_2")
    assert caught.value.code == "RECORDING_GONE"
    assert [r.recording_id async for r in client.recordings.list(WS)] == ["rec_1"]


@pytest.mark.parametrize("kind", list(ResourceKind), ids=[k.value for k in ResourceKind])
async def test_resource_kinds(
    client: AsyncUserplane, seeded: FakeUserplane, kind: ResourceKind
) -> None:
    """Every resource kind resolves through resource() and through its shortcut."""
    via_resource = await client.recordings.resource(WS, "rec_2", kind)
    shortcut = getattr(client.recordings, kind.name.lower())
    via_shortcut = await shortcut(WS, "rec_2")
    for resource in (via_resource, via_shortcut):
        assert resource.kind is kind
        assert resource.recording_id == "rec_2"
        assert resource.available
        assert resource.size is not None
        assert resource.size > 0
    paths = [r.path for r in seeded.api_requests()[-2:]]
    assert paths == [f"/api/v1/public/workspace/{WS}/recordings/rec_2/{kind.value}"] * 2


async def test_resource_details(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """Video carries MIME type, size and sources; an uncaptured resource has no URL."""
    video = await client.recordings.video(WS, "rec_1")
    assert video.type == "video/mp4"
    assert video.size == len(b"video-bytes")
    assert [s.type for s in video.sources] == ["video/mp4"]
    console = await client.recordings.console_log(WS, "rec_1")
    assert console.url is None
    assert not console.available
    assert console.capture_enabled is False
    assert console.message


async def test_resource_kind_as_string(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """A kind may be given as its path suffix; an unknown one is refused before any call."""
    resource = await client.recordings.resource(WS, "rec_2", "network-log")
    assert resource.kind is ResourceKind.NETWORK_LOG
    calls = client.api_calls
    with pytest.raises(ConfigurationError, match="unknown resource kind"):
        await client.recordings.resource(WS, "rec_2", "audio")
    assert client.api_calls == calls


async def test_not_found_and_membership(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """Unknown IDs are 404s and foreign workspaces 403 NOT_A_MEMBER."""
    with pytest.raises(NotFoundError) as caught:
        await client.recordings.get(WS, "rec_missing")
    assert caught.value.code == "RECORDING_NOT_FOUND"
    seeded.add_user("usr_other")
    seeded.add_workspace("ws_foreign", members={"usr_other": "owner"})
    with pytest.raises(PermissionDeniedError) as denied:
        await client.workspaces.get("ws_foreign")
    assert denied.value.code == "NOT_A_MEMBER"
    assert denied.value.status == 403


@pytest.mark.parametrize(
    "recording_id",
    [
        pytest.param("a/b", id="slash"),
        pytest.param("../rec_1", id="dotdot-prefix"),
        pytest.param("rec?x=1", id="query"),
        pytest.param("rec#frag", id="fragment"),
        pytest.param("rec 1%2F", id="space-percent"),
    ],
)
async def test_ids_stay_one_path_segment(
    client: AsyncUserplane, seeded: FakeUserplane, recording_id: str
) -> None:
    """Hostile IDs are sent as a single encoded segment and only find the recording named so."""
    seeded.add_recording(WS, recording_id)
    recording = await client.recordings.get(WS, recording_id)
    assert recording.recording_id == recording_id
    raw_path = seeded.api_requests()[-1].path
    assert (
        raw_path.count("/")
        == len(["", "api", "v1", "public", "workspace", "ws", "recordings", "x"]) - 1
    )


@pytest.mark.parametrize("bad", ["", ".", "..", 42, None, "r" * 129, "rec\n1"])
async def test_unusable_ids_are_refused(client: AsyncUserplane, bad: object) -> None:
    """Empty, dot, too long, control-character and non-string IDs: InvalidIDError, no request."""
    with pytest.raises(InvalidIDError):
        await client.recordings.get(WS, bad)  # type: ignore[arg-type]
    assert client.api_calls == 0


async def test_list_items_are_recordings(client: AsyncUserplane, seeded: FakeUserplane) -> None:
    """List items carry the Get Recording shape."""
    items = [r async for r in client.recordings.list(WS)]
    assert all(isinstance(r, Recording) for r in items)
    assert all(r.meta is not None and r.meta.workspace_id == WS for r in items)

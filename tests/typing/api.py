"""Typing examples for the public API: never executed, only type-checked (``mypy --strict``).

Every public method is called with realistic arguments and its result is bound to an annotated
name, so a change to a public signature or return type fails the typing session.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from starlette.requests import Request
from starlette.responses import Response

import userplane_async
from userplane_async import (
    AsyncPaginator,
    AsyncUserplane,
    ByteRange,
    DeletedLink,
    DeletedRecording,
    InviteURL,
    Link,
    Me,
    Page,
    Pagination,
    Project,
    RangeNotSatisfiableError,
    RateLimit,
    RateLimitError,
    Recording,
    RecordingResource,
    ResourceKind,
    ResourceSource,
    RetryPolicy,
    Timeout,
    UserplaneAPIError,
    UserplaneError,
    Workspace,
)
from userplane_async.web.aiohttp import serve_resource as aiohttp_serve
from userplane_async.web.starlette import ResourceResponse
from userplane_async.web.starlette import serve_resource as starlette_serve


async def configure() -> None:
    """Every way of building a client."""
    client = AsyncUserplane(
        "uspl_test_key",
        base_url="https://api.userplane.io/api/v1",
        timeout=Timeout(connect=5.0, read=30.0, total=None),
        max_retries=2,
        concurrency=4,
        stream_concurrency=50,
        rate_limit=RateLimit(per_minute=60, per_day=None, max_wait=30.0),
        retry=RetryPolicy(attempts=3, timeout=60.0, rate_limited_attempts=10),
    )
    await client.aclose()
    async with AsyncUserplane(timeout=10.0, rate_limit=None, retry=RetryPolicy.no_wait()) as ctx:
        base_url: str = ctx.base_url
        calls: int = ctx.api_calls
        closed: bool = ctx.closed
        streams: int = ctx.stream_concurrency
        print(base_url, calls, closed, ctx.concurrency, streams, ctx.rate_limit, ctx.retry)
    version: str = userplane_async.__version__
    print(version)


async def read_everything(client: AsyncUserplane) -> None:
    """Every read endpoint, and every way to walk a list."""
    me: Me = await client.me()
    print(me.user.id, me.user.email, me.stats.recordings if me.stats else None)

    workspaces: AsyncPaginator[Workspace] = client.workspaces.list(
        include_membership=True, per_page=20
    )
    async for workspace in workspaces:
        workspace_id: str = workspace.workspace_id
        created: datetime | None = workspace.created_at
        print(workspace_id, created)
    first: Page[Workspace] = await workspaces.page(1)
    items: tuple[Workspace, ...] = first.items
    pagination: Pagination = first.pagination
    more: bool = pagination.has_more
    print(items, more)
    async for page in workspaces.pages():
        page_items: tuple[Workspace, ...] = page.items
        print(page_items)

    workspace_one: Workspace = await client.workspaces.get("ws_1")
    invite: InviteURL = await client.workspaces.invite_url("ws_1")
    invite_url: str = invite.invite_url
    print(workspace_one, invite_url)

    projects: AsyncPaginator[Project] = client.projects.list("ws_1", per_page=10)
    async for project in projects:
        title: str | None = project.title
        print(title)
    project_one: Project = await client.projects.get("ws_1", "prj_1")
    print(project_one)

    links: AsyncPaginator[Link] = client.links.list("ws_1", per_page=5, project_id="prj_1")
    link_pages: list[Page[Link]] = [page async for page in links.pages()]
    print(link_pages)
    link: Link = await client.links.get("ws_1", "lnk_1")
    link_url: str | None = link.link_url
    print(link_url)

    recordings: AsyncPaginator[Recording] = client.recordings.list(
        "ws_1", project_id="prj_1", link_id="lnk_1", created_by="wm_1", per_page=20, status="ready"
    )
    async for recording in recordings:
        duration: int | None = recording.recording_duration_ms
        print(duration)
    recording_one: Recording = await client.recordings.get("ws_1", "rec_1")
    print(recording_one.meta.status if recording_one.meta else None)


async def resources(client: AsyncUserplane) -> None:
    """The presigned resource URLs of a recording."""
    by_enum: RecordingResource = await client.recordings.resource(
        "ws_1", "rec_1", ResourceKind.NETWORK_LOG
    )
    by_name: RecordingResource = await client.recordings.resource("ws_1", "rec_1", "console-log")
    video: RecordingResource = await client.recordings.video("ws_1", "rec_1")
    thumbnail: RecordingResource = await client.recordings.thumbnail("ws_1", "rec_1")
    console_log: RecordingResource = await client.recordings.console_log("ws_1", "rec_1")
    network_log: RecordingResource = await client.recordings.network_log("ws_1", "rec_1")
    action: RecordingResource = await client.recordings.action("ws_1", "rec_1")
    available: bool = video.available
    url: str | None = video.url
    kind: ResourceKind | None = video.kind
    sources: tuple[ResourceSource, ...] = video.sources
    print(by_enum, by_name, thumbnail, console_log, network_log, action, available, url, kind)
    print([source.url for source in sources])


async def streams(client: AsyncUserplane) -> None:
    """Streaming a resource, or a byte range of it, as a web handler does."""
    probe = ByteRange(0, 1)
    tail: ByteRange = ByteRange.suffix(500)
    asked: ByteRange | None = ByteRange.parse("bytes=100-")
    first_last: tuple[int, int] | None = probe.within(49_641)
    header: str = probe.header
    try:
        async with client.recordings.stream(
            "ws_1", "rec_1", "video", range=probe, if_range='"abc"'
        ) as body:
            status: int = body.status
            content_range: str | None = body.content_range
            length: int | None = body.content_length
            size: int | None = body.size
            etag: str | None = body.etag
            content_type: str | None = body.content_type
            offset: int = body.offset
            chunks: list[bytes] = [chunk async for chunk in body]
            print(status, content_range, length, size, etag, content_type, offset, chunks)
    except RangeNotSatisfiableError as exc:
        whole: int | None = exc.size
        print(whole, exc.status)
    async with client.recordings.stream("ws_1", "rec_1", ResourceKind.VIDEO, offset=10) as rest:
        print(rest.status)
    print(tail, asked, first_last, header)


async def web_helpers(
    client: AsyncUserplane, aiohttp_request: web.Request, starlette_request: Request
) -> None:
    """The web helpers: aiohttp.web answers at once, Starlette's when the response is sent."""
    answered: web.StreamResponse = await aiohttp_serve(
        aiohttp_request, client, "ws_1", "rec_1", "video", headers={"Cache-Control": "private"}
    )
    response: ResourceResponse = starlette_serve(
        starlette_request, client, "ws_1", "rec_1", ResourceKind.VIDEO
    )
    as_starlette: Response = response
    print(answered, as_starlette)


async def write_everything(client: AsyncUserplane) -> None:
    """Creating, updating and deleting, with the errors a caller handles."""
    created: Link = await client.links.create(
        "ws_1",
        domain_id="dom_1",
        project_id="prj_1",
        link_reference="ticket-42",
        link_reusable=True,
        meta={"source": "typing"},
    )
    updated: Link = await client.links.update(
        "ws_1",
        created.link_id,
        link_title="Bug report",
        link_reusable=False,
        link_provider_type="zendesk",
        link_provider_id="zd_1",
        link_provider_ref="ticket-42",
        meta={"priority": 1},
    )
    try:
        deleted_link: DeletedLink = await client.links.delete("ws_1", updated.link_id)
        deleted_recording: DeletedRecording = await client.recordings.delete("ws_1", "rec_1")
        print(deleted_link.link_id, deleted_recording.recording_id)
    except RateLimitError as exc:
        retry_after: float | None = exc.retry_after
        print(retry_after)
    except UserplaneAPIError as exc:
        status: int = exc.status
        code: str | None = exc.code
        print(status, code)
    except UserplaneError as exc:
        message: str = exc.message
        print(message)

"""Typing examples for the blocking client: never executed, only type-checked (``mypy --strict``).

The blocking methods take their signatures from the async ones; these calls pin what a caller
sees, so a wrapper that loses a parameter or a return type fails the typing session.
"""

from __future__ import annotations

from pathlib import Path

from userplane_async import (
    ArchiveEvent,
    ArchiveReport,
    BlockingResourceStream,
    ClientClosedError,
    DeletedLink,
    DeletedRecording,
    DownloadResult,
    InviteURL,
    Link,
    Me,
    Page,
    Paginator,
    Project,
    RateLimit,
    Recording,
    RecordingResource,
    ResourceKind,
    RetryPolicy,
    Timeout,
    Userplane,
    Workspace,
)


def configure() -> None:
    """The constructor takes AsyncUserplane's arguments (but no aiohttp session)."""
    client = Userplane(
        "uspl_test_key",
        base_url="https://api.userplane.io/api/v1",
        timeout=Timeout(connect=5.0, read=30.0, total=None),
        max_retries=2,
        concurrency=4,
        stream_concurrency=50,
        rate_limit=RateLimit(per_minute=60, per_day=None, max_wait=30.0),
        retry=RetryPolicy(attempts=3, timeout=60.0, rate_limited_attempts=10),
    )
    client.close()
    with Userplane(timeout=10.0, rate_limit=None) as ctx:
        base_url: str = ctx.base_url
        calls: int = ctx.api_calls
        closed: bool = ctx.closed
        streams: int = ctx.stream_concurrency
        print(base_url, calls, closed, ctx.concurrency, streams, ctx.rate_limit, ctx.retry)


def read_and_write(client: Userplane) -> None:
    """Every namespace, with plain iteration over lists."""
    me: Me = client.me()
    workspaces: Paginator[Workspace] = client.workspaces.list(include_membership=True)
    for workspace in workspaces:
        print(workspace.workspace_id)
    first: Page[Workspace] = workspaces.page(1)
    pages: list[Page[Workspace]] = list(workspaces.pages())
    invite: InviteURL = client.workspaces.invite_url("ws_1")
    project: Project = client.projects.get("ws_1", "prj_1")
    projects: list[Project] = list(client.projects.list("ws_1", per_page=10))
    link: Link = client.links.create("ws_1", domain_id="dom_1", link_reusable=True)
    link = client.links.update("ws_1", link.link_id, link_title="Bug report")
    link = client.links.get("ws_1", link.link_id)
    deleted_link: DeletedLink = client.links.delete("ws_1", link.link_id)
    recordings: Paginator[Recording] = client.recordings.list("ws_1", project_id="prj_1")
    recording: Recording = client.recordings.get("ws_1", "rec_1")
    deleted: DeletedRecording = client.recordings.delete("ws_1", recording.recording_id)
    print(me, first, pages, invite, project, projects, deleted_link, list(recordings), deleted)


def files(client: Userplane, dest: Path) -> None:
    """Resources, downloads, streams and archives."""
    resource: RecordingResource = client.recordings.resource("ws_1", "rec_1", ResourceKind.VIDEO)
    video: RecordingResource = client.recordings.video("ws_1", "rec_1")
    thumbnail: RecordingResource = client.recordings.thumbnail("ws_1", "rec_1")
    console_log: RecordingResource = client.recordings.console_log("ws_1", "rec_1")
    network_log: RecordingResource = client.recordings.network_log("ws_1", "rec_1")
    action: RecordingResource = client.recordings.action("ws_1", "rec_1")
    print(resource, video, thumbnail, console_log, network_log, action)

    def progress(done: int, total: int | None) -> None:
        print(done, total)

    result: DownloadResult = client.recordings.download(
        "ws_1", "rec_1", "video", dest, overwrite=True, progress=progress
    )
    with client.recordings.stream("ws_1", "rec_1", ResourceKind.VIDEO, offset=10) as body:
        stream: BlockingResourceStream = body
        size: int | None = stream.size
        content_type: str | None = stream.content_type
        etag: str | None = stream.etag
        offset: int = stream.offset
        for chunk in body:
            data: bytes = chunk
            print(data, size, content_type, etag, offset)

    def on_event(event: ArchiveEvent) -> None:
        print(event)

    report: ArchiveReport = client.archive(
        "ws_1", dest, kinds=["video"], concurrency=2, on_event=on_event, verify=True
    )
    try:
        client.close()
        client.me()
    except ClientClosedError as exc:
        print(result, report, exc.message)

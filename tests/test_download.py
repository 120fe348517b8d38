"""Downloads and streams through the fake object store: naming, skipping, progress, policy."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import anyio
import pytest

from userplane_async import (
    AsyncUserplane,
    ConfigurationError,
    DestinationError,
    ResourceKind,
    ResourceUnavailableError,
    URLPolicyError,
)
from userplane_async._sinks import BATCH
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio

WS = "ws_dl"
VIDEO = bytes(range(256)) * 4096 * 3  # 3 MiB: several write batches


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(
        WS,
        "rec_1",
        resources={
            "video": FakeResource(VIDEO + b"tail", type="video/mp4"),
            "thumbnail": FakeResource(b"\xff\xd8jpeg", type="image/png"),
            "console-log": FakeResource(captured=False),
        },
    )
    fake_userplane.add_recording(WS, "rec_batch", resources={"video": FakeResource(VIDEO[:BATCH])})
    return fake_userplane


def _leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".part")]


async def test_download_into_a_directory(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A directory destination gets <kind>.<ext> with the extension from the MIME type."""
    result = await client.recordings.download(WS, "rec_1", ResourceKind.VIDEO, tmp_path)
    assert result.path == tmp_path / "video.mp4"
    assert result.path.read_bytes() == VIDEO + b"tail"
    assert result.size == len(VIDEO) + 4
    assert result.sha256 == hashlib.sha256(VIDEO + b"tail").hexdigest()
    assert result.content_type == "video/mp4"
    assert (result.attempts, result.resolutions, result.skipped) == (1, 1, False)
    assert _leftovers(tmp_path) == []


async def test_download_to_a_file_path(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A file destination is used as given; missing parent directories are created."""
    target = tmp_path / "nested" / "deeper" / "thumb.bin"
    result = await client.recordings.download(WS, "rec_1", "thumbnail", target)
    assert result.path == target
    assert target.read_bytes() == b"\xff\xd8jpeg"


async def test_trailing_slash_names_a_new_directory(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A destination ending in a slash is a directory even before it exists."""
    result = await client.recordings.download(WS, "rec_1", "thumbnail", f"{tmp_path}/new/")
    assert result.path == tmp_path / "new" / "thumbnail.png"


@pytest.mark.parametrize(
    ("mime", "name"),
    [
        ("video/webm", "video.webm"),
        ("video/mp4", "video.mp4"),
        ("image/jpeg", "video.jpg"),
        ("image/webp", "video.webp"),
        ("application/json; charset=utf-8", "video.json"),
        ("application/x-ndjson", "video.ndjson"),
        ("application/octet-stream", "video.bin"),
    ],
)
async def test_extension_follows_the_mime_type(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, mime: str, name: str
) -> None:
    """The file extension comes from the API's MIME type, not a fixed .webm."""
    fake.add_recording(WS, "rec_mime", resources={"video": FakeResource(b"x", type=mime)})
    result = await client.recordings.download(WS, "rec_mime", "video", tmp_path)
    assert result.path.name == name


async def test_unavailable_resource_touches_nothing(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """url: null raises ResourceUnavailableError with the API's message and no file or request."""
    with pytest.raises(ResourceUnavailableError) as caught:
        await client.recordings.download(WS, "rec_1", "console-log", tmp_path)
    assert caught.value.capture_enabled is False
    assert caught.value.message
    assert (caught.value.recording_id, caught.value.kind) == ("rec_1", "console-log")
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []
    assert fake.storage_requests() == []


async def test_verified_file_is_kept(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A file already there with the announced size is not fetched or overwritten again."""
    first = await client.recordings.download(WS, "rec_1", "video", tmp_path)
    before = len(fake.storage_requests())
    again = await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert again.skipped
    assert again.sha256 == first.sha256
    assert again.attempts == 0
    assert len(fake.storage_requests()) == before
    forced = await client.recordings.download(WS, "rec_1", "video", tmp_path, overwrite=True)
    assert not forced.skipped
    assert len(fake.storage_requests()) == before + 1


async def test_file_the_sdk_did_not_write_is_replaced_only_when_asked(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A file already at the target that this SDK did not save is kept unless ``overwrite``."""
    await anyio.Path(tmp_path / "video.mp4").write_bytes(b"stale")
    with pytest.raises(DestinationError, match=r"overwrite=True \(--overwrite\)"):
        await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert (tmp_path / "video.mp4").read_bytes() == b"stale"
    assert fake.storage_requests() == []
    result = await client.recordings.download(WS, "rec_1", "video", tmp_path, overwrite=True)
    assert not result.skipped
    assert result.path.read_bytes() == VIDEO + b"tail"


async def test_progress_is_truthful(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """Progress reports never decrease without a restart and end at the full size."""
    reports: list[tuple[int, int | None]] = []
    await client.recordings.download(
        WS, "rec_1", "video", tmp_path, progress=lambda done, total: reports.append((done, total))
    )
    done = [d for d, _ in reports]
    assert done == sorted(done)
    assert reports[-1] == (len(VIDEO) + 4, len(VIDEO) + 4)
    assert len(reports) >= 2


async def test_storage_requests_carry_no_credentials(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """Storage sees no Authorization, no cookies, no HEAD, and asks for identity encoding."""
    await client.recordings.download(WS, "rec_1", "video", tmp_path)
    (request,) = fake.storage_requests()
    assert request.method == "GET"
    assert "authorization" not in request.headers
    assert "cookie" not in request.headers
    assert request.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("recording_id", ["rec_'quote", "rec/slash", "rec+plus", "rec.%2E", "réc"])
async def test_percent_encoded_keys_are_sent_byte_for_byte(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, recording_id: str
) -> None:
    """URLs whose path needs encoding reach the store exactly as issued (the signature holds)."""
    fake.add_recording(WS, recording_id, resources={"action": FakeResource(b"[1]")})
    result = await client.recordings.download(WS, recording_id, "action", tmp_path)
    assert result.path.read_bytes() == b"[1]"
    assert [r.status for r in fake.storage_requests()] == [200]


async def test_stream_passes_bytes_on(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """stream() yields the object's bytes with its type, size and ETag."""
    received = bytearray()
    async with client.recordings.stream(WS, "rec_1", ResourceKind.VIDEO) as body:
        assert body.content_type == "video/mp4"
        assert body.size == len(VIDEO) + 4
        assert body.etag
        async for chunk in body:
            received += chunk
    assert bytes(received) == VIDEO + b"tail"


async def test_stream_from_an_offset(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """An offset asks for a range and yields only the bytes from there."""
    async with client.recordings.stream(WS, "rec_1", "video", offset=1000) as body:
        data = b"".join([chunk async for chunk in body])
    assert data == (VIDEO + b"tail")[1000:]
    assert body.offset == 1000
    assert fake.storage_requests()[-1].headers["range"] == "bytes=1000-"


async def test_stream_closes_on_early_exit(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """Leaving the block after one chunk closes the response; the client stays usable."""
    async with client.recordings.stream(WS, "rec_1", "video") as body:
        async for _ in body:
            break
    async with client.recordings.stream(WS, "rec_1", "thumbnail") as body:
        assert b"".join([chunk async for chunk in body]) == b"\xff\xd8jpeg"


@pytest.mark.parametrize("offset", [-1, 1.5, True, "0"])
async def test_stream_offset_must_be_an_int(client: AsyncUserplane, offset: object) -> None:
    """A nonsensical offset is refused before any call."""
    with pytest.raises(ConfigurationError):
        client.recordings.stream(WS, "rec_1", "video", offset=offset)  # type: ignore[arg-type]
    assert client.api_calls == 0


async def test_unavailable_stream_raises(client: AsyncUserplane, fake: FakeUserplane) -> None:
    """Streaming an uncaptured resource raises ResourceUnavailableError and sends nothing."""
    with pytest.raises(ResourceUnavailableError):
        async with client.recordings.stream(WS, "rec_1", "console-log"):
            pytest.fail("must not be reached")
    assert fake.storage_requests() == []


@pytest.mark.parametrize(
    "rec",
    [
        # Exactly one batch: the write starts with the last chunk, and the task goes straight
        # on to wait for it, so the cancel surely lands on that wait.
        pytest.param("rec_batch", id="cancelled-awaiting-the-write"),
        # Three batches: the cancel lands on the wait or on the network read beside it.
        pytest.param("rec_1", id="cancelled-while-the-write-runs"),
    ],
)
async def test_plain_task_cancel_waits_for_the_write_thread(
    client: AsyncUserplane,
    fake: FakeUserplane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rec: str,
) -> None:
    """A native task.cancel() mid-write removes the temp file only once the thread's write is done."""
    writing, finish = threading.Event(), threading.Event()
    events: list[str] = []
    real_writev, real_unlink = os.writev, os.unlink

    def slow_writev(fd: int, buffers: list[memoryview]) -> int:
        events.append("write")
        writing.set()
        finish.wait(5)
        written = real_writev(fd, buffers)
        events.append("written" if os.fstat(fd).st_nlink else "written to a removed file")
        return written

    def unlink(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if str(path).endswith(".part"):
            events.append("unlink")
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "writev", slow_writev)
    monkeypatch.setattr(os, "unlink", unlink)
    task = asyncio.ensure_future(client.recordings.download(WS, rec, "video", tmp_path))
    await anyio.to_thread.run_sync(writing.wait, 5)
    task.cancel()
    for _ in range(20):  # let the cancellation reach the sink: it must keep waiting
        await asyncio.sleep(0)
    assert not task.done()
    assert events == ["write"]  # the file is still there while the thread writes to it
    finish.set()
    with anyio.fail_after(5), pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["write", "written", "unlink"]
    assert _leftovers(tmp_path) == []
    assert os.listdir(tmp_path) == []  # no final file either


async def test_download_inside_a_stream_with_one_slot(fake: FakeUserplane, tmp_path: Path) -> None:
    """A task streaming one resource may download another even at concurrency=1."""
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url, concurrency=1) as client:
        with anyio.fail_after(5):
            async with client.recordings.stream(WS, "rec_1", "thumbnail") as body:
                result = await client.recordings.download(WS, "rec_1", "video", tmp_path)
                assert b"".join([chunk async for chunk in body]) == b"\xff\xd8jpeg"
    assert result.path.read_bytes() == VIDEO + b"tail"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1/a b?x=1", "http://127.0.0.1:1/a\x00?x=1", "http://127.0.0.1:1/\r\nX: y"],
)
async def test_urls_with_unsendable_characters_are_refused(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, url: str
) -> None:
    """A URL that could not go on the wire byte for byte is refused before connecting."""
    resource = {"url": url, "type": "video/webm", "size": 1, "captureEnabled": True}
    body = {"message": "ok", "data": {"recordingId": "rec_1", "resource": resource}}
    fake.script("recordings.resource", status=200, body=body)
    with pytest.raises(URLPolicyError):
        await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert fake.storage_requests() == []

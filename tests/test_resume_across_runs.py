"""A download killed mid-way resumes on the next run (issue 8 defect 6, fault matrix #40):
the partial file and its checkpoint survive the process; the next download of the same
resource asks only for the missing bytes, with a fresh URL, ``Range`` and ``If-Match``. A
checkpoint that does not match, a changed object or a partial too old restarts from byte 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.test_download_disk import DOWNLOAD_CHILD
from userplane_async import AsyncUserplane
from userplane_async.testing import FakeResource, FakeUserplane, RequestRecord, StallAfter

pytestmark = pytest.mark.anyio

WS = "ws_resume"
REC = "rec_long"
MIB = 1024 * 1024
VIDEO = hashlib.shake_256(b"a long recording").digest(20 * MIB)
CHECKPOINT = 8 * MIB  # what the SDK makes durable between two checkpoints


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(
        WS, REC, resources={"video": FakeResource(VIDEO, type="video/webm")}
    )
    return fake_userplane


def partials(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.endswith(".part"))


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def sidecar(partial: Path) -> dict[str, object]:
    data = json.loads(partial.with_name(partial.name + ".json").read_bytes())
    assert isinstance(data, dict)
    return data


def resumed_from(request: RequestRecord) -> int:
    """Where a storage request started (0 without a Range)."""
    header = request.headers.get("range", "bytes=0-")
    return int(header.removeprefix("bytes=").split("-")[0])


async def kill_mid_download(fake: FakeUserplane, dest: Path, at: int = 10 * MIB) -> Path:
    """Run a download in a subprocess, stall the body at ``at`` bytes, and SIGKILL it once a
    checkpoint must be on disk; returns the partial file it left."""
    fake.script_storage(StallAfter(at), recording_id=REC)
    command = [
        sys.executable,
        "-c",
        DOWNLOAD_CHILD,
        fake.base_url,
        fake.api_key,
        WS,
        REC,
        f"{dest}/",
    ]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(30):
            while int((await lines.receive_until(b"\n", 1000)).split()[1]) <= CHECKPOINT:
                pass  # progress is reported once a batch is written, after its checkpoint
        process.kill()
        with anyio.fail_after(5):
            await process.wait()
    [partial] = partials(dest)
    return partial


async def download(fake: FakeUserplane, dest: Path) -> tuple[str, list[RequestRecord]]:
    """A fresh process's download; its sha256 and the storage requests it sent."""
    before = len(fake.storage_requests())
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url) as client:
        with anyio.fail_after(30):
            result = await client.recordings.download(WS, REC, "video", dest)
    assert result.path.read_bytes() == VIDEO
    return result.sha256, fake.storage_requests()[before:]


async def test_a_killed_download_resumes_where_its_checkpoint_left_it(
    fake: FakeUserplane, tmp_path: Path
) -> None:
    """After SIGKILL at 10 MiB, the next run fetches only the bytes after the checkpoint,
    with If-Match, and the file's sha256 is the object's."""
    partial = await kill_mid_download(fake, tmp_path)
    checkpoint = sidecar(partial)
    durable = checkpoint["durable"]
    assert isinstance(durable, int)
    assert CHECKPOINT <= durable <= partial.stat().st_size
    assert (checkpoint["resource"], checkpoint["size"]) == (f"{WS}/{REC}/video", len(VIDEO))
    assert not (tmp_path / "video.webm").exists()
    sha256, requests = await download(fake, tmp_path)
    assert sha256 == hashlib.sha256(VIDEO).hexdigest()
    [request] = requests
    assert (request.status, resumed_from(request)) == (206, durable)
    assert request.headers["if-match"] == checkpoint["etag"]
    # Only the missing bytes crossed the wire, from a URL the killed run never saw.
    assert len(VIDEO) - resumed_from(request) == len(VIDEO) - durable
    assert request.query not in {r.query for r in fake.storage_requests()[:-1]}
    assert partials(tmp_path) == []
    assert names(tmp_path) == ["video.webm"]


async def test_bytes_past_the_checkpoint_are_not_trusted(
    fake: FakeUserplane, tmp_path: Path
) -> None:
    """What lies after the durable length (garbage after a power loss) is cut off first."""
    partial = await kill_mid_download(fake, tmp_path)
    durable = sidecar(partial)["durable"]
    with partial.open("r+b") as file:
        file.seek(durable)  # type: ignore[arg-type]
        file.write(b"\0" * MIB)  # the tail a crash may leave: sized, but never written
    sha256, [request] = await download(fake, tmp_path)
    assert (sha256, resumed_from(request)) == (hashlib.sha256(VIDEO).hexdigest(), durable)


async def test_a_changed_object_restarts_from_zero(fake: FakeUserplane, tmp_path: Path) -> None:
    """The object replaced since the kill: If-Match fails (412), the file restarts at 0 and
    holds only the new object's bytes."""
    await kill_mid_download(fake, tmp_path)
    new = hashlib.shake_256(b"a new take").digest(len(VIDEO))
    fake.replace_resource(WS, REC, "video", FakeResource(new, type="video/webm"))
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url) as client:
        result = await client.recordings.download(WS, REC, "video", tmp_path)
    assert result.path.read_bytes() == new
    first, second = fake.storage_requests()[-2:]
    assert (first.status, second.status, resumed_from(second)) == (412, 200, 0)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param({"resource": f"{WS}/rec_other/video"}, id="another-resource"),
        pytest.param({"size": len(VIDEO) + 1}, id="another-size"),
        pytest.param({"durable": 30 * MIB}, id="more-than-the-file"),
        pytest.param({"etag": ""}, id="no-etag"),
        pytest.param({"etag": 5}, id="etag-not-a-string"),
        pytest.param({"etag": '"x"\r\nX-Injected: 1'}, id="etag-that-breaks-a-header"),
        pytest.param({"durable": "8388608"}, id="durable-not-an-int"),
        pytest.param(None, id="unreadable"),
    ],
)
async def test_a_checkpoint_that_does_not_match_restarts_from_zero(
    fake: FakeUserplane, tmp_path: Path, spoil: dict[str, object] | None
) -> None:
    """A sidecar for something else, or one that cannot be read, is not resumed: the old
    partial is removed and the download starts at byte 0."""
    partial = await kill_mid_download(fake, tmp_path)
    side = partial.with_name(partial.name + ".json")
    side.write_bytes(b"{torn" if spoil is None else json.dumps(sidecar(partial) | spoil).encode())
    sha256, [request] = await download(fake, tmp_path)
    assert (sha256, resumed_from(request), request.status) == (
        hashlib.sha256(VIDEO).hexdigest(),
        0,
        200,
    )
    assert partials(tmp_path) == []
    assert not side.exists()


async def test_a_partial_older_than_a_week_is_removed(fake: FakeUserplane, tmp_path: Path) -> None:
    """A dead partial last written 8 days ago is removed, not resumed."""
    partial = await kill_mid_download(fake, tmp_path)
    old = time.time() - 8 * 24 * 3600
    os.utime(partial, (old, old))
    _, [request] = await download(fake, tmp_path)
    assert resumed_from(request) == 0
    assert partials(tmp_path) == []


async def test_a_partial_of_a_live_download_is_left_alone(
    fake: FakeUserplane, tmp_path: Path
) -> None:
    """While one download runs, another of the same file neither adopts nor removes its
    partial: each writes its own, and the file ends whole."""
    fake.script_storage(StallAfter(9 * MIB), recording_id=REC)
    stalled: list[Path] = []
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url) as client:
        progressed = anyio.Event()

        def progress(done: int, total: int | None) -> None:
            if done > CHECKPOINT:
                progressed.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                lambda: client.recordings.download(WS, REC, "video", tmp_path, progress=progress)
            )
            with anyio.fail_after(20):
                await progressed.wait()
            stalled.extend(partials(tmp_path))
            result = await client.recordings.download(WS, REC, "video", tmp_path, overwrite=True)
            assert stalled[0].exists()  # still the first download's
            tasks.cancel_scope.cancel()
    assert result.path.read_bytes() == VIDEO
    assert resumed_from(fake.storage_requests()[-1]) == 0
    assert partials(tmp_path) == []

"""The local side of a download: full disks, unwritable destinations, symlinks, a killed process.

Fault matrix #29 (symlinks), #30 (disk full), #31 (read-only destination) and #40 (SIGKILL).
A file appears whole and verified or not at all, and nothing is written outside DEST. Root
writes into any directory whatever its mode, so the read-only case runs its download in a
child process that drops to an unprivileged uid first.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from userplane_async import AsyncUserplane, DestinationError, DownloadResult
from userplane_async.testing import FakeResource, FakeUserplane, Trickle

pytestmark = pytest.mark.anyio

WS = "ws_disk"
REC_BIG = "rec_big"
REC_SMALL = "rec_small"
MIB = 1024 * 1024
BIG = hashlib.shake_256(b"fills the disk").digest(1_600_000)  # two write batches
SMALL = hashlib.shake_256(b"fits in one batch").digest(300_000)


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    fake_userplane.add_recording(WS, REC_BIG, resources={"video": FakeResource(BIG)})
    fake_userplane.add_recording(WS, REC_SMALL, resources={"video": FakeResource(SMALL)})
    return fake_userplane


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def child_command(fake: FakeUserplane, script: str, *args: object) -> list[str]:
    """``python -c script`` with the fake's URL and key, then ``args``."""
    return [sys.executable, "-c", script, fake.base_url, fake.api_key, *map(str, args)]


# --- #30: a full disk ------------------------------------------------------------------------

FILE_SIZE_LIMIT_CHILD = """
import json, resource, signal, sys
import anyio
from userplane_async import AsyncUserplane, DownloadError, RetryPolicy

async def main() -> None:
    base_url, api_key, ws, rec, dest, limit = sys.argv[1:7]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    async with AsyncUserplane(api_key, base_url=base_url, retry=RetryPolicy.no_wait()) as client:
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
        try:
            result = await client.recordings.download(ws, rec, "video", dest)
        except DownloadError as exc:
            report = {"error": type(exc).__name__, "errno": getattr(exc, "errno", None)}
        else:
            report = {"size": result.size}
    print(json.dumps(report), flush=True)

anyio.run(main)
"""


@pytest.mark.parametrize(
    ("rec", "limit"),
    [
        pytest.param(REC_BIG, 256 * 1024, id="full-within-the-first-batch"),
        pytest.param(REC_BIG, MIB + 256 * 1024, id="full-within-the-last-write"),
        pytest.param(REC_SMALL, 100_000, id="full-within-a-single-write"),
    ],
)
async def test_full_disk_is_a_destination_error(
    fake: FakeUserplane, tmp_path: Path, rec: str, limit: int
) -> None:
    """A file-size limit hit mid-download (EFBIG) is a DestinationError with no file left (#30)."""
    dest = tmp_path / "dest"
    command = child_command(fake, FILE_SIZE_LIMIT_CHILD, WS, rec, f"{dest}/", limit)
    with anyio.fail_after(20):
        done = await anyio.run_process(command)
    report = json.loads(done.stdout.decode().splitlines()[-1])
    on_disk = {p.name: p.stat().st_size for p in dest.iterdir()}
    assert (report, on_disk) == ({"error": "DestinationError", "errno": errno.EFBIG}, {})


@pytest.mark.parametrize("fail", ["write", "short-write", "fsync", "close"])
@pytest.mark.parametrize("rec", [REC_BIG, REC_SMALL])
async def test_disk_full_at_each_file_operation(
    client: AsyncUserplane,
    fake: FakeUserplane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fail: str,
    rec: str,
) -> None:
    """ENOSPC from write, fsync or close, or a short write, never leaves a short file (#30)."""
    real_open, real_close = os.open, os.close
    temp_fds: set[int] = set()

    def opening(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_EXCL:  # the temp file
            temp_fds.add(fd)
        return fd

    def closing(fd: int) -> None:
        real_close(fd)  # like close(2): the file is closed even when it reports an error
        if fail == "close" and fd in temp_fds:
            temp_fds.discard(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "close", closing)
    real_writev = os.writev

    def writev(fd: int, buffers: list[memoryview]) -> int:  # the sink writes batches with writev
        if fail == "write":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = b"".join(bytes(buffer) for buffer in buffers)
        if fail == "short-write" and len(data) > 1:
            return os.write(fd, data[: len(data) // 2])  # as write(2) does near the end
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    if fail == "fsync":

        def no_space(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", no_space)
    result: DownloadResult | DestinationError
    try:
        with anyio.fail_after(10):
            result = await client.recordings.download(WS, rec, "video", tmp_path)
    except DestinationError as exc:
        result = exc
    monkeypatch.undo()
    assert temp_files(tmp_path) == []
    if isinstance(result, DestinationError):
        assert result.errno == errno.ENOSPC
        assert names(tmp_path) == []
    else:  # only a write that merely fell short may still end in a whole file
        assert fail == "short-write"
        assert result.path.read_bytes() == (BIG if rec == REC_BIG else SMALL)


# --- #31: destinations that cannot be written ------------------------------------------------


@pytest.mark.parametrize(
    "dest",
    [
        pytest.param("{blocker}/", id="dir-is-a-file"),
        pytest.param("{blocker}/sub/", id="parent-is-a-file"),
        pytest.param("{blocker}/video.webm", id="file-under-a-file"),
        pytest.param("/proc/self/", id="proc-dir-root-cannot-write"),
        pytest.param("/proc/self/new/", id="proc-subdir-root-cannot-create"),
    ],
)
async def test_unwritable_destination_fails_before_any_transfer(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, dest: str
) -> None:
    """A destination that cannot hold a file is a DestinationError before any storage request (#31)."""
    blocker = tmp_path / "file.txt"
    blocker.write_bytes(b"a regular file")
    with anyio.fail_after(5), pytest.raises(DestinationError) as caught:
        await client.recordings.download(WS, REC_SMALL, "video", dest.format(blocker=blocker))
    assert caught.value.errno is not None
    assert fake.storage_requests() == []
    assert blocker.read_bytes() == b"a regular file"
    assert names(tmp_path) == ["file.txt"]


UNPRIVILEGED_CHILD = """
import concurrent.futures.thread  # loaded lazily by run_in_executor, past the drop
import json, os, sys
import anyio
from userplane_async import AsyncUserplane, DownloadError, RetryPolicy

async def main() -> None:
    base_url, api_key, ws, rec, dest, uid = sys.argv[1:7]
    # Root writes whatever the modes say: drop it now that the event loop and every module are
    # loaded (the interpreter lives where the unprivileged user may not read).
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(int(uid))
        os.setuid(int(uid))
    async with AsyncUserplane(api_key, base_url=base_url, retry=RetryPolicy.no_wait()) as client:
        try:
            result = await client.recordings.download(ws, rec, "video", dest)
        except DownloadError as exc:
            report = {"error": type(exc).__name__, "errno": getattr(exc, "errno", None)}
        else:
            report = {"size": result.size}
    print(json.dumps({**report, "euid": os.geteuid()}), flush=True)

anyio.run(main)
"""
NOBODY = 65534


@pytest.fixture
def unprivileged_dir() -> Iterator[tuple[Path, int]]:
    """A directory the unprivileged child can reach, and the uid it runs as (nobody for root).

    pytest's tmp_path lies under a root-only directory, so this one is made beside it.
    """
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    with tempfile.TemporaryDirectory(prefix="userplane-unprivileged-") as base:
        Path(base).chmod(0o755)
        yield Path(base), uid


async def download_unprivileged(fake: FakeUserplane, dest: Path, uid: int) -> dict[str, Any]:
    """Download REC_SMALL into ``dest`` from a child process running as ``uid``; its report."""
    command = child_command(fake, UNPRIVILEGED_CHILD, WS, REC_SMALL, dest, uid)
    with anyio.fail_after(20):
        done = await anyio.run_process(command)
    report: dict[str, Any] = json.loads(done.stdout.decode().splitlines()[-1])
    assert report.pop("euid") == uid
    return report


def owned_directory(path: Path, uid: int, mode: int) -> Path:
    path.mkdir()
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    path.chmod(mode)
    return path


async def test_read_only_directory_fails_before_any_transfer(
    fake: FakeUserplane, unprivileged_dir: tuple[Path, int]
) -> None:
    """A chmod 500 destination directory is a DestinationError before any storage request (#31)."""
    base, uid = unprivileged_dir
    dest = owned_directory(base / "ro", uid, 0o500)  # its owner may list it, not write it
    report = await download_unprivileged(fake, dest, uid)
    assert report == {"error": "DestinationError", "errno": errno.EACCES}
    assert fake.storage_requests() == []
    assert names(dest) == []
    assert names(base) == ["ro"]


async def test_the_unprivileged_child_saves_where_it_may_write(
    fake: FakeUserplane, unprivileged_dir: tuple[Path, int]
) -> None:
    """The control: the same child, given a chmod 700 directory, downloads the file."""
    base, uid = unprivileged_dir
    dest = owned_directory(base / "rw", uid, 0o700)
    assert await download_unprivileged(fake, dest, uid) == {"size": len(SMALL)}
    assert (dest / "video.webm").read_bytes() == SMALL
    assert len(fake.storage_requests()) == 1


# --- #29: symlinks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(b"someone else's file", id="to-a-file"),
        pytest.param(b"x" * len(SMALL), id="to-a-file-of-the-same-size"),
        pytest.param(None, id="dangling"),
    ],
)
async def test_symlink_at_the_final_path_is_kept_or_replaced_never_followed(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, target: bytes | None
) -> None:
    """A symlink at the final path is somebody else's: kept (DestinationError) unless
    ``overwrite``, which replaces the link itself; its target is never touched (#29)."""
    canary = tmp_path / "canary"
    canary.mkdir()
    outside = canary / "target.bin"
    if target is not None:
        outside.write_bytes(target)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "video.webm").symlink_to(outside)
    with anyio.fail_after(5), pytest.raises(DestinationError, match="overwrite"):
        await client.recordings.download(WS, REC_SMALL, "video", dest)
    assert (dest / "video.webm").readlink() == outside
    assert fake.storage_requests() == []
    with anyio.fail_after(5):
        result = await client.recordings.download(WS, REC_SMALL, "video", dest, overwrite=True)
    assert result.path == dest / "video.webm"
    assert not result.path.is_symlink()
    assert result.path.read_bytes() == SMALL
    assert result.sha256 == hashlib.sha256(SMALL).hexdigest()
    if target is None:
        assert names(canary) == []
    else:
        assert names(canary) == ["target.bin"]
        assert outside.read_bytes() == target
    assert temp_files(tmp_path) == []


# --- #40: a process killed mid-download ------------------------------------------------------

DOWNLOAD_CHILD = """
import sys
from io import FileIO
import anyio
from userplane_async import AsyncUserplane, RetryPolicy

async def main() -> None:
    base_url, api_key, ws, rec, dest = sys.argv[1:6]

    def progress(done: int, total: int | None) -> None:
        print(f"progress {done}", flush=True)

    async with AsyncUserplane(api_key, base_url=base_url, retry=RetryPolicy.no_wait()) as client:
        result = await client.recordings.download(ws, rec, "video", dest, progress=progress)
    print(f"done {result.size} {result.sha256}", flush=True)

anyio.run(main)
"""


@pytest.mark.slow
async def test_killed_mid_download_leaves_no_final_file(
    fake: FakeUserplane, tmp_path: Path
) -> None:
    """SIGKILL mid-body leaves no final file, and a fresh process then completes it (#40)."""
    dest = tmp_path / "dest"
    # Two 512 KiB pieces a quarter second apart: the kill comes after the first MiB reached disk.
    fake.script_storage(Trickle(bytes_per_second=2 * MIB, chunk=MIB // 2), recording_id=REC_BIG)
    command = child_command(fake, DOWNLOAD_CHILD, WS, REC_BIG, f"{dest}/")
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(20):
            line = await lines.receive_until(b"\n", 1000)
        assert line.startswith(b"progress ")
        assert int(line.split()[1]) >= MIB
        process.kill()
        with anyio.fail_after(5):
            await process.wait()
    assert not (dest / "video.webm").exists()
    [left] = temp_files(dest)  # what the killed run left: at most a prefix of the object
    assert BIG.startswith(left.read_bytes())
    with anyio.fail_after(20):
        done = await anyio.run_process(command)
    last = done.stdout.decode().splitlines()[-1].split()
    assert last == ["done", str(len(BIG)), hashlib.sha256(BIG).hexdigest()]
    assert (dest / "video.webm").read_bytes() == BIG


async def test_next_run_cleans_up_stale_temp_files(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A temp file left by a killed run is gone after the next download of that file (#40)."""
    stale = tmp_path / ".video.webm.k1ll3d.part"
    stale.write_bytes(SMALL[:1000])
    with anyio.fail_after(5):
        result = await client.recordings.download(WS, REC_SMALL, "video", tmp_path)
    assert result.path.read_bytes() == SMALL
    assert temp_files(tmp_path) == []


async def test_destination_error_names_the_recording(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A DestinationError says which recording and kind it was saving, like every DownloadError."""
    blocker = tmp_path / "file.txt"
    blocker.write_bytes(b"a regular file")
    with anyio.fail_after(5), pytest.raises(DestinationError) as caught:
        await client.recordings.download(WS, REC_SMALL, "video", f"{blocker}/")
    assert (caught.value.recording_id, caught.value.kind) == (REC_SMALL, "video")

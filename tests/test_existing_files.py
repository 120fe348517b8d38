"""What a download or an archive does with a file already at its target (issue 8, defects 1,
2, 4 and 5): nothing the SDK did not write and check is trusted, kept as ours, or replaced
unasked; files get the umask's permissions; a run that can do nothing creates nothing.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from userplane_async import (
    AsyncUserplane,
    AuthenticationError,
    DestinationError,
    NotFoundError,
    RetryPolicy,
    verify_archive,
)
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio

WS = "ws_files"
VIDEO = hashlib.shake_256(b"the real video").digest(200_000)
OTHER = hashlib.shake_256(b"another recording's video").digest(200_000)


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    for recording_id, data in (("rec_1", VIDEO), ("rec_2", OTHER)):
        fake_userplane.add_recording(
            WS, recording_id, resources={"video": FakeResource(data, type="video/webm")}
        )
    return fake_userplane


def storage_gets(fake: FakeUserplane) -> int:
    return len(fake.storage_requests())


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.endswith((".part", ".json.tmp"))]


# --- defect 1: download() never replaces a file it did not write -----------------------------


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param(b"short", id="other-size"),
        pytest.param(bytes(len(VIDEO)), id="same-size-other-bytes"),
        pytest.param(VIDEO, id="same-bytes-not-saved-by-us"),
    ],
)
async def test_download_keeps_a_file_it_did_not_write(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, planted: bytes
) -> None:
    """Whatever its size or bytes, a file the SDK did not save is kept, with a clear error
    naming ``overwrite``; no storage request is spent on it."""
    target = tmp_path / "video.webm"
    target.write_bytes(planted)
    with pytest.raises(DestinationError, match=r"exists.*overwrite=True \(--overwrite\)"):
        await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert target.read_bytes() == planted
    assert storage_gets(fake) == 0
    assert leftovers(tmp_path) == []


async def test_overwrite_replaces_a_foreign_file_only_with_a_verified_one(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """``overwrite=True`` replaces the file in one rename, after the new one is whole."""
    target = tmp_path / "video.webm"
    target.write_bytes(b"mine")
    inode = target.stat().st_ino
    result = await client.recordings.download(WS, "rec_1", "video", tmp_path, overwrite=True)
    assert target.read_bytes() == VIDEO
    assert target.stat().st_ino != inode  # a new file took the name; the old one was not edited
    assert (result.skipped, result.sha256) == (False, hashlib.sha256(VIDEO).hexdigest())


async def test_our_own_unchanged_result_is_kept_without_a_fetch(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """The SDK's earlier download of the same resource, unchanged, is ``skipped``."""
    first = await client.recordings.download(WS, "rec_1", "video", tmp_path)
    gets = storage_gets(fake)
    again = await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert (again.skipped, again.sha256, again.path) == (True, first.sha256, first.path)
    assert storage_gets(fake) == gets


async def test_our_file_edited_since_is_no_longer_ours(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """Bytes changed after the SDK saved them (same size) make the file somebody else's."""
    result = await client.recordings.download(WS, "rec_1", "video", tmp_path)
    with result.path.open("r+b") as file:
        file.write(b"edited")
    edited = result.path.read_bytes()
    with pytest.raises(DestinationError, match="overwrite"):
        await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert result.path.read_bytes() == edited


async def test_our_file_of_another_recording_is_not_taken_for_this_one(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """``rec_2``'s video at the path ``rec_1``'s would take is kept, not skipped as done."""
    await client.recordings.download(WS, "rec_2", "video", tmp_path)
    with pytest.raises(DestinationError, match="overwrite"):
        await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert (tmp_path / "video.webm").read_bytes() == OTHER


async def test_our_own_result_of_an_object_that_changed_is_updated(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """Our unchanged file of this resource, of another size than announced now, is replaced."""
    await client.recordings.download(WS, "rec_1", "video", tmp_path)
    fake.replace_resource(WS, "rec_1", "video", FakeResource(VIDEO + b"more", type="video/webm"))
    result = await client.recordings.download(WS, "rec_1", "video", tmp_path)
    assert (result.skipped, result.path.read_bytes()) == (False, VIDEO + b"more")


# --- defect 2: the archiver never adopts a file it did not write ---------------------------------


async def test_archive_replaces_a_same_size_file_it_did_not_write(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A same-size file of other bytes at an item's path, with no manifest line, is fetched
    anew and replaced after its own checks; ``verify`` then agrees with the real bytes."""
    dest = tmp_path / "dest"
    planted = dest / WS / "rec_1" / "video.webm"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(bytes(len(VIDEO)))
    report = await client.archive(WS, dest, kinds=["video"], recording_ids=["rec_1"])
    assert report.counts == {"downloaded": 1}
    assert planted.read_bytes() == VIDEO
    verified = await verify_archive(dest)
    assert (verified.ok, verified.checked) == (True, 1)


async def test_archive_keeps_its_own_verified_file_when_the_manifest_line_is_missing(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """A crash between the rename and the manifest line: the file is the SDK's own, checked,
    so the re-run records it as ``skipped`` without fetching it again."""
    dest = tmp_path / "dest"
    await client.recordings.download(WS, "rec_1", "video", f"{dest}/{WS}/rec_1/")
    gets = storage_gets(fake)
    report = await client.archive(WS, dest, kinds=["video"], recording_ids=["rec_1"])
    assert report.counts == {"skipped": 1}
    assert storage_gets(fake) == gets
    assert (await verify_archive(dest)).ok


# --- defect 4: the umask decides permissions -----------------------------------------------------


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=["022", "077", "002"])
async def test_files_and_directories_follow_the_umask(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, mask: int
) -> None:
    """Saved files, the metadata, the manifest and new directories get 0666/0777 & ~umask,
    as ``open()`` and ``mkdir`` would give them."""
    os.umask(mask)
    dest = tmp_path / "dest"
    await client.archive(WS, dest, kinds=["video"], recording_ids=["rec_1"])
    single = await client.recordings.download(WS, "rec_2", "video", f"{tmp_path}/one/")
    files = [
        dest / WS / "rec_1" / "video.webm",
        dest / WS / "rec_1" / "recording.json",
        dest / "manifest.jsonl",
        single.path,
    ]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path
    for path in (dest / WS, dest / WS / "rec_1", tmp_path / "one"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~mask, path


# --- defect 5: a run that can do nothing creates nothing ---------------------------------------


async def test_refused_key_with_recording_ids_creates_nothing(
    fake: FakeUserplane, tmp_path: Path
) -> None:
    """A refused key fails every given recording at once: the run raises and leaves no DEST."""
    dest = tmp_path / "new" / "dest"
    async with AsyncUserplane(
        "uspl_" + "x" * 32, base_url=fake.base_url, retry=RetryPolicy.no_wait()
    ) as client:
        with pytest.raises(AuthenticationError):
            await client.archive(WS, dest, recording_ids=["rec_1", "rec_2"])
    assert names(tmp_path) == []


async def test_unknown_workspace_creates_nothing(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """An archive of a workspace that does not exist raises; DEST is not created."""
    with pytest.raises(NotFoundError):
        await client.archive("ws_nope", tmp_path / "dest")
    assert names(tmp_path) == []


async def test_a_fatal_run_leaves_an_existing_archive_as_it_was(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """Into an existing archive, a fatal run removes nothing that was there before."""
    dest = tmp_path / "dest"
    await client.archive(WS, dest, kinds=["video"], recording_ids=["rec_1"])
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    with pytest.raises(NotFoundError):
        await client.archive("ws_nope", dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before


async def test_an_unwritable_destination_fails_before_any_call(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path
) -> None:
    """DEST under a regular file is a DestinationError before a single API call."""
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with anyio.fail_after(5), pytest.raises(DestinationError):
        await client.archive(WS, blocker / "dest")
    assert fake.api_requests() == []
    assert names(tmp_path) == ["file"]

"""Symbolic links planted inside an archive are never followed out of it (issue 8 defect 3,
fault matrix #29): a link at DEST/<ws> or DEST/<ws>/<rec> fails that item with a clear error
and writes nothing; a link at a file's own name is replaced, never written through. A canary
directory outside DEST, which every link points into, stays byte for byte as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from userplane_async import AsyncUserplane, DestinationError, verify_archive
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio

WS = "ws_links"
VIDEOS = {"rec_1": b"first video " * 1000, "rec_2": b"second video " * 1000}
Tree = dict[str, tuple[int, bytes | None]]


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_workspace(WS)
    for recording_id, data in VIDEOS.items():
        fake_userplane.add_recording(
            WS, recording_id, resources={"video": FakeResource(data, type="video/webm")}
        )
    return fake_userplane


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A directory outside DEST with a file and a subdirectory, for links to point into."""
    canary = tmp_path / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / "video.webm").write_bytes(b"canary video")
    (canary / "recording.json").write_bytes(b"canary metadata")
    (canary / "manifest.jsonl").write_bytes(b"")
    return canary


def tree(root: Path) -> Tree:
    """Every entry under ``root``: its mode and, for files, its bytes."""
    return {
        p.relative_to(root).as_posix(): (
            p.lstat().st_mode,
            p.read_bytes() if p.is_file() and not p.is_symlink() else None,
        )
        for p in sorted(root.rglob("*"))
    }


async def archive(client: AsyncUserplane, dest: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """Archive the videos; each item's status and error type, from the report."""
    report = await client.archive(WS, dest, kinds=["video"], recording_ids=list(VIDEOS))
    failed = {(e.recording_id, e.kind): (e.status, e.error_type or "") for e in report.items}
    assert report.counts.get("downloaded", 0) + len(failed) == len(VIDEOS)
    return failed


@pytest.mark.parametrize("level", ["workspace", "recording"])
async def test_a_linked_directory_fails_its_items_and_writes_nothing(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, canary: Path, level: str
) -> None:
    """DEST/<ws> or DEST/<ws>/rec_1 as a link to the canary: its items fail, saying it is a
    link, the canary is untouched, and the other recording still lands (one level down)."""
    dest = tmp_path / "dest"
    link = dest / WS if level == "workspace" else dest / WS / "rec_1"
    link.parent.mkdir(parents=True)
    link.symlink_to(canary, target_is_directory=True)
    before = tree(canary)
    failed = await archive(client, dest)
    expected = ["rec_1", "rec_2"] if level == "workspace" else ["rec_1"]
    assert failed == {(rec, "video"): ("failed", "DestinationError") for rec in expected}
    lines = (dest / "manifest.jsonl").read_text()
    assert "is a symbolic link" in lines
    assert str(canary) not in lines  # the link's target is not named
    assert tree(canary) == before
    assert link.is_symlink()
    if level == "recording":
        assert (dest / WS / "rec_2" / "video.webm").read_bytes() == VIDEOS["rec_2"]


@pytest.mark.parametrize("name", ["video.webm", "recording.json"])
async def test_a_link_at_a_files_name_is_replaced_not_written_through(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, canary: Path, name: str
) -> None:
    """A link where a file of the archive goes is swapped for the file itself."""
    dest = tmp_path / "dest"
    (dest / WS / "rec_1").mkdir(parents=True)
    (dest / WS / "rec_1" / name).symlink_to(canary / name)
    before = tree(canary)
    assert await archive(client, dest) == {}
    saved = dest / WS / "rec_1" / name
    assert not saved.is_symlink()
    assert tree(canary) == before
    if name == "video.webm":
        assert saved.read_bytes() == VIDEOS["rec_1"]
    assert (await verify_archive(dest)).ok


async def test_a_linked_manifest_is_refused_before_any_call(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, canary: Path
) -> None:
    """DEST/manifest.jsonl as a link is neither read nor appended to: DestinationError first."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "manifest.jsonl").symlink_to(canary / "manifest.jsonl")
    before = tree(canary)
    with pytest.raises(DestinationError):
        await client.archive(WS, dest, kinds=["video"])
    assert fake.api_requests() == []
    assert tree(canary) == before


@pytest.mark.parametrize("level", ["recording", "file"])
async def test_verify_does_not_follow_a_link_planted_after_the_run(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, canary: Path, level: str
) -> None:
    """A saved file (or its directory) swapped for a link to identical bytes is ``missing``."""
    dest = tmp_path / "dest"
    await archive(client, dest)
    saved = dest / WS / "rec_1" / "video.webm"
    (canary / "sub" / "video.webm").write_bytes(saved.read_bytes())
    if level == "file":
        saved.unlink()
        saved.symlink_to(canary / "sub" / "video.webm")
    else:
        os.rename(saved.parent, tmp_path / "moved")
        saved.parent.symlink_to(canary / "sub", target_is_directory=True)
    report = await verify_archive(dest)
    assert [(e.recording_id, e.kind) for e in report.missing] == [("rec_1", "video")]
    rerun = await client.archive(WS, dest, kinds=["video"], recording_ids=list(VIDEOS))
    # A link at the file's name is replaced; a linked directory fails its item, as in a run.
    redone = "downloaded" if level == "file" else "failed"
    assert rerun.counts == {redone: 1, "skipped": 1}
    assert tree(canary)["sub/video.webm"][1] == VIDEOS["rec_1"]


async def test_download_into_a_linked_directory_the_user_named_follows_it(
    client: AsyncUserplane, fake: FakeUserplane, tmp_path: Path, canary: Path
) -> None:
    """The destination a user names is theirs: a link there is followed, like any path."""
    link = tmp_path / "out"
    link.symlink_to(canary / "sub", target_is_directory=True)
    result = await client.recordings.download(WS, "rec_1", "video", link)
    assert (canary / "sub" / "video.webm").read_bytes() == VIDEOS["rec_1"]
    assert result.path == link / "video.webm"

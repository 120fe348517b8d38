"""Archive edge cases: a budget stop after an earlier run, one bad directory, two workspaces."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from userplane_async import AsyncUserplane, RateLimit, verify_archive
from userplane_async.testing import FakeResource, FakeUserplane

pytestmark = pytest.mark.anyio


def _lines(dest: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (dest / "manifest.jsonl").read_text().splitlines()]


async def test_budget_stop_keeps_what_an_earlier_run_completed(
    fake_userplane: FakeUserplane, tmp_path: Path
) -> None:
    """Running out of budget defers only unfinished items, never ones already complete."""
    async with AsyncUserplane(fake_userplane.api_key, base_url=fake_userplane.base_url) as client:
        first = await client.archive("ws_demo", tmp_path, kinds=["video"])
    assert first.ok
    budget = RateLimit(per_minute=None, per_day=3, max_wait=1.0)
    async with AsyncUserplane(
        fake_userplane.api_key, base_url=fake_userplane.base_url, rate_limit=budget, concurrency=1
    ) as client:
        second = await client.archive("ws_demo", tmp_path)
    assert second.counts.get("deferred")
    deferred_videos = [
        line
        for line in _lines(tmp_path)
        if line["status"] == "deferred" and line["kind"] == "video"
    ]
    assert deferred_videos == []
    async with AsyncUserplane(fake_userplane.api_key, base_url=fake_userplane.base_url) as client:
        calls = client.api_calls
        third = await client.archive("ws_demo", tmp_path, kinds=["video"])
        assert client.api_calls - calls == 1  # the listing only
    assert third.counts == {"skipped": first.counts["downloaded"] + first.counts["unavailable"]}


async def test_a_recording_whose_directory_cannot_exist_fails_alone(
    client: AsyncUserplane, fake_userplane: FakeUserplane, tmp_path: Path
) -> None:
    """A file where a recording's directory belongs fails that recording; the rest go on."""
    (tmp_path / "ws_demo").mkdir()
    (tmp_path / "ws_demo" / "rec_demo_small").write_bytes(b"in the way")
    with anyio.fail_after(20):
        report = await client.archive("ws_demo", tmp_path)
    failed = {(e.recording_id, e.status) for e in report.items}
    assert failed == {("rec_demo_small", "failed")}
    assert report.counts["downloaded"] >= 15
    assert all(line["recordingId"] for line in _lines(tmp_path))


async def test_two_workspaces_share_one_archive(
    fake_userplane: FakeUserplane, client: AsyncUserplane, tmp_path: Path
) -> None:
    """IDs are checked and remembered per workspace: ws_b/Rec1 does not block ws_c/rec1."""
    fake_userplane.add_workspace("ws_b")
    fake_userplane.add_workspace("ws_c")
    fake_userplane.add_recording("ws_b", "Rec1", resources={"video": FakeResource(b"b")})
    fake_userplane.add_recording("ws_c", "rec1", resources={"video": FakeResource(b"c")})
    first = await client.archive("ws_b", tmp_path, kinds=["video"])
    second = await client.archive("ws_c", tmp_path, kinds=["video"])
    assert (first.counts, second.counts) == ({"downloaded": 1}, {"downloaded": 1})
    assert (tmp_path / "ws_c" / "rec1" / "video.webm").read_bytes() == b"c"


async def test_manifest_paths_outside_the_archive_are_not_followed(tmp_path: Path) -> None:
    """verify_archive never hashes a file a manifest line places outside DEST."""
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the archive")
    dest = tmp_path / "dest"
    dest.mkdir()
    line = {
        "workspaceId": "ws",
        "recordingId": "r",
        "kind": "video",
        "status": "downloaded",
        "path": str(outside),
        "size": 23,
        "sha256": "0" * 64,
    }
    (dest / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    report = await verify_archive(dest)
    assert [entry.path for entry in report.missing] == [str(outside)]
    assert report.mismatched == ()

"""``client.archive()``: layout, manifest, metadata, re-runs, hostile and duplicate IDs, events.

Design §4-5 (rules 6 and 8) and fault-matrix rows 9, 28 and 37, each test ending with the
oracles of ``test_archive_support`` (M manifest, H bytes, G leftovers, S secrets).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.test_archive_support import (
    CANARY,
    KINDS,
    WS,
    Archive,
    assert_no_secrets,
    items,
    list_page,
    listed_items,
    log_texts,
    routes,
    storage_keys,
)
from userplane_async import (
    ArchiveEvent,
    ArchiveFinished,
    ArchiveReport,
    ArchiveStarted,
    AsyncUserplane,
    DestinationError,
    DownloadFinished,
    DownloadProgress,
    DownloadRetried,
    DownloadStarted,
    InvalidIDError,
    ItemFailed,
    RecordingQueued,
    RetryPolicy,
    verify_archive,
)
from userplane_async.testing import FakeUserplane, ResetAfter, S3Error

pytestmark = pytest.mark.anyio

DENIED = S3Error(403, "AccessDenied", "Access Denied")
NOT_FOUND_BODY = {"error": "RECORDING_NOT_FOUND", "message": "Recording not found"}


@pytest.fixture
def archive(fake_userplane: FakeUserplane, tmp_path: Path) -> Archive:
    """An empty workspace ``WS`` on the fake, and a destination beside a canary."""
    return Archive(fake_userplane, tmp_path)


async def run(client: AsyncUserplane, archive: Archive, **options: Any) -> ArchiveReport:
    """Archive ``WS`` into the destination, bounded in time."""
    with anyio.fail_after(20):
        return await client.archive(WS, archive.dest, **options)


# --- layout and manifest (design §4) ----------------------------------------------------------


async def test_layout_and_manifest_record_every_outcome(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """One run gives every status its line: downloaded, unavailable, not_found, gone, failed."""
    for recording_id in ("rec_a_missing", "rec_b_full", "rec_c_gone", "rec_e_denied"):
        archive.add(recording_id)
    archive.add("rec_d_partial", uncaptured=("video", "network-log"))
    # One worker takes the recordings in the order seeded (newest first), kinds in order.
    # One 404 is enough: the other kinds of a missing recording cost no further call.
    fake_userplane.script("recordings.resource", status=404, times=1, body=NOT_FOUND_BODY)
    fake_userplane.script_storage(DENIED, recording_id="rec_e_denied", kind="video")

    def on_event(event: ArchiveEvent) -> None:
        if isinstance(event, RecordingQueued) and event.recording_id == "rec_c_gone":
            fake_userplane.delete_recording(WS, "rec_c_gone")  # listed, then deleted

    report = await run(client, archive, concurrency=1, on_event=on_event)

    expected = dict.fromkeys(items(["rec_b_full", "rec_d_partial", "rec_e_denied"]), "downloaded")
    expected |= dict.fromkeys(items(["rec_a_missing"]), "not_found")
    expected |= dict.fromkeys(items(["rec_c_gone"]), "gone")
    expected |= dict.fromkeys(items(["rec_d_partial"], ["video", "network-log"]), "unavailable")
    expected[("rec_e_denied", "video")] = "failed"
    lines = archive.check(expected, report)
    errors = {(line["recordingId"], line["kind"]): line.get("error") for line in lines}
    assert errors[("rec_a_missing", "video")] == "RECORDING_NOT_FOUND"
    assert errors[("rec_c_gone", "action")] == "RECORDING_GONE"
    assert errors[("rec_e_denied", "video")] == "AccessDenied"
    assert errors[("rec_d_partial", "video")] is None
    assert not report.ok
    assert report.bytes == sum(
        len(archive.objects[key]) for key, status in expected.items() if status == "downloaded"
    )
    # Every listed recording that was reached has its metadata; the files are where §4 says.
    for recording_id in archive.seeded:
        assert (archive.dest / WS / recording_id / "recording.json").is_file()
    assert sorted(p.name for p in (archive.dest / WS / "rec_d_partial").iterdir()) == [
        "action.json",
        "console-log.ndjson",
        "recording.json",
        "thumbnail.jpg",
    ]
    assert sorted(p.name for p in (archive.dest / WS / "rec_b_full").iterdir()) == [
        "action.json",
        "console-log.ndjson",
        "network-log.json",
        "recording.json",
        "thumbnail.jpg",
        "video.webm",
    ]


@pytest.mark.parametrize(
    ("kind", "mime", "name"),
    [
        pytest.param("video", "video/mp4", "video.mp4", id="mp4"),
        pytest.param("video", "video/webm", "video.webm", id="webm"),
        pytest.param("thumbnail", "image/png", "thumbnail.png", id="png"),
        pytest.param("thumbnail", "image/jpeg", "thumbnail.jpg", id="jpeg"),
        pytest.param("action", "application/json; charset=utf-8", "action.json", id="json-params"),
        pytest.param("console-log", "application/x-ndjson", "console-log.ndjson", id="ndjson"),
    ],
)
async def test_file_extension_follows_the_mime_type(
    client: AsyncUserplane, archive: Archive, kind: str, mime: str, name: str
) -> None:
    """``<kind>.<ext>`` takes its extension from the resource's MIME type (design §4)."""
    archive.add("rec_typed", types={kind: mime})
    report = await run(client, archive, kinds=[kind])
    [line] = archive.check({("rec_typed", kind): "downloaded"}, report)
    assert line["path"] == f"{WS}/rec_typed/{name}"


async def test_kinds_limit_the_items(client: AsyncUserplane, archive: Archive) -> None:
    """``kinds`` narrows the archive: only those (recording, kind) items get lines and files."""
    archive.add_many(2)
    report = await run(client, archive, kinds=["thumbnail", "action"])
    archive.check(
        dict.fromkeys(items(archive.seeded, ["thumbnail", "action"]), "downloaded"), report
    )
    assert sorted(p.name for p in (archive.dest / WS / "rec_000").iterdir()) == [
        "action.json",
        "recording.json",
        "thumbnail.jpg",
    ]


# --- metadata: recording.json ----------------------------------------------------------------


async def test_listed_metadata_is_saved_without_get_calls(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """List items carry ``meta``: no Get Recording call, and recording.json is the item as sent."""
    archive.add_many(3)
    report = await run(client, archive)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    assert routes(fake_userplane) == ["recordings.list"] + ["recordings.resource"] * 15
    assert report.api_calls == 16
    for item in await listed_items(fake_userplane):
        saved = archive.dest / WS / item["recordingId"] / "recording.json"
        assert json.loads(saved.read_text()) == item


async def test_unknown_keys_of_a_listed_item_are_kept(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Fields this SDK does not know, at any depth of the list item, reach recording.json."""
    archive.add("rec_future")
    [item] = await listed_items(fake_userplane)
    item["recordingFutureField"] = {"nested": [1, 2, {"deep": None}]}
    item["meta"]["somethingNew"] = "kept"
    fake_userplane.script("recordings.list", status=200, body=list_page(WS, [item], 1, 1))
    report = await run(client, archive)
    archive.check(dict.fromkeys(items(["rec_future"]), "downloaded"), report)
    saved = json.loads((archive.dest / WS / "rec_future" / "recording.json").read_text())
    assert saved == item


async def test_items_without_meta_fetch_get_recording(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A list item without ``meta`` costs one Get Recording call, whose object is saved whole."""
    archive.add_many(2)
    listed = await listed_items(fake_userplane)
    bare = [{"recordingId": item["recordingId"]} for item in listed]
    fake_userplane.script("recordings.list", status=200, body=list_page(WS, bare, 1, 1))
    fake_userplane.clear_requests()
    report = await run(client, archive, concurrency=1)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    assert (
        routes(fake_userplane)
        == ["recordings.list"] + (["recordings.get"] + ["recordings.resource"] * 5) * 2
    )
    for item in listed:  # Get Recording returns the same object as the list item
        saved = archive.dest / WS / item["recordingId"] / "recording.json"
        assert json.loads(saved.read_text()) == item


async def test_recording_ids_fetch_and_keep_get_recording(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """With ``recording_ids`` nothing is listed; Get Recording's object is saved, unknown keys kept."""
    archive.add("rec_given")
    [item] = await listed_items(fake_userplane)
    item["notDocumentedYet"] = True
    fake_userplane.script(
        "recordings.get",
        status=200,
        body={"message": "ok", "data": {"workspaceId": WS, "recording": item}},
    )
    fake_userplane.clear_requests()
    report = await run(client, archive, recording_ids=["rec_given"])
    archive.check(dict.fromkeys(items(["rec_given"]), "downloaded"), report)
    assert routes(fake_userplane) == ["recordings.get"] + ["recordings.resource"] * 5
    saved = json.loads((archive.dest / WS / "rec_given" / "recording.json").read_text())
    assert saved == item


# --- re-runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("by_id", [False, True], ids=["listed", "recording-ids"])
async def test_rerun_of_a_complete_archive_spends_only_list_calls(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane, by_id: bool
) -> None:
    """A second run downloads nothing and calls nothing but List Recordings (design §4)."""
    ids = archive.add_many(4)
    archive.add("rec_partial", uncaptured=("video",))
    chosen = [*ids, "rec_partial"] if by_id else None
    first = await run(client, archive, recording_ids=chosen)
    assert first.ok
    before, lines = archive.files(), archive.line_count()
    api, storage = len(fake_userplane.api_requests()), len(fake_userplane.storage_requests())

    second = await run(client, archive, recording_ids=chosen)

    assert routes(fake_userplane, api) == ([] if by_id else ["recordings.list"])
    assert second.api_calls == (0 if by_id else 1)
    assert len(fake_userplane.storage_requests()) == storage
    assert second.counts == {"skipped": 25}
    assert second.bytes == 0
    assert second.ok
    assert archive.line_count() == lines  # nothing new to say
    archive.check_identical(before)
    archive.check_no_leftovers()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param("flip", id="same-size-byte-flipped"),
        pytest.param("truncate", id="truncated"),
        pytest.param("delete", id="deleted"),
    ],
)
async def test_verify_rerun_replaces_a_damaged_file(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane, damage: str
) -> None:
    """``verify=True`` re-hashes every file and fetches again the one that no longer matches."""
    archive.add_many(2)
    await run(client, archive)
    victim = archive.file("rec_001", "network-log")
    data = bytearray(victim.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(bytes(data[:100]))
    else:
        victim.unlink()
    storage, lines = len(fake_userplane.storage_requests()), archive.line_count()

    report = await run(client, archive, verify=True)

    assert storage_keys(fake_userplane.storage_requests()[storage:]) == [("rec_001", "network-log")]
    archive.check({("rec_001", "network-log"): "downloaded"}, report, since=lines, skipped=9)
    assert victim.read_bytes() == archive.objects["rec_001", "network-log"]
    assert (await verify_archive(archive.dest)).ok


async def test_failed_item_is_retried_and_completed_by_a_rerun(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """An item the object store refused is fetched on the next run, and only that item."""
    archive.add_many(3)
    fake_userplane.script_storage(DENIED, recording_id="rec_002", kind="thumbnail")
    first = await run(client, archive)
    expected = dict.fromkeys(items(archive.seeded), "downloaded")
    archive.check({**expected, ("rec_002", "thumbnail"): "failed"}, first)
    assert not first.ok
    api, storage, lines = (
        len(fake_userplane.api_requests()),
        len(fake_userplane.storage_requests()),
        archive.line_count(),
    )

    second = await run(client, archive)

    assert second.ok
    assert routes(fake_userplane, api) == ["recordings.list", "recordings.resource"]
    assert storage_keys(fake_userplane.storage_requests()[storage:]) == [("rec_002", "thumbnail")]
    archive.check({("rec_002", "thumbnail"): "downloaded"}, second, since=lines, skipped=14)


async def test_torn_last_manifest_line_is_ignored(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Half a JSON line at the end (a crash mid-append) is skipped when the manifest is read."""
    archive.add_many(2)
    await run(client, archive)
    whole = archive.lines()[-1]
    torn = json.dumps({**whole, "status": "failed"}).encode()[:40]
    with (archive.dest / "manifest.jsonl").open("ab") as manifest:
        manifest.write(torn)
    storage = len(fake_userplane.storage_requests())

    report = await run(client, archive)

    assert report.counts == {"skipped": 10}
    assert len(fake_userplane.storage_requests()) == storage
    assert (await verify_archive(archive.dest)).checked == 10


async def test_line_appended_after_a_torn_line_stays_readable(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A run after a crash appends whole lines: what it records is read back by the next run."""
    archive.add_many(2)
    fake_userplane.script_storage(DENIED, recording_id="rec_000", kind="video")
    await run(client, archive)
    torn = '{"workspaceId":"ws_archive","recordingId":"rec_0'  # a crash mid-append
    with (archive.dest / "manifest.jsonl").open("a") as manifest:
        manifest.write(torn)
    second = await run(client, archive)
    assert second.counts == {"downloaded": 1, "skipped": 9}
    unreadable = [
        line for line in archive.manifest_text().splitlines() if line != torn and not parses(line)
    ]
    assert unreadable == [], "a new line was glued onto the torn one"
    api = len(fake_userplane.api_requests())

    third = await run(client, archive)

    assert third.counts == {"skipped": 10}
    assert routes(fake_userplane, api) == ["recordings.list"]
    verified = await verify_archive(archive.dest)
    assert (verified.checked, verified.ok) == (10, True)


def parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


# --- hostile IDs (rule 6, fault-matrix row 28) --------------------------------------------------

HOSTILE = [
    pytest.param("../x", id="dotdot-slash"),
    pytest.param("../../etc/passwd", id="etc-passwd"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a/b", id="slash"),
    pytest.param("a\\b", id="backslash"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dotdot"),
    pytest.param("a\x00b", id="nul-char"),
    pytest.param("x" * 300, id="300-chars"),
    pytest.param("CON", id="CON"),
    pytest.param("nul", id="nul-lower"),
    pytest.param("COM1", id="COM1"),
    pytest.param("LPT9.txt", id="LPT9-ext"),
    pytest.param("aux.json", id="aux-ext"),
    pytest.param("trailing.", id="trailing-dot"),
    pytest.param("x:y", id="colon"),
    pytest.param("a b", id="space"),
    pytest.param("café", id="non-ascii"),
]


def assert_refused(archive: Archive, lines: list[dict[str, Any]], hostile: str) -> None:
    refused = [line for line in lines if line["recordingId"] == hostile]
    assert [(line["kind"], line["status"], line["error"]) for line in refused] == [
        (kind, "failed", "invalid_id") for kind in KINDS
    ]
    assert {p.name for p in (archive.dest / WS).iterdir()} == {"rec_ok"}


@pytest.mark.parametrize("hostile", [*HOSTILE, pytest.param("", id="empty")])
async def test_hostile_recording_id_given_fails_alone(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane, hostile: str
) -> None:
    """An unsafe ID in ``recording_ids`` fails as invalid_id with no API call; the rest is archived."""
    archive.add("rec_ok")
    report = await run(client, archive, recording_ids=[hostile, "rec_ok"])
    expected = dict.fromkeys(items(["rec_ok"]), "downloaded") | dict.fromkeys(
        items([hostile]), "failed"
    )
    lines = archive.check(expected, report)
    assert_refused(archive, lines, hostile)
    assert routes(fake_userplane) == ["recordings.get"] + ["recordings.resource"] * 5
    assert all("/recordings/rec_ok" in r.path for r in fake_userplane.api_requests())


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_recording_id_listed_fails_alone(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane, hostile: str
) -> None:
    """An unsafe ID the API lists fails as invalid_id, naming no path; the rest is archived."""
    archive.add("rec_ok")
    fake_userplane.add_recording(WS, hostile)
    report = await run(client, archive)
    expected = dict.fromkeys(items(["rec_ok"]), "downloaded") | dict.fromkeys(
        items([hostile]), "failed"
    )
    lines = archive.check(expected, report)
    assert_refused(archive, lines, hostile)
    assert routes(fake_userplane) == ["recordings.list"] + ["recordings.resource"] * 5
    assert all(e.error == "invalid_id" for e in report.items)


async def test_all_hostile_ids_in_one_listing(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A listing full of unsafe IDs: each fails, the safe ones are archived, nothing escapes."""
    hostile = [str(p.values[0]) for p in HOSTILE]
    for recording_id in hostile:
        fake_userplane.add_recording(WS, recording_id)
    archive.add_many(3)
    report = await run(client, archive, concurrency=4)
    expected = dict.fromkeys(items(archive.seeded), "downloaded") | dict.fromkeys(
        items(hostile), "failed"
    )
    archive.check(expected, report)
    assert report.counts == {"downloaded": 15, "failed": 5 * len(hostile)}


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(None, id="listed"),
        pytest.param(["Ab", "aB"], id="recording-ids"),
        pytest.param(["Ab", "aB", "aB", "Ab"], id="recording-ids-repeated"),
    ],
)
async def test_ids_differing_only_in_case_get_directories_of_their_own(
    client: AsyncUserplane, archive: Archive, given: list[str] | None
) -> None:
    """``Ab`` then ``aB``: both are archived, the second under ``aB~<hash>``, so no two
    directories differ only in case (a case-insensitive disk would merge them)."""
    archive.add("Ab")
    archive.add("aB")
    archive.mapped.add("aB")
    report = await run(client, archive, recording_ids=given)
    archive.check(dict.fromkeys(items(["Ab", "aB"]), "downloaded"), report)
    assert report.ok
    names = sorted(p.name for p in (archive.dest / WS).iterdir())
    assert names == ["Ab", archive.directory_name("aB")]
    assert len({name.casefold() for name in names}) == 2


async def test_case_variant_of_an_id_archived_earlier_gets_its_own_directory(
    client: AsyncUserplane, archive: Archive
) -> None:
    """``aB`` after an earlier run archived ``Ab`` goes to its own directory, and a re-run of
    both is complete at once: exit 0, not a failure on every run."""
    archive.add("Ab")
    archive.add("aB")
    archive.mapped.add("aB")
    await run(client, archive, recording_ids=["Ab"])
    since = archive.line_count()
    report = await run(client, archive, recording_ids=["aB"])
    archive.check(dict.fromkeys(items(["aB"]), "downloaded"), report, since=since)
    calls = client.api_calls
    again = await run(client, archive)
    assert (again.ok, again.counts, client.api_calls - calls) == (True, {"skipped": 10}, 1)
    assert sorted(p.name for p in (archive.dest / WS).iterdir()) == [
        "Ab",
        archive.directory_name("aB"),
    ]


async def test_case_variants_keep_their_directories_whatever_order_lines_were_written(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """The ID that got the plain directory keeps it on re-runs even when the other's lines
    came first in the manifest; nothing is archived twice or into another's directory."""
    archive.add("Ab", sizes={"video": 64 * 1024})
    archive.add("aB")
    archive.mapped.add("aB")
    fake_userplane.script_storage(DENIED, recording_id="Ab", kind="video")
    first = await run(client, archive, recording_ids=["Ab", "aB"], concurrency=1)
    assert first.counts == {"downloaded": 9, "failed": 1}
    report = await run(client, archive)
    assert report.ok
    assert report.counts == {"downloaded": 1, "skipped": 9}
    assert sorted(p.name for p in (archive.dest / WS).iterdir()) == [
        "Ab",
        archive.directory_name("aB"),
    ]
    assert (await verify_archive(archive.dest)).ok


@pytest.mark.parametrize(
    "workspace_id",
    [
        pytest.param("../ws", id="dotdot-slash"),
        pytest.param("/abs", id="absolute"),
        pytest.param("a/b", id="slash"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dotdot"),
        pytest.param("", id="empty"),
        pytest.param("w\x00s", id="nul-char"),
        pytest.param("CON", id="CON"),
        pytest.param("x:y", id="colon"),
        pytest.param("w" * 300, id="300-chars"),
    ],
)
async def test_hostile_workspace_id_raises_before_anything_is_written(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane, workspace_id: str
) -> None:
    """An unsafe workspace ID raises InvalidIDError: no call, no manifest, no directory."""
    with pytest.raises(InvalidIDError) as caught:
        await client.archive(workspace_id, archive.dest)
    assert not archive.dest.exists()
    assert fake_userplane.requests == []
    if workspace_id:
        assert workspace_id not in str(caught.value)
    archive.check_no_leftovers()


# --- the destination itself -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["is-a-file", "under-a-file"])
async def test_destination_that_cannot_be_a_directory_raises_destination_error(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane, where: str
) -> None:
    """A DEST that is (or lies under) a regular file raises the SDK's DestinationError."""
    archive.add("rec_000")
    blocker = archive.tmp / "dest"
    blocker.write_bytes(b"a file, not a directory")
    dest = blocker if where == "is-a-file" else blocker / "archive"
    with pytest.raises(DestinationError):
        await client.archive(WS, dest)
    assert blocker.read_bytes() == b"a file, not a directory"
    assert fake_userplane.api_requests() == []


async def test_symlinked_manifest_is_not_followed_outside_dest(
    client: AsyncUserplane, archive: Archive
) -> None:
    """A ``manifest.jsonl`` symlink pointing outside DEST never gets lines appended to its target."""
    archive.add("rec_000")
    archive.dest.mkdir()
    (archive.dest / "manifest.jsonl").symlink_to(archive.canary / "keep.txt")
    with contextlib.suppress(DestinationError):  # refusing the link is as good as replacing it
        await run(client, archive, kinds=["action"])
    assert (archive.canary / "keep.txt").read_bytes() == CANARY
    assert [p.name for p in archive.canary.iterdir()] == ["keep.txt"]


# --- duplicates (fault-matrix row 37) ------------------------------------------------------------


async def test_same_id_twice_in_recording_ids_is_archived_once(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A repeated ID gives one download per kind and one set of manifest lines."""
    archive.add_many(2)
    ids = ["rec_000", "rec_001", "rec_000", "rec_000", "rec_001"]
    report = await run(client, archive, recording_ids=ids, concurrency=3)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    assert sorted(storage_keys(fake_userplane.storage_requests())) == sorted(items(archive.seeded))
    assert routes(fake_userplane).count("recordings.get") == 2


async def test_item_repeated_across_list_pages_is_archived_once(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Page-based listing that shifts and repeats an item still archives each recording once."""
    archive.add_many(3)
    first, second, third = await listed_items(fake_userplane)
    fake_userplane.script("recordings.list", status=200, body=list_page(WS, [first, second], 1, 2))
    fake_userplane.script("recordings.list", status=200, body=list_page(WS, [second, third], 2, 2))
    fake_userplane.clear_requests()
    report = await run(client, archive, concurrency=3)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    assert sorted(storage_keys(fake_userplane.storage_requests())) == sorted(items(archive.seeded))
    assert routes(fake_userplane).count("recordings.list") == 2


# --- events --------------------------------------------------------------------------------------


async def test_events_arrive_in_order_and_end_with_the_report(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """ArchiveStarted first, then per item Started < Progress < Finished, ArchiveFinished last."""
    archive.add_many(3)
    archive.add("rec_nocap", uncaptured=("video",))
    fake_userplane.add_recording(WS, "../evil")
    fake_userplane.script_storage(ResetAfter(5_000), recording_id="rec_001", kind="video")
    events: list[ArchiveEvent] = []

    report = await run(client, archive, concurrency=3, on_event=events.append)

    first, *middle, last = events
    assert first == ArchiveStarted(WS, archive.dest, KINDS)
    assert isinstance(last, ArchiveFinished)
    assert last.report is report
    assert not [e for e in middle if isinstance(e, (ArchiveStarted, ArchiveFinished))]
    queued = [e.recording_id for e in middle if isinstance(e, RecordingQueued)]
    assert sorted(queued) == sorted(["../evil", "rec_nocap", *archive.seeded[:3]])
    for recording_id, kind in items(archive.seeded):
        mine = [
            e
            for e in middle
            if getattr(e, "recording_id", None) == recording_id
            or getattr(getattr(e, "entry", None), "recording_id", None) == recording_id
        ]
        assert isinstance(mine[0], RecordingQueued)
        of_kind = [e for e in mine if getattr(e, "kind", None) == kind or _entry_kind(e) == kind]
        assert isinstance(of_kind[0], DownloadStarted)
        assert isinstance(of_kind[-1], DownloadFinished | ItemFailed)
        assert [
            e for e in of_kind[1:-1] if not isinstance(e, DownloadProgress | DownloadRetried)
        ] == []
        progress = [e for e in of_kind if isinstance(e, DownloadProgress)]
        if (recording_id, kind) in archive.objects:
            assert progress
            assert (
                progress[-1].done == progress[-1].total == len(archive.objects[recording_id, kind])
            )
        else:
            assert not progress
    retried = [e for e in middle if isinstance(e, DownloadRetried)]
    assert [(e.recording_id, e.kind, e.attempt) for e in retried] == [("rec_001", "video", 2)]
    finished = [e.entry for e in middle if isinstance(e, DownloadFinished)]
    failed = [e.entry for e in middle if isinstance(e, ItemFailed)]
    assert len(finished) == 20  # 19 files and one video that was never captured
    assert {(e.recording_id, e.status) for e in failed} == {("../evil", "failed")}
    assert tuple(failed) == report.items
    assert_no_secrets(fake_userplane, [repr(e) for e in events])


def _entry_kind(event: object) -> str | None:
    entry = getattr(event, "entry", None)
    return None if entry is None else str(entry.kind)


# --- secrets (oracle S) ---------------------------------------------------------------------------


async def test_nothing_the_archive_leaves_or_says_holds_a_secret(
    archive: Archive,
    fake_userplane: FakeUserplane,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No API key, presigned query or URL in the manifest, recording.json, events, logs or report."""
    caplog.set_level(logging.DEBUG)
    archive.add_many(3)
    fake_userplane.script("recordings.resource", status=429, retry_after="0", times=2)
    fake_userplane.script("recordings.resource", status=503, times=1)
    fake_userplane.script_storage(ResetAfter(1_000), recording_id="rec_000")
    fake_userplane.script_storage(DENIED, recording_id="rec_001", kind="action")
    fake_userplane.script_storage(S3Error(503, "SlowDown", "Please reduce your request rate."))
    events: list[ArchiveEvent] = []
    async with AsyncUserplane(
        fake_userplane.api_key,
        base_url=fake_userplane.base_url,
        retry=RetryPolicy.no_wait(attempts=4),
    ) as client:
        report = await run(client, archive, concurrency=2, on_event=events.append)
        texts = [repr(report), str(report)]
    assert report.counts == {"downloaded": 14, "failed": 1}
    assert any("retrying" in r.getMessage() for r in caplog.records)
    texts += [archive.manifest_text(), *log_texts(caplog), *(repr(e) for e in events)]
    texts += [path.read_text() for path in archive.dest.rglob("recording.json")]
    texts += [json.dumps(line) for line in archive.lines()]
    assert_no_secrets(fake_userplane, texts)

"""``client.archive()`` under faults: API budget and 429s, 5xx, auth, missing and deleted
recordings, the network, parallel fetches, cancellation and a killed process.

Fault-matrix rows 1-10, 32 and 40 and design rule 8, each ending with the oracles of
``test_archive_support`` (M manifest, H bytes, G leftovers, S secrets, R request log).
"""

from __future__ import annotations

import json
import math
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.test_archive_support import (
    SIZES,
    TYPES,
    WS,
    Archive,
    assert_no_secrets,
    items,
    storage_keys,
)
from userplane_async import (
    ArchiveEvent,
    ArchiveReport,
    AsyncUserplane,
    AuthenticationError,
    ConnectError,
    DownloadFinished,
    DownloadProgress,
    DownloadStarted,
    ItemFailed,
    RateLimit,
    RetryPolicy,
)
from userplane_async.testing import (
    FakeUserplane,
    RequestRecord,
    S3Error,
    ScaledClock,
    Trickle,
    WrongLength,
)

pytestmark = pytest.mark.anyio

SLOWDOWN = S3Error(503, "SlowDown", "Please reduce your request rate.")


@pytest.fixture
def archive(fake_userplane: FakeUserplane, tmp_path: Path) -> Archive:
    """An empty workspace ``WS`` on the fake, and a destination beside a canary."""
    return Archive(fake_userplane, tmp_path)


@asynccontextmanager
async def client_for(fake: FakeUserplane, **options: Any) -> AsyncIterator[AsyncUserplane]:
    """A client of ``fake`` retrying without waits, unless told otherwise."""
    options.setdefault("retry", RetryPolicy.no_wait())
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url, **options) as client:
        yield client


async def run(client: AsyncUserplane, archive: Archive, **options: Any) -> ArchiveReport:
    """Archive ``WS`` into the destination, bounded in time."""
    with anyio.fail_after(20):
        return await client.archive(WS, archive.dest, **options)


def by_status(lines: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        grouped.setdefault(line["status"], []).append((line["recordingId"], line["kind"]))
    return grouped


def most_in_flight(records: list[RequestRecord]) -> int:
    """The largest number of requests the fake was answering at one moment."""
    edges = []
    for record in records:
        assert record.finished is not None
        edges += [(record.time, 1), (record.finished, -1)]
    busiest = current = 0
    for _, step in sorted(edges):  # at equal times a finish (-1) sorts before a start
        current += step
        busiest = max(busiest, current)
    return busiest


# --- the API budget (rule 8, fault-matrix row 4) -------------------------------------------------


async def test_daily_budget_spent_mid_run_defers_the_rest(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """The client's daily budget runs out: the rest is deferred, and a fresh budget finishes it."""
    archive.add_many(4)
    budget = RateLimit(per_minute=None, per_day=8, max_wait=5)
    async with client_for(fake_userplane, rate_limit=budget) as client:
        first = await run(client, archive, concurrency=2)

    assert len(fake_userplane.api_requests()) == 8  # R: never a call past the budget
    assert first.api_calls == 8
    lines = archive.lines()
    grouped = by_status(lines)
    assert set(grouped) == {"downloaded", "deferred"}
    assert len(grouped["downloaded"]) == 7
    archive.check({(line["recordingId"], line["kind"]): line["status"] for line in lines}, first)
    assert len(lines) == 20
    assert not first.ok
    assert first.counts["deferred"] == 13
    before, storage, since = archive.files(), len(fake_userplane.storage_requests()), len(lines)

    async with client_for(fake_userplane) as fresh:
        second = await run(fresh, archive, concurrency=2)

    assert second.ok
    assert second.counts == {"downloaded": 13, "skipped": 7}
    assert sorted(storage_keys(fake_userplane.storage_requests()[storage:])) == sorted(
        grouped["deferred"]
    )
    archive.check(dict.fromkeys(grouped["deferred"], "downloaded"), second, since=since, skipped=7)
    archive.check_identical(before)
    for key, data in archive.objects.items():
        assert archive.file(*key).read_bytes() == data


async def test_every_deferred_item_says_why(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Each deferred line carries an error code, as ``ManifestEntry.error`` promises for every
    status that did not succeed, not only the first item the budget refused."""
    archive.add_many(3)
    budget = RateLimit(per_minute=None, per_day=3, max_wait=5)
    async with client_for(fake_userplane, rate_limit=budget) as client:
        report = await run(client, archive, concurrency=1)
    deferred = [line for line in archive.lines() if line["status"] == "deferred"]
    assert len(deferred) == 13
    assert [line.get("error") for line in deferred] == ["CLIENT_BUDGET_SPENT"] * 13
    assert {entry.error for entry in report.items} == {"CLIENT_BUDGET_SPENT"}


async def test_budget_spent_while_listing_interrupts_and_a_rerun_continues(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A budget that runs out before the last list page: the run says so, a re-run goes on."""
    ids = archive.add_many(45)  # three list pages
    budget = RateLimit(per_minute=None, per_day=4, max_wait=5)
    async with client_for(fake_userplane, rate_limit=budget) as client:
        first = await run(client, archive, kinds=["thumbnail"], concurrency=2)

    assert len(fake_userplane.api_requests()) == 4
    assert first.interrupted is not None
    assert not first.ok
    lines = archive.lines()
    assert {line["status"] for line in lines} <= {"downloaded", "deferred"}
    archive.check({(line["recordingId"], line["kind"]): line["status"] for line in lines}, first)
    storage = len(fake_userplane.storage_requests())

    async with client_for(fake_userplane) as fresh:
        second = await run(fresh, archive, kinds=["thumbnail"], concurrency=4)

    assert second.ok
    assert second.interrupted is None
    done_before = [
        (line["recordingId"], "thumbnail") for line in lines if line["status"] == "downloaded"
    ]
    assert sorted(storage_keys(fake_userplane.storage_requests()[storage:])) == sorted(
        set(items(ids, ["thumbnail"])) - set(done_before)
    )
    assert second.counts == {"downloaded": 45 - len(done_before), "skipped": len(done_before)}
    for recording_id in ids:
        assert (
            archive.file(recording_id, "thumbnail").read_bytes()
            == archive.objects[recording_id, "thumbnail"]
        )
    archive.check_no_leftovers()


async def test_server_daily_quota_429_stops_new_work_without_sleeping(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A 429 with a Retry-After far past the cap (row 4): no more calls, the rest deferred."""
    archive.add_many(4)
    finished = 0

    def on_event(event: ArchiveEvent) -> None:
        nonlocal finished
        if isinstance(event, DownloadFinished):
            finished += 1
            if finished == 6:
                fake_userplane.script("recordings.resource", status=429, retry_after="40000")

    with anyio.fail_after(5):
        report = await run(client, archive, concurrency=2, on_event=on_event)

    api = fake_userplane.api_requests()
    first_429 = next(n for n, r in enumerate(api) if r.status == 429)
    # The refusal stops every further call: nothing is retried or started after it; at most
    # the other worker's call, already on its way, arrives after it.
    assert [r.status for r in api].count(429) == 1
    assert len(api[first_429 + 1 :]) <= 1
    lines = archive.lines()
    grouped = by_status(lines)
    assert set(grouped) == {"downloaded", "deferred"}
    assert len(lines) == 20
    archive.check({(line["recordingId"], line["kind"]): line["status"] for line in lines}, report)
    assert not report.ok
    since, storage = len(lines), len(fake_userplane.storage_requests())

    async with client_for(fake_userplane) as fresh:
        second = await run(fresh, archive)
    assert second.ok
    assert sorted(storage_keys(fake_userplane.storage_requests()[storage:])) == sorted(
        grouped["deferred"]
    )
    archive.check(
        dict.fromkeys(grouped["deferred"], "downloaded"),
        second,
        since=since,
        skipped=len(grouped["downloaded"]),
    )


async def test_429_storm_fails_those_items_and_spares_the_rest(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Short Retry-After 429s outlasting the retries fail two items as RATE_LIMITED, no more."""
    archive.add_many(3)
    fake_userplane.script("recordings.resource", status=429, retry_after="1", times=6)
    policy = RetryPolicy(attempts=3)
    async with client_for(fake_userplane, retry=policy, clock=ScaledClock(1000)) as client:
        report = await run(client, archive, concurrency=1)

    expected = dict.fromkeys(items(archive.seeded), "downloaded")
    expected |= dict.fromkeys(items(["rec_000"], ["video", "thumbnail"]), "failed")
    lines = archive.check(expected, report)
    assert {line.get("error") for line in lines if line["status"] == "failed"} == {"RATE_LIMITED"}
    assert report.interrupted is None
    statuses = [r.status for r in fake_userplane.api_requests() if r.route == "recordings.resource"]
    assert statuses == [429] * 6 + [200] * 13


@pytest.mark.parametrize("where", ["api", "storage"])
async def test_persistent_5xx_fails_one_recording_only(
    archive: Archive, fake_userplane: FakeUserplane, where: str
) -> None:
    """A recording whose resources always answer 5xx fails alone after bounded tries (row 7)."""
    archive.add_many(3)
    if where == "api":  # one worker: the first recording's 5 kinds x 3 attempts
        fake_userplane.script("recordings.resource", status=503, times=15)
    else:
        fake_userplane.script_storage(SLOWDOWN, recording_id="rec_000", times=100)
    async with client_for(fake_userplane) as client:
        report = await run(client, archive, concurrency=1)

    expected = dict.fromkeys(items(archive.seeded), "downloaded")
    expected |= dict.fromkeys(items(["rec_000"]), "failed")
    lines = archive.check(expected, report)
    code = "SERVICE_UNAVAILABLE" if where == "api" else "SlowDown"
    assert {line.get("error") for line in lines if line["status"] == "failed"} == {code}
    tries = [
        r
        for r in (
            fake_userplane.api_requests() if where == "api" else fake_userplane.storage_requests()
        )
        if "/rec_000/" in r.path
    ]
    assert len(tries) == 5 * client.retry.attempts  # R: bounded
    assert_no_secrets(fake_userplane, [repr(report), str(report), archive.manifest_text()])


async def test_limiter_keeps_a_many_recording_archive_under_the_server_limit(
    tmp_path: Path,
) -> None:
    """A client limited to R per minute archives many recordings against an R-per-minute API
    with zero 429s, never more than R calls in any 60 s (rule 8)."""
    clock = ScaledClock(factor=1000)
    per_minute = 10
    async with FakeUserplane(clock=clock, rate_limits=((per_minute, 60.0),)) as fake:
        archive = Archive(fake, tmp_path)
        archive.add_many(6)
        limit = RateLimit(per_minute=per_minute, per_day=None, max_wait=600)
        async with client_for(fake, clock=clock, rate_limit=limit) as client:
            report = await run(client, archive, concurrency=4)
        assert fake.rate_limited_count == 0
        archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
        times = sorted(r.time for r in fake.api_requests())
        assert len(times) == 31
        assert all(
            later - earlier >= 60.0
            for earlier, later in zip(times, times[per_minute:], strict=False)
        )


async def test_listing_that_fails_midway_keeps_what_was_listed(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Page 2 of the listing keeps failing: page 1 is archived, the run says it was cut short,
    and a re-run archives the rest (row 7 on the listing)."""
    ids = archive.add_many(25)
    fake_userplane.script("recordings.list", status=200)  # page 1 answers normally
    fake_userplane.script("recordings.list", status=503, times=client.retry.attempts)
    first = await run(client, archive, kinds=["action"])

    assert first.interrupted is not None
    assert "ServerError" in first.interrupted
    assert not first.ok
    archive.check(dict.fromkeys(items(ids[:20], ["action"]), "downloaded"), first)
    since = archive.line_count()

    second = await run(client, archive, kinds=["action"])
    assert second.ok
    archive.check(
        dict.fromkeys(items(ids[20:], ["action"]), "downloaded"), second, since=since, skipped=20
    )


# --- Retry-After, backoff and 5xx bursts (rows 1-3, 5, 6) -----------------------------------------


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_retry_after_pauses_every_worker(tmp_path: Path, form: str) -> None:
    """A 429 with Retry-After (seconds or date) holds back every worker's API calls (rows 1-2)."""
    clock = ScaledClock(factor=50)
    async with FakeUserplane(clock=clock, rate_limits=None) as fake:
        archive = Archive(fake, tmp_path)
        archive.add_many(4)
        if form == "seconds":
            value, until = "2", None
        else:
            when = math.floor(clock.time()) + 6
            value, until = formatdate(when, usegmt=True), when - (clock.time() - clock.monotonic())
        fake.script("recordings.resource", status=429, retry_after=value)
        async with client_for(fake, clock=clock, rate_limit=None, retry=RetryPolicy()) as client:
            report = await run(client, archive, concurrency=3)
        archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
        api = fake.api_requests()
        [limited] = [r for r in api if r.status == 429]
        assert limited.finished is not None
        deadline = limited.time + 2.0 if until is None else until
        after = [r for r in api if r.time > limited.time]
        retried = [r for r in after if r.path == limited.path]
        assert len(retried) == 1
        assert retried[0].time >= deadline - 0.05
        # R: until the deadline, only calls the two other workers had already sent may arrive;
        # every call started after the 429 was seen waits for it.
        early = [r for r in after if r.time < deadline - 0.05]
        assert len(early) <= 2


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param(None, id="absent"),
        pytest.param("soon", id="word"),
        pytest.param("-5", id="negative"),
        pytest.param("1e12", id="exponent"),
    ],
)
async def test_429_without_usable_retry_after_backs_off_and_succeeds(
    client: AsyncUserplane,
    archive: Archive,
    fake_userplane: FakeUserplane,
    retry_after: str | None,
) -> None:
    """A 429 with no or a garbage Retry-After falls back to backoff and still succeeds (rows 3, 5)."""
    archive.add_many(2)
    fake_userplane.script("recordings.resource", status=429, retry_after=retry_after, times=2)
    with anyio.fail_after(5):
        report = await run(client, archive)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    statuses = [r.status for r in fake_userplane.api_requests() if r.route == "recordings.resource"]
    assert sorted(statuses) == [200] * 10 + [429] * 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_burst_then_ok_is_retried_within_budget(
    archive: Archive, fake_userplane: FakeUserplane, status: int
) -> None:
    """Three 5xx answers then a 200: the item succeeds on its fourth and last attempt (row 6)."""
    archive.add_many(2)
    fake_userplane.script("recordings.resource", status=status, times=3)
    async with client_for(fake_userplane, retry=RetryPolicy.no_wait(attempts=4)) as client:
        report = await run(client, archive, concurrency=1)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    first = [r for r in fake_userplane.api_requests() if r.route == "recordings.resource"][:4]
    assert [r.status for r in first] == [status] * 3 + [200]
    assert len({r.path for r in first}) == 1
    assert report.api_calls == 1 + 10 + 3


# --- auth, missing and deleted recordings (rows 8-9) -----------------------------------------------


async def test_bad_key_raises_after_one_call(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A rejected key ends the run at the listing: typed error, one call, key not shown (row 8)."""
    archive.add_many(2)
    key = "uspl_" + "k" * 32
    async with AsyncUserplane(key, base_url=fake_userplane.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await run(client, archive)
    assert len(fake_userplane.api_requests()) == 1
    assert key not in str(caught.value)
    assert key not in repr(caught.value)
    assert not archive.dest.exists()  # nothing had anywhere to go: nothing was created
    archive.check_no_leftovers()


async def test_bad_key_with_recording_ids_stops_after_one_call(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """With ``recording_ids`` too, a rejected key is fatal: no more calls than workers already
    in flight, not one per recording."""
    ids = archive.add_many(5)
    key = "uspl_" + "k" * 32
    async with AsyncUserplane(key, base_url=fake_userplane.base_url) as client:
        with pytest.raises(AuthenticationError):
            await run(client, archive, recording_ids=ids, concurrency=2)
    assert 1 <= len(fake_userplane.api_requests()) <= 2
    archive.check_no_leftovers()


async def test_missing_deleted_and_foreign_recordings_by_id(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Given IDs that 404, 410 or 403 become not_found, gone and failed, each after one call
    and without a directory; the others are archived (rows 8-9)."""
    archive.add("rec_ok")
    archive.add("rec_deleted")
    fake_userplane.delete_recording(WS, "rec_deleted")
    fake_userplane.add_workspace("ws_other")
    fake_userplane.add_recording("ws_other", "rec_foreign")
    ids = ["rec_missing", "rec_deleted", "rec_foreign", "rec_ok"]
    report = await run(client, archive, recording_ids=ids)

    expected = dict.fromkeys(items(["rec_ok"]), "downloaded")
    expected |= dict.fromkeys(items(["rec_missing"]), "not_found")
    expected |= dict.fromkeys(items(["rec_deleted"]), "gone")
    expected |= dict.fromkeys(items(["rec_foreign"]), "failed")
    lines = archive.check(expected, report)
    assert report.missing_recordings == ("rec_missing", "rec_deleted")  # in the order asked
    assert not report.ok
    errors = {line["recordingId"]: line.get("error") for line in lines}
    assert errors == {
        "rec_ok": None,
        "rec_missing": "RECORDING_NOT_FOUND",
        "rec_deleted": "RECORDING_GONE",
        "rec_foreign": "RECORDING_WORKSPACE_MISMATCH",
    }
    gets = [
        r.path.rsplit("/", 1)[1]
        for r in fake_userplane.api_requests()
        if r.route == "recordings.get"
    ]
    assert sorted(gets) == sorted(ids)  # no retry of a 4xx
    assert [p.name for p in (archive.dest / WS).iterdir()] == ["rec_ok"]


async def test_a_recording_asked_for_that_is_not_there_is_not_ok(
    client: AsyncUserplane, archive: Archive
) -> None:
    """A typo in ``recording_ids`` is a not_found item and the report is not ok; the
    recordings that are there are archived."""
    archive.add("rec_ok")
    report = await run(client, archive, recording_ids=["rec_ok", "rec_typo"])
    expected = dict.fromkeys(items(["rec_ok"]), "downloaded")
    archive.check(expected | dict.fromkeys(items(["rec_typo"]), "not_found"), report)
    assert report.missing_recordings == ("rec_typo",)
    assert not report.ok
    assert report.interrupted is None
    every = await run(client, archive)  # the same archive by listing: nothing is missing
    assert (every.ok, every.missing_recordings, every.counts) == (True, (), {"skipped": 5})


async def test_not_found_and_gone_are_final_on_a_rerun(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A re-run does not ask again about recordings that were missing or deleted, and does
    not pass them as done either: they are counted as before, and the report is not ok."""
    archive.add("rec_deleted")
    fake_userplane.delete_recording(WS, "rec_deleted")
    await run(client, archive, recording_ids=["rec_missing", "rec_deleted"])
    calls, lines = len(fake_userplane.api_requests()), len(archive.lines())
    events: list[ArchiveEvent] = []
    report = await run(
        client, archive, recording_ids=["rec_missing", "rec_deleted"], on_event=events.append
    )
    assert len(fake_userplane.api_requests()) == calls
    assert len(archive.lines()) == lines, "nothing new to record"
    assert report.counts == {"not_found": 5, "gone": 5}
    assert report.missing_recordings == ("rec_missing", "rec_deleted")
    assert not report.ok
    assert {(e.recording_id, e.status) for e in report.items} == {
        ("rec_missing", "not_found"),
        ("rec_deleted", "gone"),
    }
    failed = [e.entry.status for e in events if isinstance(e, ItemFailed)]
    assert sorted(failed) == ["gone"] * 5 + ["not_found"] * 5
    assert not [e for e in events if isinstance(e, DownloadFinished)]


# --- the network (row 10) ------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_api_raises_a_typed_error_and_writes_nothing(tmp_path: Path) -> None:
    """A refused connection is retried, then raised as ConnectError; no item is invented."""
    dest = tmp_path / "dest"
    base_url = f"http://127.0.0.1:{closed_port()}/api/v1"
    async with AsyncUserplane(
        "uspl_test", base_url=base_url, retry=RetryPolicy.no_wait()
    ) as client:
        with anyio.fail_after(10), pytest.raises(ConnectError):
            await client.archive(WS, dest)
        assert client.api_calls == client.retry.attempts
    assert not dest.exists()  # a fatal run creates nothing


async def test_unreachable_api_with_recording_ids_fails_each_item(tmp_path: Path) -> None:
    """With ``recording_ids``, every item ends failed with a typed reason, none silently lost."""
    dest = tmp_path / "dest"
    base_url = f"http://127.0.0.1:{closed_port()}/api/v1"
    async with AsyncUserplane(
        "uspl_test", base_url=base_url, retry=RetryPolicy.no_wait()
    ) as client:
        with anyio.fail_after(10):
            report = await client.archive(WS, dest, recording_ids=["rec_a", "rec_b"])
    lines = [json.loads(line) for line in (dest / "manifest.jsonl").read_text().splitlines()]
    assert sorted((line["recordingId"], line["kind"]) for line in lines) == sorted(
        items(["rec_a", "rec_b"])
    )
    assert {(line["status"], line["error"]) for line in lines} == {("failed", "ConnectError")}
    assert report.counts == {"failed": 10}
    assert not report.ok


# --- parallel fetches (rule 9) ---------------------------------------------------------------------


async def test_workers_share_the_clients_storage_slots(
    archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """Three workers over slow storage never exceed the client's two parallel fetches, and
    spend at most 5 API calls per recording plus one list page per 20."""
    count = 6
    archive.add_many(count)
    fake_userplane.script_storage(Trickle(bytes_per_second=400_000, chunk=4_000), times=5 * count)
    async with client_for(fake_userplane, concurrency=2) as client:
        report = await run(client, archive, concurrency=3)
    archive.check(dict.fromkeys(items(archive.seeded), "downloaded"), report)
    storage = fake_userplane.storage_requests()
    assert all(isinstance(r.fault, Trickle) for r in storage)
    assert most_in_flight(storage) == 2
    assert len(fake_userplane.api_requests()) <= 5 * count + math.ceil(count / 20)
    assert report.api_calls == len(fake_userplane.api_requests())


# --- cancellation (row 32, SIGINT in-process) -----------------------------------------------------


def cancel_on(trigger: str, scope: anyio.CancelScope) -> Callable[[ArchiveEvent], None]:
    started = 0

    def on_event(event: ArchiveEvent) -> None:
        nonlocal started
        if trigger == "third-start" and isinstance(event, DownloadStarted):
            started += 1
            if started == 3:
                scope.cancel()
        if (
            trigger == "mid-body"
            and isinstance(event, DownloadProgress)
            and event.total is not None
            and event.done < event.total
        ):
            scope.cancel()

    return on_event


@pytest.mark.parametrize("trigger", ["third-start", "mid-body"])
async def test_cancelled_archive_stops_promptly_and_resumes(
    archive: Archive, fake_userplane: FakeUserplane, trigger: str
) -> None:
    """Cancelled from an event, the archive returns within 2 s with whole files and whole
    lines only for what finished; a re-run completes it byte for byte."""
    archive.add_many(3)
    archive.add("rec_big", sizes={"video": 3 * 1024 * 1024})
    fake_userplane.script_storage(
        Trickle(bytes_per_second=8_000_000, chunk=256 * 1024), recording_id="rec_big", kind="video"
    )
    events: list[ArchiveEvent] = []
    async with client_for(fake_userplane) as client:
        with anyio.fail_after(2), anyio.CancelScope() as scope:
            on_event = cancel_on(trigger, scope)

            def record(event: ArchiveEvent) -> None:
                events.append(event)
                on_event(event)

            await client.archive(WS, archive.dest, concurrency=4, on_event=record)
        assert scope.cancelled_caught

        ended = {
            (e.entry.recording_id, e.entry.kind): e.entry.status
            for e in events
            if isinstance(e, DownloadFinished | ItemFailed)
        }
        assert len(ended) < 20
        archive.check(ended)  # every line whole, one per finished item, no temp file
        before, since = archive.files(), archive.line_count()

        report = await run(client, archive, concurrency=4)

    assert report.ok
    rest = {key: "downloaded" for key in items(archive.seeded) if key not in ended}
    archive.check(rest, report, since=since, skipped=len(ended))
    archive.check_history()  # row 15: the manifest of both runs, line by line
    archive.check_identical(before)
    for key, data in archive.objects.items():
        assert archive.file(*key).read_bytes() == data


async def test_a_lying_length_fails_its_item_and_a_rerun_completes_it(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """A length that lies fails that item as IntegrityError, with no file; the re-run fetches
    it, and the manifest of both runs holds up line by line (#15)."""
    archive.add_many(2)
    fake_userplane.script_storage(WrongLength(10), recording_id="rec_001", kind="video")
    first = await run(client, archive)
    [failed] = first.items
    assert (failed.recording_id, failed.kind, failed.status) == ("rec_001", "video", "failed")
    assert failed.error_type == "IntegrityError"
    assert not archive.file("rec_001", "video").exists()
    archive.check_no_leftovers()
    report = await run(client, archive)  # the fault was scripted once: the object is true now
    assert (report.ok, report.counts) == (True, {"downloaded": 1, "skipped": 9})
    archive.check_history()


# --- a killed process (row 40) ----------------------------------------------------------------------

_KILLED_RUN = """
import hashlib, json, sys
from datetime import datetime, timedelta, timezone
import anyio
from userplane_async import AsyncUserplane, DownloadProgress, RetryPolicy
from userplane_async.testing import FakeResource, FakeUserplane, Trickle

dest, ws, recordings, sizes, types, big = json.loads(sys.argv[1])

def created_at(index):  # as tests/test_archive_support.py seeds them: listed in this order
    return datetime(2025, 1, 1, tzinfo=timezone.utc) - timedelta(minutes=index)

def content(recording_id, kind, size):
    return hashlib.shake_256(f"{recording_id}\\0{kind}".encode()).digest(size)

def on_event(event):
    if isinstance(event, DownloadProgress) and event.total and 0 < event.done < event.total:
        print("MID", flush=True)

async def main():
    async with FakeUserplane() as fake:
        fake.add_workspace(ws)
        for index, recording_id in enumerate(recordings):
            mine = {**sizes, **({"video": big[1]} if recording_id == big[0] else {})}
            fake.add_recording(ws, recording_id, created_at=created_at(index), resources={
                kind: FakeResource(content(recording_id, kind, mine[kind]), type=types[kind])
                for kind in sizes
            })
        slow = Trickle(bytes_per_second=1_000_000, chunk=64 * 1024)
        fake.script_storage(slow, recording_id=big[0], kind="video")
        async with AsyncUserplane(
            fake.api_key, base_url=fake.base_url, retry=RetryPolicy.no_wait()
        ) as client:
            await client.archive(ws, dest, concurrency=1, on_event=on_event)
    print("DONE", flush=True)

anyio.run(main)
"""


@pytest.mark.slow
async def test_killed_process_leaves_no_final_file_and_a_rerun_cleans_up(
    client: AsyncUserplane, archive: Archive, fake_userplane: FakeUserplane
) -> None:
    """SIGKILL mid-download: no final file for that item, whole lines only; the next run removes
    the stale temp file and completes the archive byte for byte (row 40)."""
    big = ("rec_b_big", 4 * 1024 * 1024)
    archive.add("rec_a_small")
    archive.add(big[0], sizes={"video": big[1]})
    archive.add("rec_c_small")
    argument = json.dumps([str(archive.dest), WS, archive.seeded, SIZES, TYPES, big])
    with anyio.fail_after(20):
        async with await anyio.open_process(
            [sys.executable, "-c", _KILLED_RUN, argument]
        ) as process:
            assert process.stdout is not None
            seen = b""
            async for chunk in process.stdout:
                seen += chunk
                if b"MID" in seen or b"DONE" in seen:
                    break
            if b"MID" not in seen:
                assert process.stderr is not None
                await process.wait()
                errors = b"".join([chunk async for chunk in process.stderr])
                pytest.fail(f"the archive never reached mid-body: {seen!r} {errors.decode()}")
            process.kill()
            await process.wait()

    video_dir = archive.dest / WS / big[0]
    assert [p for p in video_dir.iterdir() if p.name.startswith(".video.webm.")]  # left by the kill
    assert not (video_dir / "video.webm").exists()
    lines = archive.lines()
    done = {(line["recordingId"], line["kind"]): line["status"] for line in lines}
    assert (big[0], "video") not in done
    assert done.get(("rec_a_small", "video")) == "downloaded"
    for line in lines:
        archive.check_line(line)
    storage = len(fake_userplane.storage_requests())

    report = await run(client, archive)

    assert report.ok
    archive.check(
        {key: "downloaded" for key in items(archive.seeded) if key not in done},
        report,
        since=len(lines),
        skipped=len(done),
    )
    fetched = storage_keys(fake_userplane.storage_requests()[storage:])
    assert sorted(fetched) == sorted(key for key in items(archive.seeded) if key not in done)
    archive.check_history()  # row 15
    for key, data in archive.objects.items():
        assert archive.file(*key).read_bytes() == data

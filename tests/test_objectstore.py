"""Archives and downloads into an object store (issue 11; fault-matrix rows 45-49).

Against a real S3-protocol server (moto, in a subprocess, on 127.0.0.1), sometimes behind
``S3FaultProxy`` to inject the store's errors and see every request; the Userplane side is
the fake, over real sockets, as everywhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from tests.conftest import Bucket
from tests.test_archive_support import TYPES, WS, Archive, content
from userplane_async import (
    AsyncUserplane,
    DestinationError,
    IntegrityError,
    ObjectStoreError,
    ResourceKind,
    RetryPolicy,
    TransportError,
    verify_archive,
)
from userplane_async._destination import download_place
from userplane_async._download import file_name
from userplane_async._store._manifest import COMPACT_OVER, SEGMENTS
from userplane_async.testing import FakeUserplane, S3FaultProxy, StallAfter, TruncateAfter

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
BIG = 13 * MIB  # three parts of 6 MiB: a multipart upload
SECRET = "sekrit-aws-secret-key-never-shown"


@pytest.fixture
def archive(fake_userplane: FakeUserplane, tmp_path: Path) -> Archive:
    return Archive(fake_userplane, tmp_path)


@pytest.fixture
async def proxy(s3: Bucket, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[S3FaultProxy]:
    """The bucket's server behind a proxy that logs requests and injects faults."""
    async with S3FaultProxy(s3.server.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        yield proxy


def key(prefix: str, recording_id: str, kind: str) -> str:
    return f"{prefix}/{WS}/{recording_id}/{file_name(ResourceKind(kind), TYPES[kind])}"


def archived(archive: Archive, prefix: str) -> dict[str, bytes]:
    """What the layout must hold: every seeded object under its key."""
    return {key(prefix, rec, kind): data for (rec, kind), data in archive.objects.items()}


def resources(stored: dict[str, bytes]) -> dict[str, bytes]:
    """The stored objects but the manifest and the recordings' metadata."""
    return {
        k: v
        for k, v in stored.items()
        if f"/{SEGMENTS}/" not in k and not k.endswith("/recording.json")
    }


def is_part(request: web.Request) -> bool:
    return request.method == "PUT" and "partNumber" in request.query


def creates_upload(request: web.Request) -> bool:
    return request.method == "POST" and "uploads" in request.query


# --- archive ----------------------------------------------------------------------------------


async def test_archive_stores_every_object_under_its_layout_key_and_a_rerun_spends_nothing(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    archive.add("rec_big", sizes={"video": BIG})
    archive.add("rec_small")
    dest = f"{s3.url}/team/archive"

    report = await client.archive(WS, dest)

    assert report.ok
    assert report.counts == {"downloaded": 10}
    assert report.dest == dest
    stored = s3.objects("team/archive/")
    assert resources(stored) == archived(archive, "team/archive")
    assert f"team/archive/{WS}/rec_big/recording.json" in stored
    assert s3.uploads() == []
    again = await client.archive(WS, dest)
    assert again.counts == {"skipped": 10}
    assert again.api_calls == 1  # the listing page; not one call per recording
    assert (await verify_archive(dest)).ok


async def test_rerun_reads_the_manifest_with_a_handful_of_requests(
    client: AsyncUserplane, archive: Archive, s3: Bucket, proxy: S3FaultProxy
) -> None:
    archive.add_many(40)
    dest = f"{s3.url}/a"
    assert (await client.archive(WS, dest, kinds=["thumbnail"])).ok
    proxy.requests.clear()

    again = await client.archive(WS, dest, kinds=["thumbnail"])

    assert again.counts == {"skipped": 40}
    gets = [r for r in proxy.requests if r[0] == "GET" and "list-type" not in r[2]]
    lists = [r for r in proxy.requests if r[0] == "GET" and "list-type" in r[2]]
    assert len(gets) <= 2, proxy.requests  # the segments, not one per recording
    assert len(lists) <= 2, proxy.requests
    assert len(proxy.requests) <= 6, proxy.requests


async def test_many_segments_are_merged_and_nothing_is_forgotten(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    ids = archive.add_many(COMPACT_OVER + 1)
    dest = f"{s3.url}/m"
    for recording_id in ids:  # one run, one segment each
        await client.archive(WS, dest, kinds=["action"], recording_ids=[recording_id])
    segments = [k for k in s3.objects("m/") if k.endswith(".jsonl")]
    assert len(segments) == len(ids)

    again = await client.archive(WS, dest, kinds=["action"])

    assert again.counts == {"skipped": len(ids)}
    left = [k for k in s3.objects("m/") if k.endswith(".jsonl")]
    assert len(left) == 1
    assert left[0].endswith("~merged.jsonl")
    assert (await client.archive(WS, dest, kinds=["action"])).counts == {"skipped": len(ids)}


async def test_an_object_already_at_a_key_is_never_adopted(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    """An object the manifest does not vouch for is replaced by a verified download (#49)."""
    archive.add("rec_a")
    planted = key("p", "rec_a", "thumbnail")
    s3.put(planted, b"somebody else's bytes")

    report = await client.archive(WS, f"{s3.url}/p")

    assert report.counts == {"downloaded": 5}
    assert s3.objects()[planted] == archive.objects["rec_a", "thumbnail"]


async def test_verify_catches_an_object_replaced_behind_our_back(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    archive.add("rec_a")
    dest = f"{s3.url}/v"
    await client.archive(WS, dest)
    s3.put(key("v", "rec_a", "video"), b"x" * len(archive.objects["rec_a", "video"]))
    s3.server.client().delete_object(Bucket=s3.name, Key=key("v", "rec_a", "action"))

    report = await verify_archive(dest)

    assert report.checked == 5
    assert [(e.recording_id, e.kind) for e in report.mismatched] == [("rec_a", "video")]
    assert [(e.recording_id, e.kind) for e in report.missing] == [("rec_a", "action")]


async def test_a_bucket_that_is_not_there_stops_the_run_before_any_api_call(
    client: AsyncUserplane, archive: Archive, s3: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bucket: a typed error naming no secret, and no API call spent (#46)."""
    archive.add("rec_a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    with pytest.raises(ObjectStoreError) as caught:
        await client.archive(WS, f"{s3.url}-missing/x")

    assert caught.value.code == "NoSuchBucket"
    assert archive.fake.api_requests() == []
    assert SECRET not in f"{caught.value} {caught.value!r}"


async def test_access_denied_stops_the_run_before_any_api_call(
    client: AsyncUserplane, archive: Archive, s3: Bucket, proxy: S3FaultProxy
) -> None:
    archive.add("rec_a")
    proxy.fail(403, "AccessDenied")

    with pytest.raises(ObjectStoreError) as caught:
        await client.archive(WS, f"{s3.url}/x")

    assert caught.value.code == "AccessDenied"
    assert archive.fake.api_requests() == []


async def test_throttled_parts_are_retried_and_the_object_completes_once(
    client: AsyncUserplane, archive: Archive, s3: Bucket, proxy: S3FaultProxy
) -> None:
    """503 SlowDown on some parts: retried, and the object completes once (#45)."""
    archive.add("rec_big", sizes={"video": BIG})
    proxy.fail(503, "SlowDown", times=2, match=is_part)

    report = await client.archive(WS, f"{s3.url}/t", kinds=["video"])

    assert report.ok
    assert proxy.failed == 2
    assert s3.objects("t/")[key("t", "rec_big", "video")] == archive.objects["rec_big", "video"]
    assert s3.uploads() == []


# --- download ---------------------------------------------------------------------------------


async def test_download_to_a_key_and_to_a_prefix(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    archive.add("rec_a")
    to_key = await client.recordings.download(WS, "rec_a", "thumbnail", f"{s3.url}/d/t.jpg")
    to_prefix = await client.recordings.download(WS, "rec_a", "video", f"{s3.url}/d/")

    assert to_key.url == f"{s3.url}/d/t.jpg"
    assert to_key.path == Path("d/t.jpg")
    assert to_prefix.url == f"{s3.url}/d/video.webm"
    stored = s3.objects("d/")
    assert stored["d/t.jpg"] == archive.objects["rec_a", "thumbnail"]
    assert stored["d/video.webm"] == archive.objects["rec_a", "video"]
    assert to_key.sha256 == hashlib.sha256(stored["d/t.jpg"]).hexdigest()
    again = await client.recordings.download(WS, "rec_a", "thumbnail", f"{s3.url}/d/t.jpg")
    assert again.skipped  # ours, and its hash on the object still matches


async def test_download_keeps_an_object_it_did_not_write_unless_told(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    archive.add("rec_a")
    s3.put("k/video.webm", b"theirs")

    with pytest.raises(DestinationError, match="already exists"):
        await client.recordings.download(WS, "rec_a", "video", f"{s3.url}/k/")

    assert s3.objects("k/") == {"k/video.webm": b"theirs"}
    replaced = await client.recordings.download(
        WS, "rec_a", "video", f"{s3.url}/k/", overwrite=True
    )
    assert not replaced.skipped
    assert s3.objects("k/") == {"k/video.webm": archive.objects["rec_a", "video"]}


async def test_a_body_that_keeps_breaking_aborts_the_upload(
    fake_userplane: FakeUserplane, archive: Archive, s3: Bucket
) -> None:
    """Any error aborts: no object, no incomplete upload left."""
    archive.add("rec_big", sizes={"video": 3 * BIG})
    fake_userplane.script_storage(TruncateAfter(8 * MIB), times=10, kind="video")
    async with AsyncUserplane(
        fake_userplane.api_key,
        base_url=fake_userplane.base_url,
        retry=RetryPolicy(attempts=2, wait_scale=0.0),
    ) as client:
        with pytest.raises((IntegrityError, TransportError)):
            await client.recordings.download(WS, "rec_big", "video", f"{s3.url}/b/")

    assert s3.objects("b/") == {}
    assert s3.uploads() == []


async def test_a_size_the_store_and_the_api_disagree_on_fails_the_item_with_nothing_kept(
    client: AsyncUserplane, fake_userplane: FakeUserplane, s3: Bucket
) -> None:
    fake_userplane.add_workspace(WS)
    data = content("rec_lie", "video", BIG)
    from userplane_async.testing import FakeResource

    fake_userplane.add_recording(
        WS, "rec_lie", resources={"video": FakeResource(data, size=BIG + 7, type="video/webm")}
    )

    report = await client.archive(WS, f"{s3.url}/s", kinds=["video"])

    assert report.counts == {"failed": 1}
    assert report.items[0].error_type == "IntegrityError"
    assert resources(s3.objects("s/")) == {}
    assert s3.uploads() == []


@pytest.mark.parametrize("when", ["first part on its way", "after two parts"])
async def test_cancelling_mid_upload_aborts_it(
    client: AsyncUserplane,
    fake_userplane: FakeUserplane,
    archive: Archive,
    s3: Bucket,
    proxy: S3FaultProxy,
    when: str,
) -> None:
    """Cancelled at an await while parts are in flight, nothing of ours is left (#48)."""
    archive.add("rec_big", sizes={"video": 3 * BIG})
    fake_userplane.script_storage(StallAfter(20 * MIB), kind="video")
    wanted = creates_upload if when == "first part on its way" else is_part

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(client.recordings.download, WS, "rec_big", "video", f"{s3.url}/c/")
        with anyio.fail_after(30):
            await proxy.wait_for(wanted)
        tasks.cancel_scope.cancel()

    assert s3.objects("c/") == {}
    assert s3.uploads() == []
    assert any(r[0] == "DELETE" and "uploadId" in r[2] for r in proxy.requests)


async def test_a_commit_cancelled_behind_slow_parts_aborts_the_upload(
    s3: Bucket, proxy: S3FaultProxy
) -> None:
    """Two parts on their way and the queue full: the commit waits to hand over the end.
    Cancelled there, it must still abort the upload, not leave it waiting forever (#48)."""
    release = proxy.hold(is_part)
    folder, _ = await download_place(f"{s3.url}/h/")
    sink = await folder.open_sink(
        "video.webm", resource="ws/rec/video", size=None, replace=False, on_landed=lambda n: None
    )
    with anyio.fail_after(30):
        async with sink:
            for _ in range(14):  # 2 parts of 6 held, 1 MiB waiting in obstore, 1 in the queue
                await sink.send(bytes(MIB))
            committing = asyncio.ensure_future(sink.commit())
            await asyncio.sleep(0)  # the commit runs up to its wait to hand over the end
            assert not committing.done()
            committing.cancel()
            await asyncio.sleep(0)
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await committing
        await folder.aclose()
    assert s3.objects("h/") == {}
    assert s3.uploads() == []


# --- the command line ---------------------------------------------------------------------------


def _console(*argv: str) -> list[str]:
    script = Path(sys.executable).with_name("userplane-async")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "userplane_async"]
    return [*command, *argv]


def _env(fake: FakeUserplane, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "USERPLANE_API_KEY": fake.api_key,
        "USERPLANE_BASE_URL": fake.base_url,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


async def test_cli_missing_bucket_exits_3_with_nothing_spent(archive: Archive, s3: Bucket) -> None:
    archive.add("rec_a")
    env = _env(archive.fake, AWS_SECRET_ACCESS_KEY=SECRET)
    done = await anyio.run_process(
        _console("archive", WS, f"{s3.url}-missing/x"), env=env, check=False
    )
    assert done.returncode == 3
    assert b"NoSuchBucket" in done.stderr
    assert archive.fake.api_requests() == []
    assert SECRET.encode() not in done.stdout + done.stderr


async def test_cli_archive_and_verify_a_bucket(archive: Archive, s3: Bucket) -> None:
    archive.add("rec_a")
    env = _env(archive.fake)
    dest = f"{s3.url}/cli"
    done = await anyio.run_process(_console("archive", WS, dest), env=env, check=False)
    assert done.returncode == 0, done.stderr
    ok = await anyio.run_process(_console("verify", dest), env=env, check=False)
    assert ok.returncode == 0
    assert b"Checked 5 files" in ok.stdout
    s3.put(key("cli", "rec_a", "thumbnail"), b"tampered")
    bad = await anyio.run_process(_console("verify", dest), env=env, check=False)
    assert bad.returncode == 1
    assert b"mismatched" in bad.stdout


@pytest.mark.slow
async def test_sigkill_mid_upload_leaves_nothing_visible_and_cleanup_aborts_the_rest(
    fake_userplane: FakeUserplane, archive: Archive, s3: Bucket, proxy: S3FaultProxy
) -> None:
    """A killed run leaves an incomplete upload no reader sees; a re-run completes and
    ``cleanup`` aborts what the dead run left (#47)."""
    archive.add("rec_big", sizes={"video": 3 * BIG})
    fake_userplane.script_storage(StallAfter(20 * MIB), kind="video")
    dest = f"{s3.url}/k"
    env = _env(fake_userplane, AWS_ENDPOINT_URL=proxy.endpoint)
    async with await anyio.open_process(
        _console("archive", WS, dest, "--kinds", "video"), env=env
    ) as process:
        with anyio.fail_after(30):
            await proxy.wait_for(is_part)
        os.kill(process.pid, signal.SIGKILL)
    assert key("k", "rec_big", "video") not in s3.objects("k/")
    assert s3.uploads() == [key("k", "rec_big", "video")]

    rerun = await anyio.run_process(
        _console("archive", WS, dest, "--kinds", "video"), env=env, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert s3.objects("k/")[key("k", "rec_big", "video")] == archive.objects["rec_big", "video"]
    # (moto dates every upload 2010, so the default hour's grace cannot be shown here.)
    old = await anyio.run_process(
        _console("cleanup", dest, "--older-than", "0"), env=env, check=False
    )
    assert old.returncode == 0
    assert b"Aborted 1 incomplete uploads" in old.stdout
    assert s3.uploads() == []


# --- other ways to name a destination ---------------------------------------------------------


async def test_a_configured_store_takes_a_prefix_and_never_shows_its_credentials(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    from obstore.store import S3Store

    archive.add("rec_a")
    store = S3Store(
        s3.name,
        endpoint=s3.server.endpoint,
        access_key_id="testing",
        secret_access_key=SECRET,
        region="us-east-1",
        client_options={"allow_http": True},
    )
    seen: list[object] = []

    report = await client.archive(WS, "via/store", store=store, on_event=seen.append)

    assert report.ok
    assert report.dest == f"{s3.url}/via/store"
    assert resources(s3.objects("via/store/")) == archived(archive, "via/store")
    assert (await verify_archive("via/store", store=store)).ok
    single = await client.recordings.download(WS, "rec_a", "action", "one/", store=store)
    assert single.url == f"{s3.url}/one/action.json"
    assert s3.objects("one/") == {"one/action.json": archive.objects["rec_a", "action"]}
    assert SECRET not in repr([report, single, *seen])


async def test_a_store_without_metadata_still_archives_whole(
    client: AsyncUserplane, archive: Archive
) -> None:
    """obstore's in-memory store keeps no attributes: objects carry no hash, the manifest does."""
    from obstore.store import MemoryStore

    archive.add("rec_a", sizes={"video": BIG})
    store = MemoryStore()

    report = await client.archive(WS, "", store=store)

    assert report.counts == {"downloaded": 5}
    assert (await client.archive(WS, "", store=store)).counts == {"skipped": 5}
    assert (await verify_archive("", store=store)).ok


async def test_a_file_url_is_a_local_directory(
    client: AsyncUserplane, archive: Archive, tmp_path: Path
) -> None:
    archive.add("rec_a")
    dest = tmp_path / "via file url"

    report = await client.archive(WS, dest.as_uri())

    assert report.ok
    assert report.dest == dest
    assert (dest / "manifest.jsonl").is_file()
    assert (dest / WS / "rec_a" / "video.webm").read_bytes() == archive.objects["rec_a", "video"]
    assert (await verify_archive(dest.as_uri())).ok


async def test_a_url_obstore_cannot_use_is_a_configuration_error_without_its_secrets(
    client: AsyncUserplane, archive: Archive
) -> None:
    from userplane_async import ConfigurationError

    archive.add("rec_a")
    with pytest.raises(ConfigurationError) as caught:
        await client.archive(WS, f"az://user:{SECRET}@/?sig={SECRET}")
    assert SECRET not in f"{caught.value} {caught.value!r}"
    assert archive.fake.api_requests() == []


# --- what a review found ------------------------------------------------------------------------


async def test_a_bucket_that_denies_deletes_keeps_working_past_many_segments(
    client: AsyncUserplane,
    archive: Archive,
    s3: Bucket,
    proxy: S3FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from userplane_async._store import _manifest

    monkeypatch.setattr(_manifest, "COMPACT_OVER", 2)
    ids = archive.add_many(4)
    dest = f"{s3.url}/nd"
    proxy.fail(403, "AccessDenied", match=lambda r: r.method == "DELETE" or "delete" in r.query)
    for recording_id in ids[:3]:
        await client.archive(WS, dest, kinds=["action"], recording_ids=[recording_id])

    for _ in range(2):  # merging, the deletes refused: both runs go on
        report = await client.archive(WS, dest, kinds=["action"])
        assert report.ok
    assert report.counts == {"skipped": 4}


async def test_a_run_merges_its_own_segments_at_the_end(
    client: AsyncUserplane, archive: Archive, s3: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    from userplane_async._store import _manifest

    monkeypatch.setattr(_manifest, "FLUSH_LINES", 2)
    archive.add_many(7)
    dest = f"{s3.url}/own"

    assert (await client.archive(WS, dest, kinds=["action"])).ok

    segments = [k for k in s3.objects("own/") if k.endswith(".jsonl")]
    assert len(segments) == 1
    assert segments[0].endswith("~run.jsonl")
    assert (await client.archive(WS, dest, kinds=["action"])).counts == {"skipped": 7}


async def test_verify_of_a_prefix_without_an_archive_is_an_error(s3: Bucket) -> None:
    with pytest.raises(DestinationError, match="no manifest"):
        await verify_archive(f"{s3.url}/nothing-here")
    done = await anyio.run_process(
        _console("verify", f"{s3.url}/nothing-here?sig={SECRET}"), check=False
    )
    assert done.returncode == 3
    assert SECRET.encode() not in done.stdout + done.stderr


async def test_a_refusal_keeps_the_stores_error_code(
    client: AsyncUserplane, archive: Archive, s3: Bucket, proxy: S3FaultProxy
) -> None:
    archive.add("rec_a")
    proxy.fail(403, "AccessDenied", match=lambda r: r.method == "HEAD")

    with pytest.raises(ObjectStoreError) as caught:
        await client.recordings.download(WS, "rec_a", "thumbnail", f"{s3.url}/h/")

    assert caught.value.code == "AccessDenied"


async def test_a_refusal_mid_run_stops_the_run_and_defers_the_rest(
    client: AsyncUserplane, archive: Archive, s3: Bucket, proxy: S3FaultProxy
) -> None:
    archive.add_many(3)
    proxy.fail(403, "ExpiredToken", match=lambda r: r.method == "PUT" and "/rec_" in r.path)

    report = await client.archive(WS, f"{s3.url}/e", concurrency=1)

    assert report.interrupted is not None
    assert "refused" in report.interrupted
    assert report.counts["failed"] == 5  # the first recording's items
    assert report.counts["deferred"] == 10


async def test_an_event_handler_that_raises_leaves_no_task_behind(
    client: AsyncUserplane, archive: Archive, s3: Bucket
) -> None:
    archive.add("rec_a")

    def explode(event: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await client.archive(WS, f"{s3.url}/x", on_event=explode)
    assert [t for t in asyncio.all_tasks() if "flush" in repr(t)] == []

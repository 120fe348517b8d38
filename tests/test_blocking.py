"""The blocking client: every namespace against the fake, threads, notebooks, interrupts, close.

These are plain (sync) tests, run the way a script runs: the fake is served by an event loop in
a thread of its own, and the test thread has no loop at all unless a test starts one.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import anyio.from_thread
import pytest

from userplane_async import (
    ArchiveEvent,
    BlockingResourceStream,
    ByteRange,
    ClientClosedError,
    ConfigurationError,
    DownloadFinished,
    GoneError,
    InvalidIDError,
    NotFoundError,
    Paginator,
    Recording,
    ResourceKind,
    RetryPolicy,
    Userplane,
)
from userplane_async.testing import FakeResource, FakeUserplane, StallAfter
from userplane_async.testing._demo import sample

T = TypeVar("T")

WS = "ws_demo"
DEMO_RECORDINGS = [
    "rec_demo_full",
    "rec_demo_no_logs",
    "rec_demo_no_video",
    "rec_demo_large",
    "rec_demo_small",
]
BIG = hashlib.shake_256(b"interrupt me mid-way").digest(1_600_000)  # more than one write batch
MIB = 1024 * 1024


class ServedFake:
    """The fake, served by an event loop in a thread of its own; ``do`` runs code on that loop."""

    def __init__(self, fake: FakeUserplane, portal: anyio.from_thread.BlockingPortal) -> None:
        self.fake = fake
        self._portal = portal

    def do(self, fn: Callable[[], T]) -> T:
        return self._portal.call(fn)

    def client(self, **options: object) -> Userplane:
        return Userplane(
            self.fake.api_key,
            base_url=self.fake.base_url,
            retry=RetryPolicy.no_wait(),
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def served() -> Iterator[ServedFake]:
    """The demo-seeded fake, plus ``rec_big`` (1.6 MB of video) in ``ws_demo``."""
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(FakeUserplane()) as fake,
    ):
        portal.call(fake.seed_demo)
        portal.call(
            lambda: fake.add_recording(WS, "rec_big", resources={"video": FakeResource(BIG)})
        )
        yield ServedFake(fake, portal)


@pytest.fixture
def client(served: ServedFake) -> Iterator[Userplane]:
    with served.client() as client:
        yield client


def test_me_and_workspaces(client: Userplane) -> None:
    """me() and every workspaces method answer with the fake's data, outside any event loop."""
    me = client.me()
    workspaces = list(client.workspaces.list(include_membership=True))

    assert me.user.id == "usr_default"
    assert [w.workspace_id for w in workspaces] == [WS]
    assert workspaces[0].workspace_membership is not None
    assert client.workspaces.get(WS).workspace_name == "Demo workspace"
    assert client.workspaces.invite_url(WS).invite_url.startswith("http")


def test_projects(client: Userplane) -> None:
    """projects.list() and get() answer with the demo project."""
    projects = list(client.projects.list(WS))

    assert [p.project_id for p in projects] == ["prj_demo"]
    assert client.projects.get(WS, "prj_demo").title == "Demo project"


def test_links_create_get_update_delete(client: Userplane) -> None:
    """A link goes through its whole life; once deleted, get() raises GoneError."""
    link = client.links.create(WS, domain_id="dom_demo", link_reference="ticket-9")
    updated = client.links.update(WS, link.link_id, link_title="Renamed")
    fetched = client.links.get(WS, link.link_id)
    listed = [item.link_id for item in client.links.list(WS)]
    deleted = client.links.delete(WS, link.link_id)

    assert updated.link_title == fetched.link_title == "Renamed"
    assert link.link_id in listed
    assert deleted.link_id == link.link_id
    with pytest.raises(GoneError):
        client.links.get(WS, link.link_id)


def test_recordings_list_get_delete(client: Userplane) -> None:
    """Recordings list newest first, get() returns one, and a deleted one is gone."""
    listed = [r.recording_id for r in client.recordings.list(WS)]
    recording = client.recordings.get(WS, "rec_demo_small")
    deleted = client.recordings.delete(WS, "rec_demo_small")

    assert listed == ["rec_big", *DEMO_RECORDINGS]
    assert isinstance(recording, Recording)
    assert recording.recording_id == "rec_demo_small"
    assert deleted.recording_id == "rec_demo_small"
    with pytest.raises(GoneError):
        client.recordings.get(WS, "rec_demo_small")


def test_resource_helpers(client: Userplane) -> None:
    """resource() and its five shorthands resolve a presigned URL of the right kind."""
    helpers = {
        ResourceKind.VIDEO: client.recordings.video,
        ResourceKind.THUMBNAIL: client.recordings.thumbnail,
        ResourceKind.CONSOLE_LOG: client.recordings.console_log,
        ResourceKind.NETWORK_LOG: client.recordings.network_log,
        ResourceKind.ACTION: client.recordings.action,
    }

    for kind, helper in helpers.items():
        resource = helper(WS, "rec_demo_full")
        assert resource.kind is kind
        assert resource.url is not None
    assert (
        client.recordings.resource(WS, "rec_demo_full", "thumbnail").kind is ResourceKind.THUMBNAIL
    )


def test_methods_show_their_blocking_signatures(client: Userplane) -> None:
    """help() and notebooks show the async method's parameters with the blocking return type."""
    assert str(inspect.signature(client.links.list)) == (
        "(workspace_id: 'str', *, per_page: 'int' = 20, **params: 'QueryValue') -> 'Paginator[Link]'"
    )
    assert inspect.signature(client.recordings.stream).return_annotation == (
        "AbstractContextManager[BlockingResourceStream]"
    )
    assert str(inspect.signature(client.workspaces.get)) == "(workspace_id: 'str') -> 'Workspace'"
    assert (client.recordings.download.__doc__ or "").startswith("Save one resource to ``dest``")


def test_pagination_is_a_lazy_plain_iterator(served: ServedFake, client: Userplane) -> None:
    """list() gives a plain iterator that fetches a page only when the loop reaches it."""
    paginator = client.recordings.list(WS, per_page=2)
    served.do(served.fake.clear_requests)

    items = iter(paginator)
    first = next(items)
    requests_for_first = len(served.do(served.fake.api_requests))
    rest = [r.recording_id for r in items]

    assert isinstance(paginator, Paginator)
    assert requests_for_first == 1
    assert [first.recording_id, *rest] == ["rec_big", *DEMO_RECORDINGS]
    assert len(served.do(served.fake.api_requests)) == 3


def test_pages_and_page(client: Userplane) -> None:
    """pages() walks whole pages and page(n) fetches one; page numbers start at 1."""
    paginator = client.recordings.list(WS, per_page=4)

    sizes = [len(page.items) for page in paginator.pages()]
    second = paginator.page(2)

    assert sizes == [4, 2]
    assert [r.recording_id for r in second.items] == DEMO_RECORDINGS[3:]
    with pytest.raises(ConfigurationError):
        paginator.page(0)


def test_download_calls_progress_on_the_loop_thread(client: Userplane, tmp_path: Path) -> None:
    """download() saves the exact bytes; its progress callback runs on the client's loop thread."""
    seen: list[tuple[int, int | None, int]] = []

    result = client.recordings.download(
        WS,
        "rec_demo_full",
        "video",
        tmp_path,
        progress=lambda done, total: seen.append((done, total, threading.get_ident())),
    )

    callback_threads = {ident for *_, ident in seen}
    assert result.path.read_bytes() == sample("video")
    assert seen[-1][:2] == (len(sample("video")), len(sample("video")))
    assert len(callback_threads) == 1
    assert threading.get_ident() not in callback_threads


def test_stream_yields_bytes_and_the_async_streams_attributes(client: Userplane) -> None:
    """stream() is a context manager whose body iterates over bytes, from an offset too."""
    video = sample("video")

    with client.recordings.stream(WS, "rec_demo_full", ResourceKind.VIDEO) as body:
        whole = b"".join(body)
    with client.recordings.stream(WS, "rec_demo_full", "video", offset=1000) as tail:
        rest = b"".join(tail)

    assert isinstance(body, BlockingResourceStream)
    assert whole == video
    assert (body.content_type, body.size, body.offset) == ("video/webm", len(video), 0)
    assert body.etag
    assert rest == video[1000:]
    assert (tail.size, tail.offset) == (len(video), 1000)
    assert (tail.status, tail.content_range) == (206, f"bytes 1000-{len(video) - 1}/{len(video)}")
    assert repr(tail) == (
        f"BlockingResourceStream(status=206, content_type='video/webm', size={len(video)}, "
        f"offset=1000, content_length={len(video) - 1000})"
    )


def test_stream_a_range(client: Userplane) -> None:
    """range= works as on the async client: the bytes asked for, and what to answer with."""
    video = sample("video")
    with client.recordings.stream(WS, "rec_demo_full", "video", range=ByteRange(0, 1)) as probe:
        assert b"".join(probe) == video[:2]
    assert (probe.status, probe.content_range, probe.content_length) == (
        206,
        f"bytes 0-1/{len(video)}",
        2,
    )


def test_stream_errors_are_typed(client: Userplane) -> None:
    """Opening a stream of an unknown recording raises NotFoundError, and the client goes on."""
    with pytest.raises(NotFoundError), client.recordings.stream(WS, "rec_nope", "video"):
        pytest.fail("the stream opened")

    assert client.workspaces.get(WS).workspace_id == WS


def test_archive(client: Userplane, tmp_path: Path) -> None:
    """archive() saves a workspace and hands its events to on_event."""
    events: list[ArchiveEvent] = []

    report = client.archive(WS, tmp_path, kinds=["thumbnail"], on_event=events.append)

    assert report.counts == {"downloaded": 6}
    saved = tmp_path / WS / "rec_demo_full" / "thumbnail.jpg"
    assert saved.read_bytes() == sample("thumbnail")
    assert sum(isinstance(event, DownloadFinished) for event in events) == 6


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda c: c.workspaces.get("ws_nope"), NotFoundError, id="not-found"),
        pytest.param(lambda c: c.recordings.get(WS, "rec_demo_deleted"), GoneError, id="gone"),
        pytest.param(lambda c: c.projects.get(WS, ".."), InvalidIDError, id="invalid-id"),
        pytest.param(lambda c: c.links.list(WS, per_page=0), ConfigurationError, id="per-page"),
        pytest.param(
            lambda c: c.recordings.stream(WS, "rec_demo_full", "movie"),
            ConfigurationError,
            id="kind",
        ),
    ],
)
def test_errors_are_the_typed_ones(
    client: Userplane, call: Callable[[Userplane], object], error: type[Exception]
) -> None:
    """Errors reach the calling thread as the SDK's own exception types."""
    with pytest.raises(error):
        call(client)


def test_a_notebook_cell_whose_loop_is_running(client: Userplane) -> None:
    """A call from a thread whose own asyncio loop is running works (the client's loop is apart)."""

    async def cell() -> str:
        asyncio.get_running_loop()  # as in a notebook: a loop runs, and the cell blocks it
        return client.workspaces.get(WS).workspace_id

    with ThreadPoolExecutor(1) as worker:
        in_worker = worker.submit(asyncio.run, cell()).result()
    in_this_thread = asyncio.run(cell())

    assert in_worker == in_this_thread == WS


def test_many_threads_share_one_client(client: Userplane) -> None:
    """Eight threads calling one client at once all get their own right answers."""
    barrier = threading.Barrier(8)

    def job(index: int) -> tuple[str, list[str]]:
        barrier.wait()
        recording = DEMO_RECORDINGS[index % len(DEMO_RECORDINGS)]
        ids = [r.recording_id for r in client.recordings.list(WS, per_page=2)]
        return client.recordings.get(WS, recording).recording_id, ids

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, range(8)))

    assert [got for got, _ in results] == [DEMO_RECORDINGS[i % 5] for i in range(8)]
    assert all(ids == ["rec_big", *DEMO_RECORDINGS] for _, ids in results)


def test_close_leaves_no_thread_behind(served: ServedFake, tmp_path: Path) -> None:
    """The loop thread, and the worker threads downloads used, are gone once close() returns."""
    before = set(threading.enumerate())

    with served.client() as client:
        client.recordings.download(WS, "rec_big", "video", tmp_path)
        with client.recordings.stream(WS, "rec_demo_full", "video") as body:
            b"".join(body)
        during = set(threading.enumerate()) - before

    assert during  # the client's loop thread, at least
    assert [t for t in threading.enumerate() if t not in before] == []


def test_a_bad_configuration_leaves_no_thread_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing key raises ConfigurationError from the constructor, and its loop is stopped."""
    monkeypatch.delenv("USERPLANE_API_KEY", raising=False)
    before = set(threading.enumerate())

    with pytest.raises(ConfigurationError, match="USERPLANE_API_KEY"):
        Userplane(base_url="http://127.0.0.1:9/api/v1")

    assert [t for t in threading.enumerate() if t not in before] == []


def test_use_after_close_raises(served: ServedFake) -> None:
    """After close() (twice is fine) every call raises ClientClosedError."""
    client = served.client()
    paginator = client.recordings.list(WS)
    client.close()
    client.close()

    assert client.closed
    assert repr(client) == f"<Userplane base_url={served.fake.base_url!r} closed>"
    with pytest.raises(ClientClosedError):
        client.me()
    with pytest.raises(ClientClosedError):
        list(paginator)
    with pytest.raises(ClientClosedError), client.recordings.stream(WS, "rec_demo_full", "video"):
        pytest.fail("the stream opened")


def test_close_ends_an_open_stream_in_another_thread(served: ServedFake) -> None:
    """close() from one thread ends another thread's stalled stream with ClientClosedError."""
    served.do(lambda: served.fake.script_storage(StallAfter(0), recording_id="rec_big"))
    opened = threading.Event()
    client = served.client()

    def read() -> bytes:
        with client.recordings.stream(WS, "rec_big", "video") as body:
            opened.set()
            return b"".join(body)

    with ThreadPoolExecutor(1) as reader:
        reading = reader.submit(read)
        assert opened.wait(10)
        client.close()
        with pytest.raises(ClientClosedError):
            reading.result(10)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="SIGINT goes to main"
)
def test_keyboard_interrupt_cancels_the_call(served: ServedFake, tmp_path: Path) -> None:
    """Ctrl-C while a download waits cancels it: it unwinds (no file left) before the interrupt
    goes on up, and frees its slot, so the same one-slot client downloads again at once."""
    served.do(lambda: served.fake.script_storage(StallAfter(MIB + 1), recording_id="rec_big"))
    main = threading.main_thread().ident
    assert main is not None
    interrupted = threading.Event()

    def interrupt_once(done: int, total: int | None) -> None:
        if not interrupted.is_set():  # a batch landed, then the body stalls: the main thread waits
            interrupted.set()
            signal.pthread_kill(main, signal.SIGINT)

    with served.client(concurrency=1) as client:
        with pytest.raises(KeyboardInterrupt):
            client.recordings.download(WS, "rec_big", "video", tmp_path, progress=interrupt_once)
        left_behind = sorted(p.name for p in tmp_path.iterdir())
        again = client.recordings.download(WS, "rec_big", "video", tmp_path)

    assert left_behind == []
    assert again.path.read_bytes() == BIG


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_an_error_not_a_hang(client: Userplane) -> None:
    """A client made before a fork (gunicorn --preload) raises in the child instead of hanging:
    the child has the loop's state but not its thread."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, use of fork()"
        pid = os.fork()
    if pid == 0:  # the child: report through the exit code only, never return into pytest
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(10)  # a hang ends the child with SIGALRM
        code = 3
        try:
            client.me()
        except ClientClosedError as exc:
            code = 0 if "another process" in str(exc) else 2
        except BaseException:
            code = 1
        client.close()  # quiet: the loop is the parent's
        os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert client.me().user.id == "usr_default"  # the parent's client is untouched

"""Commands that save files (archive, download, verify, demo) or serve the fake.

``archive``, ``download`` and ``demo`` end cleanly on SIGINT or SIGTERM: the work is cancelled,
the SDK removes its temp files and keeps the manifest whole, and a re-run continues.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio
from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

from .. import (
    ArchiveReport,
    AsyncUserplane,
    ConfigurationError,
    DownloadResult,
    ManifestEntry,
    UserplaneError,
    verify_archive,
)
from .._destination import is_store_url, local_path, shown_url, store_module
from ._bars import LiveReporter
from ._client import client_options
from ._output import Output, human_size, to_json
from ._reporting import JsonReporter, PlainReporter, Reporter

if TYPE_CHECKING:
    from ..testing import FakeUserplane

T = TypeVar("T")

EXIT_OK, EXIT_FAILED = 0, 1
MANIFEST = "manifest.jsonl"  # design §4: DEST/manifest.jsonl


class Interrupted(Exception):
    """SIGINT or SIGTERM cancelled the work."""


@contextmanager
def _signal_receiver() -> Iterator[AsyncIterator[signal.Signals] | None]:
    """SIGINT and SIGTERM as a stream, where this thread may handle signals (else None)."""
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        yield None  # asyncio can handle signals only in the main thread, and not on Windows
        return
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        yield signals


async def interruptible(work: Callable[[], Awaitable[T]]) -> T:
    """``await work()``, cancelled by SIGINT or SIGTERM: then :class:`Interrupted` is raised.

    Errors of ``work`` are re-raised as they are, not wrapped in an exception group.
    """
    results: list[T] = []
    errors: list[Exception] = []
    signalled: list[signal.Signals] = []

    async def cancel_on_signal(signals: AsyncIterator[signal.Signals]) -> None:
        async for number in signals:
            signalled.append(number)
            tasks.cancel_scope.cancel()
            return

    with _signal_receiver() as signals:
        async with anyio.create_task_group() as tasks:
            if signals is not None:
                tasks.start_soon(cancel_on_signal, signals)
            try:
                results.append(await work())
            except Exception as exc:  # re-raised below, outside the task group
                errors.append(_unwrapped(exc))
            tasks.cancel_scope.cancel()
    if signalled:
        raise Interrupted(signalled[0].name)
    if errors:
        raise errors[0]
    return results[0]


def _unwrapped(exc: Exception) -> Exception:
    """The first error of an exception group whose errors are all ours or the OS's.

    Such a group comes from the SDK's task groups when, say, stdout breaks under several
    workers at once; it is one failure, and shows as one ``ErrorType: message``. Any other
    group stays whole. (Duck-typed: ``ExceptionGroup`` is not a builtin on Python 3.10.)
    """
    leaves, pending = [], [exc]
    while pending:
        error = pending.pop()
        inner = getattr(error, "exceptions", None)
        if isinstance(inner, tuple):
            pending.extend(reversed(inner))
        else:
            leaves.append(error)
    if all(isinstance(leaf, (UserplaneError, OSError)) for leaf in leaves):
        first: Exception = leaves[0]
        return first
    return exc


def reporter_for(out: Output) -> Reporter:
    """Bars on a terminal, JSON lines with ``--json``, plain lines otherwise."""
    if out.json_lines:
        return JsonReporter(out)
    return LiveReporter(out) if out.live else PlainReporter(out)


async def archive_into(
    client: AsyncUserplane, workspace_id: str, dest: str, args: argparse.Namespace, out: Output
) -> int:
    """Run one archive with a reporter; 0 if everything reached a final state, else 1."""
    reporter = reporter_for(out)
    try:
        with reporter:
            report: ArchiveReport = await interruptible(
                lambda: client.archive(
                    workspace_id,
                    dest,
                    kinds=args.kinds,
                    recording_ids=getattr(args, "recording_ids", None),
                    concurrency=args.concurrency,
                    on_event=reporter,
                    verify=args.verify,
                )
            )
    except Interrupted:
        reporter.interrupted()
        return EXIT_FAILED
    reporter.finished(report)
    return EXIT_OK if report.ok else EXIT_FAILED


async def archive(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    return await archive_into(client, args.workspace_id, args.dest, args, out)


def demo_home() -> Path:
    """Where ``demo`` keeps its archive by default: one place per user, replaced by each run.

    ``$XDG_CACHE_HOME/userplane-async/demo``, else ``~/.cache/userplane-async/demo``: a cache,
    so the user may delete it, and the disk does not grow however often the demo runs.
    """
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "userplane-async" / "demo"


def _remove_tree(path: Path) -> None:
    """Remove ``path`` and what is in it, if it is there (a symbolic link is refused)."""
    with suppress(FileNotFoundError):
        shutil.rmtree(path)


async def demo(args: argparse.Namespace, out: Output) -> int:
    """Archive the fake's demo workspace; no account, no network beyond 127.0.0.1.

    A ``DEST`` given is archived into like ``archive`` does (a re-run resumes); the default
    place is the demo's own, so the previous demo archive there is replaced.
    """
    dest = args.dest
    if dest is None:
        dest = str(demo_home())
        await anyio.to_thread.run_sync(_remove_tree, Path(dest))
    from ..testing import FakeUserplane  # the fake loads only for the commands that run it

    async with FakeUserplane() as fake:  # its recordings live in memory: nothing to clean up
        workspace_id = fake.seed_demo()
        out.info(f"Started a fake Userplane at {fake.base_url}")
        async with AsyncUserplane(
            fake.api_key, base_url=fake.base_url, **client_options(args)
        ) as client:
            code = await archive_into(client, workspace_id, dest, args, out)
    out.info(f"Look inside {dest}, or check it with: userplane-async verify {shlex.quote(dest)}")
    return code


async def download(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    name = f"{args.recording_id}/{args.kind}"
    with _transfer_bar(out, name) as progress:
        try:
            result: DownloadResult = await interruptible(
                lambda: client.recordings.download(
                    args.workspace_id,
                    args.recording_id,
                    args.kind,
                    args.dest,
                    overwrite=args.overwrite,
                    progress=progress,
                )
            )
        except Interrupted:
            out.error(f"Interrupted: {name} was not saved.")
            return EXIT_FAILED
    if out.json_lines:
        out.json(result)
    elif result.skipped:
        out.print(f"Kept {result.url or result.path}: already there ({human_size(result.size)})")
    else:
        saved = result.url or result.path
        out.print(f"Saved {saved} ({human_size(result.size)}, sha256 {result.sha256})")
    return EXIT_OK


@contextmanager
def _transfer_bar(out: Output, name: str) -> Iterator[Callable[[int, int | None], object]]:
    """A progress callback: a live bar on a terminal, nothing otherwise."""
    if not out.live:
        yield lambda done, total: None
        return
    columns = (*Progress.get_default_columns()[:2], DownloadColumn(True), TransferSpeedColumn())
    with Progress(*columns, console=out.stdout, transient=True) as bar:
        task = bar.add_task(name, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


async def verify(args: argparse.Namespace, out: Output) -> int:
    """Re-hash the files the manifest lists; 1 if any is missing or differs."""
    dest: str | Path
    if is_store_url(args.dest):
        report = await verify_archive(args.dest)
        dest = shown_url(args.dest)
    else:
        dest = Path(local_path(args.dest))
        if not await anyio.Path(dest / MANIFEST).is_file():
            raise FileNotFoundError(f"no {MANIFEST} in {dest}: is it an archive?")
        report = await verify_archive(dest)
    if out.json_lines:
        out.json({**to_json(report), "ok": report.ok})
    else:
        for problem, entries in (("missing", report.missing), ("mismatched", report.mismatched)):
            for entry in entries:
                out.print(f"{problem}: {_where(entry)}")
        out.print(
            f"Checked {report.checked} files in {dest}: {len(report.missing)} missing, "
            f"{len(report.mismatched)} mismatched"
        )
        for workspace_id in sorted({e.workspace_id for e in report.missing + report.mismatched}):
            out.print(
                f"Fetch them again with: userplane-async archive {workspace_id} {dest} --verify"
            )
    return EXIT_OK if report.ok else EXIT_FAILED


async def cleanup(args: argparse.Namespace, out: Output) -> int:
    """Abort our incomplete multipart uploads under an s3:// archive."""
    if not is_store_url(args.dest):
        raise ConfigurationError("cleanup works on s3:// URLs (s3://bucket/prefix)")
    aborted = await store_module().cleanup_uploads(args.dest, older_than=args.older_than)
    if out.json_lines:
        out.json({"aborted": aborted})
    else:
        for key in aborted:
            out.print(f"aborted: {key}")
        out.print(f"Aborted {len(aborted)} incomplete uploads under {shown_url(args.dest)}")
    return EXIT_OK


def _where(entry: ManifestEntry) -> str:
    return f"{entry.path} ({entry.recording_id} {entry.kind})"


async def fake_server(args: argparse.Namespace, out: Output) -> int:
    """Run the fake Userplane, seeded with the demo workspace, until SIGINT or SIGTERM."""
    from ..testing import FakeUserplane

    limits = ((args.rate_limit, 60.0), (args.daily_limit, 86_400.0))

    async def serve() -> None:
        async with FakeUserplane(
            port=args.port, keys_per_user=args.keys, rate_limits=limits
        ) as fake:
            _print_fake_settings(out, fake, fake.seed_demo())
            await anyio.sleep_forever()

    # Serving inside interruptible() catches signals before the settings announce readiness.
    with suppress(Interrupted):
        await interruptible(serve)
    out.info("Stopped.")
    return EXIT_OK


def _print_fake_settings(out: Output, fake: FakeUserplane, workspace_id: str) -> None:
    if out.json_lines:
        out.json(
            {
                "baseUrl": fake.base_url,
                "apiKey": fake.api_key,
                "apiKeys": list(fake.api_keys),
                "workspaceId": workspace_id,
            }
        )
        return
    # Every line is shell: paste it, or eval it, to point the SDK at the fake.
    out.print("# Fake Userplane is running; point the SDK at it with:")
    out.print(f"export USERPLANE_BASE_URL={shlex.quote(fake.base_url)}")
    out.print(f"export USERPLANE_API_KEY={shlex.quote(fake.api_key)}")
    if len(fake.api_keys) > 1:  # one user's keys, e.g. one per process
        out.print(f"export USERPLANE_API_KEYS={shlex.quote(' '.join(fake.api_keys))}")
    out.print(f"# Demo workspace: {workspace_id}. Press Ctrl+C to stop.")

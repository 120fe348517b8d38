"""How an archive run looks without a terminal: plain lines, or JSON lines (``_bars``: on one).

A reporter is the run's ``on_event`` callback; it keeps a tally of the items and recordings
that ended and the bytes that came in, so the bars and the plain progress lines can show how
far the run got, and an interrupted run (no report) can still say so.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

from .. import (
    ArchiveEvent,
    ArchiveFinished,
    ArchiveReport,
    ArchiveStarted,
    DownloadFinished,
    DownloadProgress,
    DownloadRetried,
    ItemFailed,
    ItemStatus,
    ManifestEntry,
    RecordingQueued,
)
from ._output import Output, human_size, to_json

log = logging.getLogger("userplane_async.cli")

#: Statuses in the order summaries list them.
STATUSES = (
    ItemStatus.DOWNLOADED,
    ItemStatus.SKIPPED,
    ItemStatus.UNAVAILABLE,
    ItemStatus.NOT_FOUND,
    ItemStatus.GONE,
    ItemStatus.FAILED,
    ItemStatus.DEFERRED,
)

UNFINISHED = (ItemStatus.FAILED, ItemStatus.DEFERRED)

RERUN_HINT = "run the same command again to continue; finished items are kept"


def counts_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts.get(s)]
    return ", ".join(parts) or "nothing to do"


#: Failed items the summary names one by one; the manifest has them all.
SHOWN_FAILURES = 20

#: Without a terminal, a progress line at least this often (seconds) while bytes come in.
PROGRESS_EVERY = 5.0


def entry_text(entry: ManifestEntry) -> str:
    """``status recording/kind`` plus the size, or why it did not succeed."""
    text = f"{entry.status} {entry.recording_id}/{entry.kind}"
    if entry.status == ItemStatus.DOWNLOADED:
        text += f" ({human_size(entry.size)})"
    reason = reason_text(entry)
    return f"{text}: {reason}" if reason else text


def reason_text(entry: ManifestEntry) -> str:
    """``ErrorType (CODE): message``, as much of it as the entry has."""
    label = " ".join(
        part
        for part in (entry.error_type, f"({entry.error})" if entry.error else None)
        if part and part != f"({entry.error_type})"
    )
    message = entry.message
    if message and entry.error:  # an API error's text starts with its code: say it once
        message = message.removeprefix(f"{entry.error}: ")
    if message:
        return f"{label}: {message}" if label else message
    return label


class Reporter:
    """Base reporter: logs events, keeps the tally, prints nothing."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.counts: dict[str, int] = {}  # items that ended, by status
        self.kinds = 1  # kinds per recording
        self.pending: dict[str, int] = {}  # queued recording -> its kinds not yet ended
        self.recordings_done = 0
        self.saved = 0  # bytes of the downloads that ended well
        self.in_flight: dict[tuple[str, str], tuple[int, int]] = {}  # (done, total) bytes
        self.started = time.monotonic()

    def __enter__(self) -> Reporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, event: ArchiveEvent) -> None:
        log.debug("%r", event)
        if isinstance(event, DownloadRetried):
            log.info(
                "retrying %s/%s (attempt %d): %s",
                event.recording_id,
                event.kind,
                event.attempt,
                event.reason,
            )
        self._tally(event)
        self.show(event)

    def _tally(self, event: ArchiveEvent) -> None:
        if isinstance(event, ArchiveStarted):
            self.kinds, self.started = len(event.kinds), time.monotonic()
        elif isinstance(event, RecordingQueued):
            self.pending[event.recording_id] = self.kinds
        elif isinstance(event, DownloadProgress):
            total = event.total if event.total is not None else event.done
            self.in_flight[(event.recording_id, event.kind)] = (event.done, total)
        elif isinstance(event, (DownloadFinished, ItemFailed)):
            entry = event.entry
            self.counts[entry.status] = self.counts.get(entry.status, 0) + 1
            self.in_flight.pop((entry.recording_id, entry.kind), None)
            if entry.status == ItemStatus.DOWNLOADED:
                self.saved += entry.size or 0
            left = self.pending.get(entry.recording_id, 1) - 1
            self.pending[entry.recording_id] = left
            if left == 0:
                self.recordings_done += 1

    @property
    def bytes_in(self) -> int:
        """Bytes downloaded so far in this run, the downloads in flight included."""
        return self.saved + sum(done for done, _ in self.in_flight.values())

    def progress_text(self) -> str:
        """``progress: 4/5 recordings, 20 items (...), 1.2 MiB in 3.0 s (410.0 KiB/s)``."""
        items = sum(self.counts.values())
        ended = f"{items} {'item' if items == 1 else 'items'}"
        if items:
            ended += f" ({counts_text(self.counts)})"
        elapsed = max(time.monotonic() - self.started, 1e-3)
        amount = self.bytes_in
        return (
            f"progress: {self.recordings_done}/{len(self.pending)} recordings, {ended}, "
            f"{human_size(amount)} in {elapsed:.1f} s ({human_size(int(amount / elapsed))}/s)"
        )

    def show(self, event: ArchiveEvent) -> None:
        """Show one event (subclasses)."""

    def finished(self, report: ArchiveReport) -> None:
        """Show how the run went."""
        out = self.out
        out.print(
            f"Archived {report.workspace_id} into {report.dest}: {counts_text(report.counts)} "
            f"({human_size(report.bytes)} in {report.elapsed:.1f} s, {report.api_calls} API calls)"
        )
        self.problems(report)

    def problems(self, report: ArchiveReport) -> None:
        if report.interrupted:
            self.out.print(f"Stopped early: {report.interrupted}")
        failed = [e for e in report.items if e.status == ItemStatus.FAILED]
        for entry in failed[:SHOWN_FAILURES]:
            self.out.print(f"  {entry_text(entry)}")
        if len(failed) > SHOWN_FAILURES:
            more = len(failed) - SHOWN_FAILURES
            self.out.print(f"  ... and {more} more failed; see the manifest in {report.dest}")
        self._missing(report)
        unfinished = sum(report.counts.get(s, 0) for s in UNFINISHED)
        if unfinished:
            items = "item" if unfinished == 1 else "items"
            self.out.print(f"{unfinished} {items} failed or deferred; a re-run retries them.")

    def _missing(self, report: ArchiveReport) -> None:
        """Name the recordings asked for by ID that are not there (they make the exit 1)."""
        status_of = {e.recording_id: e.status for e in report.items}
        for status, where in (
            (ItemStatus.NOT_FOUND, "Not found in {} (check the ID)"),
            (ItemStatus.GONE, "Deleted from {}"),
        ):
            ids = [r for r in report.missing_recordings if status_of.get(r) == status]
            if ids:
                shown = ", ".join(ids[:SHOWN_FAILURES])
                more = f" and {len(ids) - SHOWN_FAILURES} more" if len(ids) > SHOWN_FAILURES else ""
                self.out.print(f"{where.format(report.workspace_id)}: {shown}{more}")

    def interrupted(self) -> None:
        """Say the run was cut short, how far it got, and that a re-run continues."""
        done = counts_text(self.counts) if self.counts else "no item finished"
        self.out.error(f"Interrupted after {done}; {RERUN_HINT}.")


class JsonReporter(Reporter):
    """Every event as a JSON line; the last one (``ArchiveFinished``) carries the report."""

    def show(self, event: ArchiveEvent) -> None:
        fields = to_json(event)
        if isinstance(event, ArchiveFinished):
            fields["report"]["ok"] = event.report.ok
        self.out.json({"event": type(event).__name__, **fields})

    def finished(self, report: ArchiveReport) -> None:
        return None  # ArchiveFinished has said it all

    def interrupted(self) -> None:
        self.out.json({"event": "ArchiveInterrupted", "counts": self.counts})
        super().interrupted()


class PlainReporter(Reporter):
    """One line per item that ended, a progress line per recording that ended and at least
    every :data:`PROGRESS_EVERY` seconds while bytes come in (neither with ``-q``), then a
    summary: a log of a long run shows it moving."""

    def __init__(self, out: Output) -> None:
        super().__init__(out)
        self._last_progress = time.monotonic()

    def show(self, event: ArchiveEvent) -> None:
        if isinstance(event, ArchiveStarted):
            self.out.info(f"Archiving {event.workspace_id} into {event.dest}")
            self._last_progress = time.monotonic()
        elif isinstance(event, (DownloadFinished, ItemFailed)):
            if isinstance(event, ItemFailed) or not self.out.quiet:
                self.out.print(entry_text(event.entry))
            if self.pending.get(event.entry.recording_id) == 0:
                self._progress()
        elif (
            isinstance(event, DownloadProgress)
            and time.monotonic() - self._last_progress >= PROGRESS_EVERY
        ):
            self._progress()

    def _progress(self) -> None:
        self.out.info(self.progress_text())
        self._last_progress = time.monotonic()

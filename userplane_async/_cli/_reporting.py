"""How an archive run looks: progress bars on a terminal, plain lines, or JSON lines.

A reporter is the run's ``on_event`` callback; it keeps a tally of the items that ended, so an
interrupted run (no report) can still say how far it got.
"""

from __future__ import annotations

import logging
from types import TracebackType

from rich.console import Group
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from .. import (
    ArchiveEvent,
    ArchiveFinished,
    ArchiveReport,
    ArchiveStarted,
    DownloadFinished,
    DownloadProgress,
    DownloadRetried,
    DownloadStarted,
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
    if entry.message:
        return f"{label}: {entry.message}" if label else entry.message
    return label


class Reporter:
    """Base reporter: logs events, keeps the tally, prints nothing."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.counts: dict[str, int] = {}

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
        if isinstance(event, (DownloadFinished, ItemFailed)):
            status = event.entry.status
            self.counts[status] = self.counts.get(status, 0) + 1
        self.show(event)

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
            self.out.print(f"  ... and {more} more failed; see {report.dest / 'manifest.jsonl'}")
        if not report.ok:
            unfinished = sum(report.counts.get(s, 0) for s in UNFINISHED)
            items = "item" if unfinished == 1 else "items"
            self.out.print(f"{unfinished} {items} failed or deferred; a re-run retries them.")

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
    """One line per item that ended (none with ``-q``), then a summary."""

    def show(self, event: ArchiveEvent) -> None:
        if isinstance(event, ArchiveStarted):
            self.out.info(f"Archiving {event.workspace_id} into {event.dest}")
        elif isinstance(event, ItemFailed) or (
            isinstance(event, DownloadFinished) and not self.out.quiet
        ):
            self.out.print(entry_text(event.entry))


class _AmountColumn(ProgressColumn):
    """``3/5`` for the count task, bytes for the others."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn(binary_units=True)

    def render(self, task: Task) -> Text:
        if task.fields.get("unit"):
            total = "?" if task.total is None else str(int(task.total))
            return Text(f"{int(task.completed)}/{total}")
        return self._bytes.render(task)


class _SpeedColumn(TransferSpeedColumn):
    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("unit") else super().render(task)


#: Names keep one width, so bars do not jump as downloads come and go.
_NAME_COLUMN = Column(width=30, no_wrap=True, overflow="ellipsis")


class LiveReporter(Reporter):
    """Rich progress bars: recordings, bytes, and one bar per download in flight."""

    def __init__(self, out: Output) -> None:
        super().__init__(out)
        self.progress = Progress(
            TextColumn("{task.description}", table_column=_NAME_COLUMN),
            BarColumn(),
            _AmountColumn(),
            _SpeedColumn(),
            TimeRemainingColumn(),
            console=out.stdout,
        )
        self._recordings = self.progress.add_task("recordings", total=0, unit="recordings")
        self._bytes = self.progress.add_task("bytes", total=None)
        self._kinds = 1
        self._pending: dict[str, int] = {}  # recording -> kinds not yet ended
        self._active: dict[tuple[str, str], TaskID] = {}
        self._sizes: dict[tuple[str, str], tuple[int, int]] = {}  # (done, total) in flight
        self._saved = 0  # bytes of the downloads that ended well

    def __enter__(self) -> LiveReporter:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._active.values():
            self.progress.remove_task(task)
        self.progress.stop()

    def show(self, event: ArchiveEvent) -> None:
        if isinstance(event, ArchiveStarted):
            self._kinds = len(event.kinds)
        elif isinstance(event, RecordingQueued):
            self._pending[event.recording_id] = self._kinds
            self.progress.update(self._recordings, total=len(self._pending))
        elif isinstance(event, DownloadStarted):
            key = (event.recording_id, event.kind)
            self._active[key] = self.progress.add_task(
                f"  {event.recording_id}/{event.kind}", total=None
            )
        elif isinstance(event, DownloadProgress):
            self._progressed(event)
        elif isinstance(event, (DownloadFinished, ItemFailed)):
            self._ended(event)
        elif isinstance(event, ArchiveFinished):  # items done earlier send no events
            self.progress.update(self._recordings, completed=len(self._pending))

    def _progressed(self, event: DownloadProgress) -> None:
        key = (event.recording_id, event.kind)
        total = event.total if event.total is not None else event.done
        self._sizes[key] = (event.done, total)
        if key in self._active:
            self.progress.update(self._active[key], completed=event.done, total=event.total)
        self._update_bytes()

    def _ended(self, event: DownloadFinished | ItemFailed) -> None:
        entry = event.entry
        key = (entry.recording_id, entry.kind)
        self._sizes.pop(key, None)
        if key in self._active:
            self.progress.remove_task(self._active.pop(key))
        if entry.status == ItemStatus.DOWNLOADED:
            self._saved += entry.size or 0
        self._update_bytes()
        if isinstance(event, ItemFailed):
            self.progress.console.print(Text(entry_text(entry), style="red"))
        left = self._pending.get(entry.recording_id, 1) - 1
        self._pending[entry.recording_id] = left
        if left == 0:
            self.progress.advance(self._recordings)

    def _update_bytes(self) -> None:
        done = self._saved + sum(done for done, _ in self._sizes.values())
        total = self._saved + sum(total for _, total in self._sizes.values())
        self.progress.update(self._bytes, completed=done, total=total or None)

    def finished(self, report: ArchiveReport) -> None:
        table = Table(title=f"{report.workspace_id} → {report.dest}", title_justify="left")
        table.add_column("status")
        table.add_column("items", justify="right")
        for status in STATUSES:
            if report.counts.get(status):
                style = "red" if status in UNFINISHED else None
                table.add_row(status, str(report.counts[status]), style=style)
        footer = Text(
            f"{human_size(report.bytes)} in {report.elapsed:.1f} s, {report.api_calls} API calls"
        )
        self.out.print(Group(table, footer))
        self.problems(report)


def reporter_for(out: Output) -> Reporter:
    if out.json_lines:
        return JsonReporter(out)
    return LiveReporter(out) if out.live else PlainReporter(out)

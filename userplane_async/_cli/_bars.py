"""Rich progress bars for an archive run on a terminal, and its summary as a table."""

from __future__ import annotations

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
    DownloadFinished,
    DownloadProgress,
    DownloadStarted,
    ItemFailed,
    RecordingQueued,
)
from ._output import Output, human_size
from ._reporting import STATUSES, UNFINISHED, Reporter, entry_text


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
        self._active: dict[tuple[str, str], TaskID] = {}

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
        if isinstance(event, RecordingQueued):
            self.progress.update(self._recordings, total=len(self.pending))
        elif isinstance(event, DownloadStarted):
            key = (event.recording_id, event.kind)
            self._active[key] = self.progress.add_task(
                f"  {event.recording_id}/{event.kind}", total=None
            )
        elif isinstance(event, DownloadProgress):
            key = (event.recording_id, event.kind)
            if key in self._active:
                self.progress.update(self._active[key], completed=event.done, total=event.total)
            self._update_bytes()
        elif isinstance(event, (DownloadFinished, ItemFailed)):
            self._ended(event)
        elif isinstance(event, ArchiveFinished):  # items done earlier send no events
            self.progress.update(self._recordings, completed=len(self.pending))

    def _ended(self, event: DownloadFinished | ItemFailed) -> None:
        entry = event.entry
        key = (entry.recording_id, entry.kind)
        if key in self._active:
            self.progress.remove_task(self._active.pop(key))
        self._update_bytes()
        if isinstance(event, ItemFailed):
            self.progress.console.print(Text(entry_text(entry), style="red"))
        self.progress.update(self._recordings, completed=self.recordings_done)

    def _update_bytes(self) -> None:
        total = self.saved + sum(total for _, total in self.in_flight.values())
        self.progress.update(self._bytes, completed=self.bytes_in, total=total or None)

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

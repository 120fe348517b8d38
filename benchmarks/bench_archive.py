"""``client.archive()`` against the fake: is it as fast as the API budget allows, and lean?

``nox -s bench`` runs two scenarios; ``python benchmarks/bench_archive.py [--recordings N]
[--rate R] [--factor F] [--memory-recordings M] [--dir D] [--scenario budget|memory|both]``
gives a quick look (``BENCH_ARCHIVE_RECORDINGS``, ``BENCH_ARCHIVE_RATE``,
``BENCH_ARCHIVE_FACTOR``, ``BENCH_ARCHIVE_MEMORY_RECORDINGS`` and ``BENCH_ARCHIVE_DIR`` set the
same under pytest).

``bench_archive_budget``: N recordings (default 200), all five resources captured with a few
KiB each, against a fake limited to R calls per minute (default 120) plus 10,000 a day; the
client has ``RateLimit(per_minute=R, per_day=10_000)``. Both run on ``ScaledClock(F)`` (each
process its own clock, the same factor), so a minute of either's window lasts ``60/F`` real
seconds; F is chosen so the run takes about 20 s unless given. performance.md's lever 6: the
archive's floor is (API calls) / (allowed rate), so the table holds the wall time on the
scaled clock against that floor, the calls per recording, the fake's 429 count, and the
client's peak RSS.

``bench_archive_memory``: M listed recordings (default 10,000), one kind (the thumbnail,
1 KiB) plus each recording's ``recording.json``, with no rate limit on either side so it is
quick; the listing must be complete (every recording archived). Prints wall time, files/s
and the client's peak RSS.

As in ``bench_download.py``, the fake runs in a process of its own and the client in another,
spawned and reaped by a tiny launcher, so the peak RSS (``ru_maxrss`` from ``os.wait4``)
belongs to the client alone. Every run writes into a fresh directory, removed afterwards, and
every saved file is checked (size and sha256) against what the fake serves. Targets are
printed as PASS/FAIL lines; only an incomplete or wrong archive fails the benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from processes import Usage, run_measured, stop, tail

HERE = Path(__file__).resolve().parent
SERVER = HERE / "archive_server.py"
CLIENT = HERE / "archive_client.py"
MIB = 1024 * 1024
KINDS = 5
PER_PAGE = 20  # the archiver lists 20 recordings per call
SERVER_TIMEOUT = 120.0  # seeding 10,000 recordings takes a few seconds
MEMORY_TIMEOUT = 900.0  # a healthy 10,000-recording run takes well under a minute
TARGET_REAL_SECONDS = 20.0  # what the automatic clock factor aims the budget run at
MAX_FACTOR = 50  # above this, a millisecond of real latency becomes too many scaled seconds
RSS_LIMIT_MIB = 64
MEMORY_KINDS = ("thumbnail",)
MEMORY_CONTENT = 1024


@dataclass(frozen=True)
class Settings:
    recordings: int = 200
    rate: int = 120
    factor: float | None = None  # None: chosen so the budget run takes about 20 s
    memory_recordings: int = 10_000
    root: str | None = None  # where the fresh per-run directories go (default: the temp dir)

    @classmethod
    def from_env(cls) -> Settings:
        factor = os.environ.get("BENCH_ARCHIVE_FACTOR")
        return cls(
            recordings=int(os.environ.get("BENCH_ARCHIVE_RECORDINGS", "200")),
            rate=int(os.environ.get("BENCH_ARCHIVE_RATE", "120")),
            factor=float(factor) if factor else None,
            memory_recordings=int(os.environ.get("BENCH_ARCHIVE_MEMORY_RECORDINGS", "10000")),
            root=os.environ.get("BENCH_ARCHIVE_DIR") or None,
        )

    def calls_needed(self) -> int:
        """Resolves of every resource plus the list pages: no Get Recording, no retries."""
        return KINDS * self.recordings + math.ceil(self.recordings / PER_PAGE)

    def floor_seconds(self, calls: int) -> float:
        """performance.md's floor: ``calls`` at ``rate`` per minute (seconds, scaled clock)."""
        return calls / self.rate * 60.0

    def clock_factor(self) -> float:
        if self.factor is not None:
            return self.factor
        wanted = self.floor_seconds(self.calls_needed()) / TARGET_REAL_SECONDS
        return float(max(1, min(MAX_FACTOR, round(wanted))))


# --- processes -------------------------------------------------------------------------------


class Server:
    """The fake in its own process: what it announced, and what it saw once stopped."""

    def __init__(self, process: subprocess.Popen[bytes], err: IO[bytes]) -> None:
        self._process = process
        self._err = err
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], SERVER_TIMEOUT)
        line = process.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the fake server did not start:\n{tail(err)}")
        self.info: dict[str, Any] = json.loads(line)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server so far, from ``/proc``."""
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def finish(self) -> dict[str, Any]:
        """Stop the server (its stdin closes) and return the summary it printed last."""
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop(process)
            raise TimeoutError("the fake server did not stop") from None
        line = process.stdout.read().strip()  # one short line: it fits in the pipe
        if process.returncode != 0 or not line:
            raise RuntimeError(f"the fake server failed:\n{tail(self._err)}")
        summary: dict[str, Any] = json.loads(line)
        return summary


@contextmanager
def fake_server(*options: str) -> Iterator[Server]:
    """``archive_server.py`` with ``options``; stopped (killed if need be) in all cases."""
    argv = [sys.executable, str(SERVER), *options]
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        try:
            yield Server(process, err)
        finally:
            if process.poll() is None:
                assert process.stdin is not None
                if not process.stdin.closed:
                    process.stdin.close()  # the server's signal to stop
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    stop(process)
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()


def client_env(server: Server) -> dict[str, str]:
    return {
        **os.environ,
        "USERPLANE_API_KEY": server.info["api_key"],
        "USERPLANE_BASE_URL": server.info["base_url"],
    }


# --- checking the archive --------------------------------------------------------------------


def check_archive(dest: Path, server: Server, kinds: Sequence[str]) -> Counter[str]:
    """Every listed recording has its metadata and one verified file per kind; files by kind."""
    workspace = dest / server.info["workspace_id"]
    expected: dict[str, dict[str, Any]] = server.info["files"]
    recordings = sorted(workspace.iterdir()) if workspace.is_dir() else []
    found: Counter[str] = Counter()
    for directory in recordings:
        names = {path.name.partition(".")[0]: path for path in directory.iterdir()}
        assert names.keys() == {"recording", *kinds}, f"{directory.name} holds {sorted(names)}"
        json.loads(names.pop("recording").read_bytes())
        found["recording.json"] += 1
        for kind, path in names.items():
            data = path.read_bytes()
            assert len(data) == expected[kind]["size"], f"{path} has {len(data)} bytes"
            assert hashlib.sha256(data).hexdigest() == expected[kind]["sha256"], f"{path} differs"
            found[kind] += 1
    assert len(recordings) == server.info["recordings"], (
        f"{len(recordings)} of {server.info['recordings']} recordings were archived"
    )
    lines = (dest / "manifest.jsonl").read_bytes().count(b"\n")
    assert lines == len(recordings) * len(kinds), f"the manifest has {lines} lines"
    return found


def _by_kind(found: Counter[str]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(found.items()))


def _check(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'FAIL'}  {text}"


def _load_warning() -> list[str]:
    if os.getloadavg()[0] > 1.0:  # a whole core of 2 was taken by something else
        return ["WARNING: the machine was busy before the run: the figures are noisy"]
    return []


def _fresh(settings: Settings, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=settings.root))


# --- scenario 1: the API budget --------------------------------------------------------------


def run_budget(settings: Settings) -> str:
    """Archive ``settings.recordings`` recordings within ``settings.rate`` calls a minute."""
    factor = settings.clock_factor()
    warnings = _load_warning()
    root = _fresh(settings, "bench-archive-budget-")
    try:
        scaled = ["--rate", str(settings.rate), "--factor", str(factor)]
        with fake_server("--recordings", str(settings.recordings), *scaled) as server:
            # Real time the floor takes, tripled, plus a minute: far above any healthy run.
            timeout = 3 * settings.floor_seconds(settings.calls_needed()) / factor + 60
            argv = [sys.executable, str(CLIENT), server.info["workspace_id"], str(root), *scaled]
            server_cpu = server.cpu_seconds()  # start-up and seeding excluded
            out, usage = run_measured(argv, client_env(server), timeout, "the archive client")
            server_cpu = server.cpu_seconds() - server_cpu
            seen = {**server.finish(), "cpu": server_cpu}
        result: dict[str, Any] = json.loads(out)
        found = check_archive(root, server, list(server.info["files"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return budget_report(settings, factor, result, seen, found, usage, warnings)


def budget_report(
    settings: Settings,
    factor: float,
    result: dict[str, Any],
    seen: dict[str, Any],
    found: Counter[str],
    usage: Usage,
    warnings: list[str],
) -> str:
    n, calls = settings.recordings, int(result["api_calls"])
    wall, floor = float(result["scaled_seconds"]), settings.floor_seconds(calls)
    routes: dict[str, int] = seen["routes"]
    allowed = settings.calls_needed()
    rss = usage.max_rss_kib / 1024
    rows = [
        ("scaled wall time", f"{wall:,.1f} s", f"{result['real_seconds']:.1f} s real"),
        ("floor: calls / rate", f"{floor:,.1f} s", f"{calls:,} calls / {settings.rate} per min"),
        ("wall / floor", f"{wall / floor:.3f}x", ""),
        (
            "fake: first to last call",
            f"{seen['api_span']:,.1f} s",
            f"busiest 60 s: {seen['busiest_minute']} calls",
        ),
        (
            "API calls per recording",
            f"{calls / n:.3f}",
            f"list {routes.get('recordings.list', 0)}, get {routes.get('recordings.get', 0)}, "
            f"resolve {routes.get('recordings.resource', 0)}; fake saw {seen['api_requests']}",
        ),
        ("429s from the fake", f"{seen['rate_limited']}", ""),
        ("client peak RSS", f"{rss:.1f} MiB", f"{usage.cpu_seconds:.2f} CPU s"),
        ("fake server CPU", f"{seen['cpu']:.2f} s", f"of {result['real_seconds']:.1f} s real"),
    ]
    lines = [
        f"\nArchive of {n:,} recordings x {KINDS} resources (a few KiB each), "
        f"{settings.rate} calls/min + 10,000/day on both sides, ScaledClock({factor:g})",
        f"files saved: {sum(found.values()):,} ({_by_kind(found)})",
        *(f"{name:<26} {value:>12}   {note}".rstrip() for name, value, note in rows),
        _check(wall <= 1.05 * floor, f"wall <= 1.05 x floor: {wall / floor:.3f}x"),
        _check(seen["rate_limited"] == 0, f"zero 429s: {seen['rate_limited']}"),
        _check(
            calls <= allowed,
            f"calls per recording <= 5 + 1/{PER_PAGE}: {calls / n:.3f} "
            f"({calls:,} calls, at most {allowed:,})",
        ),
        *warnings,
    ]
    if result["interrupted"] or result["failures"]:
        lines.append(f"NOTE: interrupted={result['interrupted']} failures={result['failures']}")
    return "\n".join(lines)


# --- scenario 2: memory over a large listing -------------------------------------------------


def run_memory(settings: Settings) -> str:
    """Archive ``settings.memory_recordings`` listed recordings with no rate limit."""
    n = settings.memory_recordings
    warnings = _load_warning()
    root = _fresh(settings, "bench-archive-memory-")
    try:
        options = ["--recordings", str(n), "--content", str(MEMORY_CONTENT)]
        with fake_server(*options) as server:
            argv = [
                *(sys.executable, str(CLIENT), server.info["workspace_id"], str(root)),
                *("--rate", "0", "--kinds", ",".join(MEMORY_KINDS)),
            ]
            server_cpu = server.cpu_seconds()  # start-up and seeding excluded
            out, usage = run_measured(
                argv, client_env(server), MEMORY_TIMEOUT, "the archive client"
            )
            server_cpu = server.cpu_seconds() - server_cpu
            seen = {**server.finish(), "cpu": server_cpu}
        result: dict[str, Any] = json.loads(out)
        found = check_archive(root, server, MEMORY_KINDS)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    seconds, rss = float(result["real_seconds"]), usage.max_rss_kib / 1024
    files = sum(found.values())
    pages = seen["routes"].get("recordings.list", 0)
    lines = [
        f"\nArchive of {n:,} listed recordings, no rate limit: only {', '.join(MEMORY_KINDS)} "
        f"({MEMORY_CONTENT:,} bytes each) plus recording.json, to keep it quick",
        f"{'recordings archived':<26} {found['recording.json']:>12,}   "
        f"of {n:,} listed, in {pages} list pages",
        f"{'wall time':<26} {seconds:>10.1f} s   {n / seconds:,.0f} recordings/s",
        f"{'files/s':<26} {files / seconds:>12,.0f}   {files:,} files ({_by_kind(found)})",
        f"{'API calls':<26} {result['api_calls']:>12,}   {result['api_calls'] / n:.3f} per recording",
        f"{'client peak RSS':<26} {rss:>8.1f} MiB   {usage.cpu_seconds:.1f} CPU s",
        f"{'fake server CPU':<26} {seen['cpu']:>10.1f} s   of {seconds:.1f} s real (2 vCPUs shared)",
        _check(rss <= RSS_LIMIT_MIB, f"peak RSS <= {RSS_LIMIT_MIB} MiB: {rss:.1f} MiB"),
        *warnings,
    ]
    return "\n".join(lines)


# --- entry points ----------------------------------------------------------------------------


@pytest.mark.timeout(900)
def bench_archive_budget(capsys: pytest.CaptureFixture[str]) -> None:
    """An archive within 120 calls/min, on a scaled clock; prints the table and the targets."""
    text = run_budget(Settings.from_env())
    with capsys.disabled():
        print(text)


@pytest.mark.timeout(1800)
def bench_archive_memory(capsys: pytest.CaptureFixture[str]) -> None:
    """Peak RSS while archiving 10,000 listed recordings; prints wall time and files/s."""
    text = run_memory(Settings.from_env())
    with capsys.disabled():
        print(text)


def main() -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(description="client.archive() against the fake.")
    parser.add_argument("--recordings", type=int, default=defaults.recordings)
    parser.add_argument("--rate", type=int, default=defaults.rate, help="calls per minute")
    parser.add_argument(
        "--factor", type=float, default=defaults.factor, help="ScaledClock factor (default: auto)"
    )
    parser.add_argument("--memory-recordings", type=int, default=defaults.memory_recordings)
    parser.add_argument("--dir", default=defaults.root, help="where run directories go")
    parser.add_argument("--scenario", choices=("budget", "memory", "both"), default="both")
    args = parser.parse_args()
    if args.recordings < 1 or args.rate < 1 or args.memory_recordings < 1:
        parser.error("--recordings, --rate and --memory-recordings must be at least 1")
    if args.factor is not None and args.factor <= 0:
        parser.error("--factor must be positive")
    settings = Settings(
        recordings=args.recordings,
        rate=args.rate,
        factor=args.factor,
        memory_recordings=args.memory_recordings,
        root=args.dir,
    )
    if args.scenario in ("budget", "both"):
        print(run_budget(settings), flush=True)
    if args.scenario in ("memory", "both"):
        print(run_memory(settings), flush=True)


if __name__ == "__main__":
    main()

"""One 1 GiB video saved to disk by curl, a naive aiohttp loop and the SDK, side by side.

``nox -s bench`` runs it as ``bench_download_1gib``; ``python benchmarks/bench_download.py
[--runs N] [--size-mib M] [--dir D]`` gives a quick look (``BENCH_DOWNLOAD_RUNS``,
``BENCH_DOWNLOAD_SIZE_MIB`` and ``BENCH_DOWNLOAD_DIR`` set the same under pytest).

The fake Userplane serves the video from a process of its own, and each client runs in a
process of its own, so every peak RSS (``ru_maxrss`` from ``os.wait4``) belongs to that client
alone. Times are of the transfer only: curl's ``time_total``, and the Python clients' own
clocks started after their imports. Every run writes into a fresh directory (performance.md's
ext4 trap), starts after an ``os.sync()``, and its file is checked (size and sha256), then
deleted. The targets are printed as PASS/FAIL lines; only a wrong file fails the benchmark.

Besides MiB/s, its ratios and peak RSS, the table shows each client's CPU seconds (start-up
included) and a ``(curl+fsync)`` row: curl's time plus an fsync of its file afterwards, the
like-for-like reference for the SDK, which fsyncs before its atomic rename.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from processes import Usage, run_measured, tail

from userplane_async import AsyncUserplane, RateLimit

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
CHILD_TIMEOUT = 180.0  # one transfer, or the server's start-up; far above any healthy run
CURL = ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*"]
CLIENT = HERE / "download_clients.py"


@dataclass(frozen=True)
class Settings:
    runs: int = 3
    size: int = 1 << 30
    root: str | None = None  # where the fresh per-run directories go (default: the temp dir)

    @classmethod
    def from_env(cls) -> Settings:
        root = os.environ.get("BENCH_DOWNLOAD_DIR")
        return cls(
            runs=int(os.environ.get("BENCH_DOWNLOAD_RUNS", "3")),
            size=int(os.environ.get("BENCH_DOWNLOAD_SIZE_MIB", "1024")) * MIB,
            root=root or None,
        )


@dataclass(frozen=True)
class Server:
    base_url: str
    api_key: str
    workspace_id: str
    recording_id: str
    pid: int = 0


@dataclass
class Runs:
    """What one client did over all runs: MiB/s and CPU seconds of each, the largest peak RSS."""

    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    max_rss_kib: int = 0

    def add(self, size: int, seconds: float, usage: Usage) -> None:
        self.rates.append(size / MIB / seconds)
        self.cpu.append(usage.cpu_seconds)
        self.max_rss_kib = max(self.max_rss_kib, usage.max_rss_kib)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


# --- processes -------------------------------------------------------------------------------


def run_child(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[str, Usage]:
    """Run one client to the end: its standard output and what it used."""
    return run_measured(argv, env, CHILD_TIMEOUT, " ".join(argv[:3]))


@contextmanager
def fake_server(size: int) -> Iterator[Server]:
    """The fake in its own process, seeded with a ``size``-byte video; stopped in all cases."""
    argv = [sys.executable, str(HERE / "download_server.py"), "--size", str(size)]
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            ready, _, _ = select.select([process.stdout], [], [], CHILD_TIMEOUT)
            line = process.stdout.readline() if ready else b""
            if not line:
                raise RuntimeError(f"the fake server did not start:\n{tail(err)}")
            yield Server(**json.loads(line), pid=process.pid)
        finally:
            process.stdin.close()  # the server's signal to stop
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


async def _resolve(server: Server) -> str:
    unlimited = RateLimit(per_minute=None, per_day=None)
    async with AsyncUserplane(server.api_key, base_url=server.base_url, rate_limit=unlimited) as c:
        resource = await c.recordings.resource(server.workspace_id, server.recording_id, "video")
    assert resource.url is not None
    return resource.url


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fresh_url(server: Server) -> str:
    """A presigned URL resolved through the API just before use (URLs are single-use)."""
    return asyncio.run(_resolve(server))


# --- one run of each client ------------------------------------------------------------------


def curl_ceiling(server: Server) -> tuple[float, int]:
    """What the server pushes: curl into /dev/null (seconds, bytes)."""
    argv = [*CURL, "-o", os.devnull, "-w", "%{time_total} %{size_download}", fresh_url(server)]
    seconds, size = run_child(argv)[0].split()
    return float(seconds), int(size)


@dataclass(frozen=True)
class Sample:
    """One client's run: transfer seconds, what its process used, and the file it saved."""

    seconds: float
    usage: Usage
    path: Path
    sha256: str | None = None  # as the client reported it


def curl(server: Server, directory: Path) -> Sample:
    path = directory / "video.webm"
    argv = [*CURL, "-o", str(path), "-w", "%{time_total}", fresh_url(server)]
    out, usage = run_child(argv)
    return Sample(float(out), usage, path)


def naive(server: Server, directory: Path) -> Sample:
    path = directory / "video.webm"
    argv = [sys.executable, str(CLIENT), "naive", fresh_url(server), str(path)]
    out, usage = run_child(argv)
    return Sample(float(json.loads(out)["seconds"]), usage, path)


def sdk(server: Server, directory: Path) -> Sample:
    env = {
        **os.environ,
        "USERPLANE_API_KEY": server.api_key,
        "USERPLANE_BASE_URL": server.base_url,
        "BENCH_WORKSPACE_ID": server.workspace_id,
        "BENCH_RECORDING_ID": server.recording_id,
    }
    out, usage = run_child([sys.executable, str(CLIENT), "sdk", str(directory)], env)
    report = json.loads(out)
    return Sample(float(report["seconds"]), usage, Path(report["path"]), str(report["sha256"]))


CLIENTS: dict[str, Callable[[Server, Path], Sample]] = {
    "curl": curl,
    "naive loop": naive,
    "SDK": sdk,
}


def _fsync_seconds(path: Path) -> float:
    started = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(MIB):
            hasher.update(block)
    return hasher.hexdigest()


# --- the whole benchmark ---------------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings
    server: Server
    root: Path
    results: dict[str, Runs] = field(default_factory=lambda: {c: Runs() for c in CLIENTS})
    curl_fsync: Runs = field(default_factory=Runs)
    ceiling: list[float] = field(default_factory=list)  # MiB/s of curl into /dev/null
    load: list[float] = field(default_factory=list)  # 1-minute load average before and after
    served: int = 0  # bytes the server sent
    sha256: str | None = None  # of the first verified file; every other file must match

    def run_once(self, client: str, number: int) -> None:
        os.sync()  # no earlier run's dirty pages are written back during this one
        directory = Path(tempfile.mkdtemp(prefix=f"run{number}-", dir=self.root))
        try:
            sample = CLIENTS[client](self.server, directory)
            self.served += self.settings.size
            self.verify(client, sample, directory)
            self.results[client].add(self.settings.size, sample.seconds, sample.usage)
            if client == "curl":  # curl does not fsync, the SDK does: show what that costs
                fsync = _fsync_seconds(sample.path)
                self.curl_fsync.add(self.settings.size, sample.seconds + fsync, sample.usage)
        finally:
            shutil.rmtree(directory)

    def verify(self, client: str, sample: Sample, directory: Path) -> None:
        assert sample.path.parent == directory, f"{client} saved {sample.path}"
        size = sample.path.stat().st_size
        assert size == self.settings.size, f"{client} saved {size} bytes"
        digest = sha256_of(sample.path)
        self.sha256 = self.sha256 or digest
        assert digest == self.sha256, f"{client} saved different bytes than the others"
        assert sample.sha256 in (None, digest), f"{client} reported a wrong sha256"

    def measure_ceiling(self) -> None:
        for _ in range(self.settings.runs):
            seconds, size = curl_ceiling(self.server)
            self.ceiling.append(size / MIB / seconds)
            self.served += size

    def run(self) -> None:
        self.load.append(os.getloadavg()[0])
        self.measure_ceiling()
        names = list(CLIENTS)
        for number in range(self.settings.runs):
            shift = number % len(CLIENTS)  # rotate the order so no client always goes first
            for client in names[shift:] + names[:shift]:
                self.run_once(client, number)
        self.load.append(os.getloadavg()[0])


def report(bench: Bench, server_cpu: float) -> str:
    settings, results = bench.settings, bench.results
    curl_rate, naive_rate = results["curl"].median, results["naive loop"].median
    ceiling = statistics.median(bench.ceiling)
    lines = [
        f"\n{settings.size / MIB:,.0f} MiB to disk over 127.0.0.1, median of {settings.runs} runs",
        f"server: {ceiling:,.0f} MiB/s into curl -o /dev/null; "
        f"{server_cpu / (bench.served / 1024 / MIB):.2f} CPU s per GiB served",
        "1-minute load average before, after: " + ", ".join(f"{x:.2f}" for x in bench.load),
        f"{'client':<12} {'MiB/s':>7} {'x curl':>7} {'x naive':>8} {'peak RSS MiB':>13} "
        f"{'CPU s':>6}   MiB/s of each run",
    ]
    for name, runs in [*results.items(), ("(curl+fsync)", bench.curl_fsync)]:
        each = " ".join(f"{rate:,.0f}" for rate in runs.rates)
        lines.append(
            f"{name:<12} {runs.median:>7,.0f} {runs.median / curl_rate:>6.2f}x "
            f"{runs.median / naive_rate:>7.2f}x {runs.max_rss_kib / 1024:>13.1f} "
            f"{statistics.median(runs.cpu):>6.2f}   {each}"
        )
    sdk_rate, sdk_rss = results["SDK"].median, results["SDK"].max_rss_kib / 1024
    checks = [
        (sdk_rate >= curl_rate, f"SDK >= 1.0x curl: {sdk_rate / curl_rate:.2f}x"),
        (sdk_rate >= 2.5 * naive_rate, f"SDK >= 2.5x naive: {sdk_rate / naive_rate:.2f}x"),
        (sdk_rss <= 64, f"SDK peak RSS <= 64 MiB: {sdk_rss:.1f} MiB"),
    ]
    lines += [f"{'PASS' if passed else 'FAIL'}  {text}" for passed, text in checks]
    if ceiling < 1.5 * max(runs.median for runs in results.values()):
        lines.append("WARNING: the server ceiling is within 1.5x of a client: it may be the limit")
    if bench.load[0] > 1.0:  # a whole core of 2 was taken by something else
        lines.append("WARNING: the machine was busy before the run: the figures are noisy")
    return "\n".join(lines)


def run(settings: Settings) -> str:
    """Start the server, measure its ceiling and every client; the printable report."""
    root = Path(tempfile.mkdtemp(prefix="bench-download-", dir=settings.root))
    try:
        with fake_server(settings.size) as server:
            bench = Bench(settings, server, root)
            started = cpu_seconds(server.pid)  # start-up and seeding excluded
            bench.run()
            server_cpu = cpu_seconds(server.pid) - started
        return report(bench, server_cpu)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(1800)
def bench_download_1gib(capsys: pytest.CaptureFixture[str]) -> None:
    """curl, the naive loop and the SDK each save the same 1 GiB video; prints the table."""
    text = run(Settings.from_env())
    with capsys.disabled():
        print(text)


def main() -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(
        description="curl, a naive loop and the SDK download one object."
    )
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument("--size-mib", type=int, default=defaults.size // MIB)
    parser.add_argument("--dir", default=defaults.root, help="where run directories go")
    args = parser.parse_args()
    print(run(Settings(runs=args.runs, size=args.size_mib * MIB, root=args.dir)))


if __name__ == "__main__":
    main()

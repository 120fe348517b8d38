"""One API budget shared through Redis by P processes of one user: as fast as allowed, and fair?

``nox -s bench`` runs it as ``bench_budget``; ``python benchmarks/bench_budget.py [--rate R]
[--factor F] [--seconds S] [--foreign-minutes M] [--processes 1,2,4,8] [--latency-rounds K]
[--latency-calls N] [--scenario share|latency|foreign|all]`` gives a quick look
(``BENCH_BUDGET_RATE``, ``BENCH_BUDGET_FACTOR``, ``BENCH_BUDGET_SECONDS``,
``BENCH_BUDGET_FOREIGN_MINUTES``, ``BENCH_BUDGET_PROCESSES``, ``BENCH_BUDGET_LATENCY_ROUNDS``
and ``BENCH_BUDGET_LATENCY_CALLS`` set the same under pytest).

Every run starts a fresh valkey-server (``testing.RedisServer``) and a fresh fake Userplane in
this process, limited to R calls per minute (default 300) plus 10,000 a day per user, and P
worker processes (``budget_worker.py``, real subprocesses), each with its own key of the one
fake user, all with ``budget=<that Redis>`` and ``RateLimit(per_minute=R)``. The workers start
their clients, say they are ready, and are let go together; each then calls ``me()`` as fast
as the budget lets it. The fake, the workers and the budget's Lua script run on
``ScaledClock(F)``: time runs F times faster than real time (default F = 3, so that the whole
benchmark takes about 7 minutes instead of 21; a minute of every window lasts 20 real seconds).

``share``: P = 1, 2, 4, 8, each run S = 60 s on the clocks. Measured from the fake's log:
useful calls per minute ÷ R (target ≥ 0.95: the calls the fake answered in the run's span on
its clock, less the one per key that found the key's user; the budget's strict rule admits at
most R in any 60 s, so a cold minute holds at most R; a run shorter than a minute gets the
budget's first burst of R/10 on top, and more than R a minute), the 429s the fake answered
(target 0), fairness (target ≤ 1.1: max/min of the per-process counts of answered calls,
counted in the span where all processes run, from the last process's first answer to the
first process's last), and the most calls the fake accepted in any 60 s span.

``latency``: the added latency per call from Redis. One worker times sequential ``me()`` calls
(N = 300 a round, after a warm-up) with the Redis budget and with the default ``LocalBudget``,
both with limits too high to ever wait, on the real clock against an unlimited fake; K = 5
rounds, the order of the two alternating; the median of each round's median, and their
difference (target ≤ 1 ms on loopback).

``foreign``: the same P runs, M = 4 minutes each, while the fake spends 0.2·R calls a minute of
the user's quota itself (``fake.foreign_traffic``), unseen by the budget. Printed: the 429s
the fake answered to our calls, minute by minute (target: fewer than 1 a minute after the
first minute), the useful calls per minute ÷ the room left (0.8·R), the foreign calls the
fake let through per minute, fairness, and the ``rate_per_minute`` the budget reports at the
end (each worker's ``budget_status()`` when it stops: the lowest to the highest, as the rate
climbs while they stop one after another).

The targets are printed as PASS/MISS lines; a miss does not fail the benchmark, only a broken
run does (a worker that fails, a budget that is not shared, a run without answered calls).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from userplane_async.testing import FakeUserplane, RedisServer, RequestRecord, ScaledClock

HERE = Path(__file__).resolve().parent
WORKER = HERE / "budget_worker.py"
USER = "usr_default"
PER_DAY = 10_000
FOREIGN_SHARE = 0.2
START_TIMEOUT = 60.0  # real seconds for P workers to import and open their clients
STOP_TIMEOUT = 60.0  # real seconds past a run's end for every worker to report
TARGET_USEFUL, TARGET_FAIRNESS, TARGET_ADDED_MS = 0.95, 1.1, 1.0


@dataclass(frozen=True)
class Settings:
    rate: int = 300
    factor: float = 3.0
    seconds: float = 60.0
    foreign_minutes: int = 4
    processes: tuple[int, ...] = (1, 2, 4, 8)
    latency_rounds: int = 5
    latency_calls: int = 300

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            rate=int(env("BENCH_BUDGET_RATE", "300")),
            factor=float(env("BENCH_BUDGET_FACTOR", "3")),
            seconds=float(env("BENCH_BUDGET_SECONDS", "60")),
            foreign_minutes=int(env("BENCH_BUDGET_FOREIGN_MINUTES", "4")),
            processes=parse_processes(env("BENCH_BUDGET_PROCESSES", "1,2,4,8")),
            latency_rounds=int(env("BENCH_BUDGET_LATENCY_ROUNDS", "5")),
            latency_calls=int(env("BENCH_BUDGET_LATENCY_CALLS", "300")),
        )

    @property
    def foreign_rate(self) -> float:
        return FOREIGN_SHARE * self.rate


def parse_processes(text: str) -> tuple[int, ...]:
    counts = tuple(int(part) for part in text.split(",") if part.strip())
    if not counts or min(counts) < 1:
        raise ValueError("processes must be a comma-separated list of counts of at least 1")
    return counts


def worker_key(number: int) -> str:
    """A fake-looking key for worker ``number`` (the fake's own default key is worker 0)."""
    return f"uspl_bench{number:027d}"


# --- workers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What one run of P workers did: their reports, our requests in the fake's log."""

    processes: int
    seconds: float
    results: list[dict[str, Any]]
    by_key: list[list[RequestRecord]]  # our requests as the fake logged them, per worker
    started: float  # the fake's clock when the workers were let go
    rate_limited: int  # every 429 the fake's limiter answered
    foreign_calls: int  # the foreign calls the fake's limit let through

    def answered(self) -> list[list[float]]:
        return [[r.time for r in records if r.status == 200] for records in self.by_key]

    def throttled(self) -> list[float]:
        return sorted(r.time for records in self.by_key for r in records if r.status == 429)

    def useful_per_minute(self) -> float:
        """Answered calls per minute in the run's span on the fake's clock, less the call
        that found each key's user (each key's first)."""
        end = self.started + self.seconds
        useful = sum(sum(at < end for at in times[1:]) for times in self.answered())
        return useful / (self.seconds / 60.0)

    def shares(self) -> list[int]:
        """Answered calls per worker in the span where all of them ran."""
        answered = self.answered()
        start, end = max(t[0] for t in answered), min(t[-1] for t in answered)
        return [sum(start <= at <= end for at in times) for times in answered]

    def fairness(self) -> float:
        shares = self.shares()
        return max(shares) / min(shares) if min(shares) > 0 else math.inf

    def busiest_minute(self) -> int:
        times = sorted(t for times in self.answered() for t in times)
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] > 60.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    def throttled_per_minute(self) -> list[int]:
        minutes = [0] * math.ceil(self.seconds / 60.0)
        for at in self.throttled():
            minute = int((at - self.started) // 60.0)
            minutes[min(max(minute, 0), len(minutes) - 1)] += 1
        return minutes

    def end_rates(self) -> list[float]:
        return [float(r["rate_per_minute"]) for r in self.results]


@dataclass(frozen=True)
class Worker:
    process: Process
    err: IO[bytes]  # its standard error, for the message if it fails

    def failed(self, name: str, detail: str) -> RuntimeError:
        self.err.seek(0)
        text = self.err.read().decode(errors="replace")[-2000:]
        return RuntimeError(f"{name} {detail}:\n{text}")


@asynccontextmanager
async def worker(argv: Sequence[str], key: str) -> AsyncIterator[Worker]:
    """A worker process on ``key``; killed if it is still running when the block ends."""
    env = {**os.environ, "USERPLANE_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    env.pop("USERPLANE_BUDGET_URL", None)
    with tempfile.TemporaryFile() as err:
        command = [sys.executable, str(WORKER), *argv]
        process = await anyio.open_process(command, env=env, stderr=err)
        try:
            yield Worker(process, err)
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True):
                await process.aclose()


async def run_workers(
    settings: Settings, redis_url: str, processes: int, seconds: float, foreign: bool
) -> Run:
    """P workers on P keys of one user, let go together for ``seconds`` on the fake's clock."""
    clock = ScaledClock(settings.factor)
    limits = ((settings.rate, 60.0), (PER_DAY, 86_400.0))
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeUserplane(clock=clock, rate_limits=limits))
        keys = [fake.api_key]
        for number in range(1, processes):
            keys.append(worker_key(number))
            fake.add_api_key(keys[-1], user_id=USER)
        argv = [
            *("--base-url", fake.base_url, "--budget", redis_url),
            *("--factor", str(settings.factor), "--per-minute", str(settings.rate)),
            *("--per-day", str(PER_DAY), "--seconds", str(seconds)),
        ]
        workers = [await stack.enter_async_context(worker(argv, key)) for key in keys]
        lines = [TextReceiveStream(w.process.stdout) for w in workers]  # type: ignore[arg-type]
        with anyio.move_on_after(START_TIMEOUT) as starting:
            for number, (w, stream) in enumerate(zip(workers, lines, strict=True)):
                if (await anext(aiter(stream), "")).strip() != "ready":
                    raise w.failed(f"worker {number}", "did not start")
        if starting.cancelled_caught:
            raise RuntimeError(f"the workers did not start in {START_TIMEOUT:.0f} s")
        started = clock.monotonic()
        if foreign:  # from now on the fake's clock, unseen by the budget
            fake.foreign_traffic(settings.foreign_rate, user_id=USER)
        for w in workers:
            await w.process.stdin.send(b"go\n")  # type: ignore[union-attr]
        results: list[dict[str, Any]] = []
        with anyio.fail_after(seconds / settings.factor + STOP_TIMEOUT):
            for number, (w, stream) in enumerate(zip(workers, lines, strict=True)):
                output = "".join([chunk async for chunk in stream])
                if await w.process.wait() != 0 or not output.strip():
                    raise w.failed(f"worker {number}", "failed")
                results.append(json.loads(output.strip().splitlines()[-1]))
        records = fake.api_requests()
        rate_limited = fake.rate_limited_count
        foreign_calls = fake.foreign_calls(USER)
    fingerprints = [RequestRecord.redacted(f"Bearer {key}") for key in keys]
    by_key = [[r for r in records if r.headers.get("authorization") == f] for f in fingerprints]
    run = Run(processes, seconds, results, by_key, started, rate_limited, foreign_calls)
    for number, (result, answered) in enumerate(zip(results, run.answered(), strict=True)):
        if not result["shared"] or not answered:
            raise RuntimeError(f"worker {number} did not share the budget or got no answer")
    return run


def run_processes(settings: Settings, processes: int, seconds: float, foreign: bool) -> Run:
    with RedisServer() as redis_server:
        return anyio.run(run_workers, settings, redis_server.url, processes, seconds, foreign)


# --- the added latency -------------------------------------------------------------------------


async def time_latency(settings: Settings, redis_url: str) -> dict[str, list[float]]:
    """Each round's median ``me()`` duration with each budget, from one worker (seconds)."""
    async with FakeUserplane(rate_limits=None) as fake:
        argv = [
            *("--base-url", fake.base_url, "--budget", redis_url),
            *("--latency", str(settings.latency_rounds), "--calls", str(settings.latency_calls)),
        ]
        async with worker(argv, fake.api_key) as w:
            assert w.process.stdout is not None
            with anyio.fail_after(START_TIMEOUT + settings.latency_calls * 2.0):
                output = "".join([chunk async for chunk in TextReceiveStream(w.process.stdout)])
                code = await w.process.wait()
            if code != 0 or not output.strip():
                raise w.failed("the latency worker", "failed")
    medians: dict[str, list[float]] = json.loads(output.strip().splitlines()[-1])["medians"]
    return medians


def run_latency(settings: Settings) -> dict[str, list[float]]:
    with RedisServer() as redis_server:
        return anyio.run(time_latency, settings, redis_server.url)


# --- reports -----------------------------------------------------------------------------------


def _check(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'MISS'}  {text}"


def _load_warning() -> list[str]:
    if os.getloadavg()[0] > 1.0:  # a whole core of 2 was taken by something else
        return ["WARNING: the machine was busy before the run: the figures are noisy"]
    return []


def _figures(values: Sequence[float], spec: str = ".3f") -> str:
    return ", ".join(format(v, spec) for v in values)


def share_report(settings: Settings, runs: Sequence[Run], warnings: list[str]) -> str:
    r = settings.rate
    lines = [
        f"\nShared budget: P processes on P keys of one user, fake limited to {r} calls/min, "
        f"runs of {settings.seconds:g} s on ScaledClock({settings.factor:g})",
        f"{'P':>3} {'useful/min':>11} {'÷ R':>7} {'429s':>5} {'fairness':>9} "
        f"{'busiest 60 s':>13} {'API calls':>10}   shares in the common span",
    ]
    for run in runs:
        calls = sum(int(result["api_calls"]) for result in run.results)
        lines.append(
            f"{run.processes:>3} {run.useful_per_minute():>11.1f} "
            f"{run.useful_per_minute() / r:>7.3f} {len(run.throttled()):>5} "
            f"{run.fairness():>9.3f} {run.busiest_minute():>13} {calls:>10}   "
            f"{' '.join(str(s) for s in run.shares())}"
        )
    useful = [run.useful_per_minute() / r for run in runs]
    throttled = [run.rate_limited for run in runs]
    fairness = [run.fairness() for run in runs]
    lines += [
        _check(
            min(useful) >= TARGET_USEFUL,
            f"useful calls per minute ÷ R >= {TARGET_USEFUL}: {_figures(useful)}",
        ),
        _check(max(throttled) == 0, f"zero 429s: {', '.join(map(str, throttled))}"),
        _check(
            max(fairness) <= TARGET_FAIRNESS,
            f"fairness max/min <= {TARGET_FAIRNESS}: {_figures(fairness)}",
        ),
        *warnings,
    ]
    return "\n".join(lines)


def latency_report(settings: Settings, medians: dict[str, list[float]], warnings: list[str]) -> str:
    ms = {name: [m * 1000 for m in values] for name, values in medians.items()}
    overall = {name: statistics.median(values) for name, values in ms.items()}
    added = overall["redis"] - overall["local"]
    rows = [
        (name, _figures(ms[name], ".3f"), f"{overall[name]:.3f} ms") for name in ("local", "redis")
    ]
    width = max(len("round medians (ms)"), *(len(per_round) for _, per_round, _ in rows)) + 1
    lines = [
        f"\nAdded latency per call: sequential me() on loopback, {settings.latency_calls} calls a "
        f"round after a warm-up, {settings.latency_rounds} rounds in alternating order, limits "
        f"that never wait, real clock",
        f"{'budget':<8} {'round medians (ms)':<{width}} median",
        *(f"{name:<8} {per_round:<{width}} {median}" for name, per_round, median in rows),
        f"{'added':<8} {'':<{width}} {added:.3f} ms",
        _check(
            added <= TARGET_ADDED_MS, f"added latency <= {TARGET_ADDED_MS:g} ms: {added:.3f} ms"
        ),
        *warnings,
    ]
    return "\n".join(lines)


def foreign_report(settings: Settings, runs: Sequence[Run], warnings: list[str]) -> str:
    room = settings.rate - settings.foreign_rate
    lines = [
        f"\nForeign traffic: {settings.foreign_rate:g} calls/min of the same user's quota spent "
        f"outside the SDK, fake limited to {settings.rate} calls/min, runs of "
        f"{settings.foreign_minutes} min on ScaledClock({settings.factor:g})",
        f"{'P':>3} {'429s to our calls per minute':<30} {'after 1st':>10} "
        f"{'useful/min':>11} {'÷ room':>7} {'foreign/min':>12} {'fairness':>9}"
        f"   rate/min at the end",
    ]
    settled: list[float] = []
    for run in runs:
        per_minute = run.throttled_per_minute()
        later = per_minute[1:]
        after = sum(later) / len(later) if later else 0.0
        settled.append(after)
        low, high = min(run.end_rates()), max(run.end_rates())
        rate = f"{low:.1f}" if high - low < 0.05 else f"{low:.1f} to {high:.1f}"
        lines.append(
            f"{run.processes:>3} {' '.join(str(n) for n in per_minute):<30} {after:>10.2f} "
            f"{run.useful_per_minute():>11.1f} {run.useful_per_minute() / room:>7.3f} "
            f"{run.foreign_calls / (run.seconds / 60.0):>12.1f} "
            f"{run.fairness():>9.3f}   {rate}"
        )
    lines += [
        _check(
            max(settled) < 1.0,
            f"429s per minute after the first minute < 1: {_figures(settled, '.2f')}",
        ),
        *warnings,
    ]
    return "\n".join(lines)


def run_scenarios(settings: Settings, scenario: str) -> str:
    """Run the chosen scenarios and return their tables."""
    parts = []
    if scenario in ("latency", "all"):
        warnings = _load_warning()
        parts.append(latency_report(settings, run_latency(settings), warnings))
    if scenario in ("share", "all"):
        warnings = _load_warning()
        runs = [run_processes(settings, p, settings.seconds, False) for p in settings.processes]
        parts.append(share_report(settings, runs, warnings))
    if scenario in ("foreign", "all"):
        warnings = _load_warning()
        seconds = settings.foreign_minutes * 60.0
        runs = [run_processes(settings, p, seconds, True) for p in settings.processes]
        parts.append(foreign_report(settings, runs, warnings))
    return "\n".join(parts)


# --- entry points ------------------------------------------------------------------------------


@pytest.mark.timeout(2400)
def bench_budget(capsys: pytest.CaptureFixture[str]) -> None:
    """P = 1, 2, 4, 8 processes sharing one budget: throughput, 429s, fairness, latency."""
    text = run_scenarios(Settings.from_env(), "all")
    with capsys.disabled():
        print(text)


def main() -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(description="P processes sharing one Redis budget.")
    parser.add_argument("--rate", type=int, default=defaults.rate, help="calls per minute")
    parser.add_argument("--factor", type=float, default=defaults.factor, help="ScaledClock factor")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="share run length")
    parser.add_argument("--foreign-minutes", type=int, default=defaults.foreign_minutes)
    parser.add_argument(
        "--processes", type=parse_processes, default=defaults.processes, help="e.g. 1,2,4,8"
    )
    parser.add_argument("--latency-rounds", type=int, default=defaults.latency_rounds)
    parser.add_argument("--latency-calls", type=int, default=defaults.latency_calls)
    parser.add_argument("--scenario", choices=("share", "latency", "foreign", "all"), default="all")
    args = parser.parse_args()
    if min(args.rate, args.foreign_minutes, args.latency_rounds, args.latency_calls) < 1:
        parser.error("--rate, --foreign-minutes and --latency-* must be at least 1")
    if args.factor <= 0 or args.seconds <= 0:
        parser.error("--factor and --seconds must be positive")
    settings = Settings(
        rate=args.rate,
        factor=args.factor,
        seconds=args.seconds,
        foreign_minutes=args.foreign_minutes,
        processes=args.processes,
        latency_rounds=args.latency_rounds,
        latency_calls=args.latency_calls,
    )
    print(run_scenarios(settings, args.scenario), flush=True)


if __name__ == "__main__":
    main()

"""One process of a user, for ``bench_budget.py``: ``python benchmarks/budget_worker.py ...``.

``--seconds S`` (the shared-budget runs): opens a client on ``$USERPLANE_API_KEY`` with the
given ``--budget`` and ``RateLimit(per_minute=--per-minute)`` on ``ScaledClock(--factor)``,
prints ``ready``, waits for a line on stdin, then calls ``me()`` as fast as the budget lets
it for ``S`` seconds on its clock and prints one JSON line: the calls that succeeded, the
``RateLimitError``s, the client's API calls and its ``budget_status()`` at the end.

``--latency ROUNDS --calls N`` (the added latency): on the real clock, with limits far too
high to ever wait, each round opens one client with the Redis budget and one with the local
budget (the order alternates from round to round), makes a few warm-up calls, then times
``N`` sequential ``me()`` calls; prints one JSON line with each round's median per budget, in
seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time

import anyio

from userplane_async import AsyncUserplane, LocalBudget, RateLimit, RateLimitError, RedisBudget
from userplane_async.testing import ScaledClock

WARM_UP = 20  # calls before timing: connections open, the key's user found and cached
NEVER_WAIT = RateLimit(per_minute=1_000_000_000, per_day=1_000_000_000_000)


async def share(args: argparse.Namespace) -> dict[str, object]:
    clock = ScaledClock(args.factor)
    limit = RateLimit(per_minute=args.per_minute, per_day=args.per_day)
    async with AsyncUserplane(
        base_url=args.base_url, budget=args.budget, rate_limit=limit, clock=clock
    ) as client:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        ok = refused = 0
        started = clock.monotonic()
        while clock.monotonic() - started < args.seconds:
            try:
                await client.me()
                ok += 1
            except RateLimitError:  # retries spent, or a wait longer than max_wait
                refused += 1
        status = await client.budget_status()
        return {
            "ok": ok,
            "refused": refused,
            "api_calls": client.api_calls,
            "shared": status.shared,
            "processes": status.processes,
            "rate_per_minute": status.rate_per_minute,
        }


async def timed_calls(base_url: str, budget: LocalBudget | RedisBudget, calls: int) -> float:
    """The median duration of ``calls`` sequential ``me()`` calls, in seconds."""
    async with AsyncUserplane(base_url=base_url, budget=budget, rate_limit=NEVER_WAIT) as client:
        for _ in range(WARM_UP):
            await client.me()
        durations = []
        for _ in range(calls):
            begin = time.perf_counter()
            await client.me()
            durations.append(time.perf_counter() - begin)
    return statistics.median(durations)


async def latency(args: argparse.Namespace) -> dict[str, object]:
    budgets: dict[str, LocalBudget | RedisBudget] = {
        "redis": RedisBudget(args.budget),
        "local": LocalBudget(),
    }
    medians: dict[str, list[float]] = {"redis": [], "local": []}
    for round_ in range(args.latency):
        order = ("redis", "local") if round_ % 2 == 0 else ("local", "redis")
        for name in order:
            medians[name].append(await timed_calls(args.base_url, budgets[name], args.calls))
    return {"medians": medians}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--budget", required=True, help="the Redis budget's URL")
    parser.add_argument("--factor", type=float, default=1.0)
    parser.add_argument("--per-minute", type=int, default=300)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--latency", type=int, metavar="ROUNDS")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    if (args.seconds is None) == (args.latency is None):
        parser.error("give --seconds or --latency")
    return args


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = parse(sys.argv[1:])
    result = anyio.run(latency if args.latency is not None else share, args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

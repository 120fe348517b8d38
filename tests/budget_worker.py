"""One process of a user, for the shared-budget tests: ``python tests/budget_worker.py ...``.

It opens a client on ``$USERPLANE_API_KEY`` with the given budget, prints ``ready``, waits for
a line on stdin, then calls ``me()`` (``--calls`` times, or for ``--seconds`` on its clock) or
archives ``--archive WORKSPACE DEST``, and prints one JSON line with what happened.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import anyio

from userplane_async import AsyncUserplane, RateLimit, RateLimitError, RetryPolicy
from userplane_async._errors import BUDGET_SPENT
from userplane_async.testing import ScaledClock


class SkewedClock(ScaledClock):
    """A scaled clock that is ``skew`` seconds off: machines whose clocks disagree."""

    def __init__(self, factor: float, skew: float) -> None:
        super().__init__(factor)
        self.skew = skew

    def monotonic(self) -> float:
        return super().monotonic() + self.skew

    def time(self) -> float:
        return super().time() + self.skew


async def main(args: argparse.Namespace) -> dict[str, object]:
    clock = SkewedClock(args.scale, args.skew)
    limit = RateLimit(per_minute=args.per_minute, per_day=args.per_day, max_wait=args.max_wait)
    async with AsyncUserplane(
        base_url=args.base_url,
        budget=args.budget,
        rate_limit=limit,
        clock=clock,
        retry=RetryPolicy(attempts=3),
    ) as client:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        result: dict[str, object] = {"ok": 0, "spent": 0, "rate_limited": 0}
        if args.archive:
            report = await client.archive(*args.archive, kinds=["thumbnail"])
            result["counts"] = dict(report.counts)
        else:
            started = clock.monotonic()
            while (args.calls is None or result["ok"] < args.calls) and (
                args.seconds is None or clock.monotonic() - started < args.seconds
            ):
                try:
                    await client.me()
                    result["ok"] += 1  # type: ignore[operator]
                except RateLimitError as exc:
                    key = "spent" if exc.code == BUDGET_SPENT else "rate_limited"
                    result[key] += 1  # type: ignore[operator]
                    if args.stop_when_spent:
                        break
        status = await client.budget_status()
        result["api_calls"] = client.api_calls
        result["shared"] = status.shared
        result["used_today"] = status.used_today
        result["processes"] = status.processes
        return result


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--budget", required=True)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skew", type=float, default=0.0)
    parser.add_argument("--per-minute", type=int, default=120)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--max-wait", type=float, default=120.0)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--stop-when-spent", action="store_true")
    parser.add_argument("--archive", nargs=2, metavar=("WORKSPACE", "DEST"))
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(anyio.run(main, parse(sys.argv[1:]))), flush=True)

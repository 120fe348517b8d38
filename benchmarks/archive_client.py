"""The SDK's archiver in a process of its own, timing itself: the client of ``bench_archive.py``.

``python benchmarks/archive_client.py WORKSPACE DEST [--rate R] [--factor F] [--kinds K,...]``
archives ``WORKSPACE`` into ``DEST`` with ``AsyncUserplane.archive`` (reading
``USERPLANE_API_KEY`` and ``USERPLANE_BASE_URL`` from the environment). ``--rate R`` gives the
client ``RateLimit(per_minute=R, per_day=10_000)`` (``--rate 0``: ``rate_limit=None``), and
``--factor F`` puts it on ``ScaledClock(F)``, the clock the fake must share.

Prints one JSON line: ``scaled_seconds`` (the archive on the shared clock), ``real_seconds``
(both exclude start-up and imports), the API calls the report counted, the outcome counts, the
bytes saved, why the run was interrupted (if it was) and the first few failed items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from userplane_async import AsyncUserplane, RateLimit
from userplane_async.testing import ScaledClock

PER_DAY = 10_000


async def archive(
    workspace_id: str, dest: str, rate: int, factor: float, kinds: list[str] | None
) -> dict[str, Any]:
    clock = ScaledClock(factor)
    limit = RateLimit(per_minute=rate, per_day=PER_DAY) if rate > 0 else None
    async with AsyncUserplane(rate_limit=limit, clock=clock) as client:
        started, real_started = clock.monotonic(), time.perf_counter()
        report = await client.archive(workspace_id, dest, kinds=kinds)
        scaled, real = clock.monotonic() - started, time.perf_counter() - real_started
    return {
        "scaled_seconds": scaled,
        "real_seconds": real,
        "api_calls": report.api_calls,
        "counts": report.counts,
        "bytes": report.bytes,
        "interrupted": report.interrupted,
        "failures": [f"{i.recording_id}/{i.kind}: {i.status} {i.error}" for i in report.items[:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace_id")
    parser.add_argument("dest")
    parser.add_argument("--rate", type=int, default=0, help="calls per minute; 0: no limiter")
    parser.add_argument("--factor", type=float, default=1.0, help="ScaledClock factor")
    parser.add_argument("--kinds", default=None, help="comma-separated kinds (default: all)")
    args = parser.parse_args()
    kinds = args.kinds.split(",") if args.kinds else None
    result = asyncio.run(archive(args.workspace_id, args.dest, args.rate, args.factor, kinds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

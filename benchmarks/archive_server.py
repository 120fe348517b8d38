"""The fake Userplane in a process of its own, seeded with a workspace of small recordings.

``python benchmarks/archive_server.py --recordings N [--rate R] [--factor F] [--content BYTES]``
seeds ``N`` recordings with all five resources captured (given content, a few KiB each, or
``--content`` bytes each), prints one JSON line with ``base_url``, ``api_key``,
``workspace_id``, ``recordings`` and the ``files`` to expect (size and sha256 per kind), and serves until its standard input closes (so it also
stops when the parent dies). Then it prints a second JSON line with what it saw: the 429s its
limiter produced, the requests per route, and the most API calls it accepted in any
``60 s`` span of its clock. Used by ``bench_archive.py``.

``--rate R`` limits the fake to ``R`` calls per minute plus the default 10,000 a day
(``--rate 0``: no limit at all); ``--factor F`` runs the fake on ``ScaledClock(F)``, which
the client must share (same ``F``) so that a window lasts as long on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections import Counter
from typing import Any

from userplane_async.testing import FakeResource, FakeUserplane, RequestRecord, ScaledClock

WORKSPACE_ID = "ws_archive"
URL_LIFETIME = 10 * 86_400.0  # scaled seconds: no URL expires mid-benchmark, whatever F is
PER_DAY = 10_000
STORAGE_ROUTE = "storage.get"

# A few KiB per kind (video is the largest), each kind with its own bytes.
SIZES = {
    "video": 6 * 1024,
    "thumbnail": 3 * 1024,
    "console-log": 2 * 1024,
    "network-log": 2 * 1024,
    "action": 1024,
}


def content(kind: str, size: int) -> bytes:
    """``size`` deterministic bytes for ``kind`` (the same for every recording)."""
    return hashlib.shake_256(kind.encode()).digest(size)


def recording_id(number: int) -> str:
    return f"rec_{number:06d}"


def seed(fake: FakeUserplane, recordings: int, size: int | None) -> None:
    fake.add_workspace(WORKSPACE_ID)
    resources = {
        kind: FakeResource(content(kind, size if size is not None else default))
        for kind, default in SIZES.items()
    }
    for number in range(recordings):
        fake.add_recording(WORKSPACE_ID, recording_id(number), resources=resources)


def expected_files(size: int | None) -> dict[str, dict[str, Any]]:
    """Per kind, the size and sha256 every saved file of that kind must have."""
    files = {}
    for kind, default in SIZES.items():
        data = content(kind, size if size is not None else default)
        files[kind] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return files


def busiest_window(times: list[float], seconds: float) -> int:
    """The most of ``times`` (sorted) that fall in any span of ``seconds``."""
    most, start = 0, 0
    for end, now in enumerate(times):
        while times[start] <= now - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def summary(fake: FakeUserplane) -> dict[str, Any]:
    records: list[RequestRecord] = fake.requests
    api = [r for r in records if r.route != STORAGE_ROUTE]
    accepted = sorted(r.time for r in api if r.status != 429)
    span = accepted[-1] - accepted[0] if accepted else 0.0
    return {
        "rate_limited": fake.rate_limited_count,
        "api_requests": len(api),
        "storage_requests": len(records) - len(api),
        "routes": dict(Counter(r.route for r in records)),
        "statuses": {str(k): v for k, v in Counter(r.status for r in records).items()},
        "busiest_minute": busiest_window(accepted, 60.0),
        "api_span": span,  # scaled seconds from the first accepted API call to the last
    }


async def serve(recordings: int, rate: int, factor: float, size: int | None) -> None:
    limits = ((rate, 60.0), (PER_DAY, 86_400.0)) if rate > 0 else None
    clock = ScaledClock(factor)
    async with FakeUserplane(clock=clock, rate_limits=limits, url_lifetime=URL_LIFETIME) as fake:
        seed(fake, recordings, size)
        ready = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "workspace_id": WORKSPACE_ID,
            "recordings": recordings,
            "files": expected_files(size),
        }
        print(json.dumps(ready), flush=True)
        # Serve until the parent closes our stdin (or exits); fake.requests grows by one
        # small record per request: some tens of thousands at most.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        print(json.dumps(summary(fake)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", type=int, required=True)
    parser.add_argument("--rate", type=int, default=0, help="calls per minute; 0: no limit")
    parser.add_argument("--factor", type=float, default=1.0, help="ScaledClock factor")
    parser.add_argument("--content", type=int, default=None, help="bytes per resource")
    args = parser.parse_args()
    asyncio.run(serve(args.recordings, args.rate, args.factor, args.content))


if __name__ == "__main__":
    main()

"""The fake Userplane in a process of its own, seeded with one large generated video.

``python benchmarks/download_server.py --size BYTES`` prints one JSON line with ``base_url``,
``api_key``, ``workspace_id`` and ``recording_id``, then serves until its standard input
closes (so it also stops when the parent dies). Used by ``bench_download.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from userplane_async.testing import FakeResource, FakeUserplane

WORKSPACE_ID = "ws_b"
RECORDING_ID = "rec_b"
URL_LIFETIME = 24 * 3600.0  # longer than any run: a URL never expires mid-benchmark


async def serve(size: int) -> None:
    async with FakeUserplane(rate_limits=None, url_lifetime=URL_LIFETIME) as fake:
        fake.add_workspace(WORKSPACE_ID)
        video = FakeResource(size=size, type="video/webm")
        fake.add_recording(WORKSPACE_ID, RECORDING_ID, resources={"video": video})
        ready = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "workspace_id": WORKSPACE_ID,
            "recording_id": RECORDING_ID,
        }
        print(json.dumps(ready), flush=True)
        # Serve until the parent closes our stdin (or exits); fake.requests grows by one
        # record per request, which stays small for the few dozen requests of a benchmark.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1 << 30, help="video size in bytes")
    asyncio.run(serve(parser.parse_args().size))


if __name__ == "__main__":
    main()

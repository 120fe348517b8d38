"""The two Python clients of ``bench_download.py``, one per process, each timing itself.

``python benchmarks/download_clients.py naive URL FILE`` is performance.md's baseline: aiohttp
with ``iter_chunked(64 KiB)`` and one awaited aiofiles write per chunk.
``python benchmarks/download_clients.py sdk DIR`` resolves and saves the video with
``AsyncUserplane.recordings.download`` (reading ``USERPLANE_API_KEY``, ``USERPLANE_BASE_URL``,
``BENCH_WORKSPACE_ID`` and ``BENCH_RECORDING_ID`` from the environment).

Each prints one JSON line: ``seconds`` (the transfer only, start-up and imports excluded),
``bytes`` and, for the SDK, the ``sha256`` it computed and the ``path`` it saved to.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiofiles
import aiohttp
from yarl import URL

from userplane_async import AsyncUserplane, RateLimit

NAIVE_CHUNK = 64 * 1024


async def naive(url: str, path: str) -> dict[str, Any]:
    started = time.perf_counter()
    received = 0
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(url, encoded=True)) as response,  # presigned: send it byte for byte
    ):
        response.raise_for_status()
        async with aiofiles.open(path, "wb") as file:
            async for chunk in response.content.iter_chunked(NAIVE_CHUNK):
                await file.write(chunk)
                received += len(chunk)
    return {"seconds": time.perf_counter() - started, "bytes": received}


async def sdk(directory: str) -> dict[str, Any]:
    workspace_id, recording_id = os.environ["BENCH_WORKSPACE_ID"], os.environ["BENCH_RECORDING_ID"]
    started = time.perf_counter()
    async with AsyncUserplane(rate_limit=RateLimit(per_minute=None, per_day=None)) as client:
        result = await client.recordings.download(workspace_id, recording_id, "video", directory)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes": result.size,
        "sha256": result.sha256,
        "path": str(result.path),
    }


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "naive":
        report = asyncio.run(naive(argv[1], argv[2]))
    elif len(argv) == 2 and argv[0] == "sdk":
        report = asyncio.run(sdk(argv[1]))
    else:
        sys.exit(__doc__)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The fake Userplane in a process of its own, seeded with a few large videos and many small
recordings: the source of ``bench_objectstore.py``.

``python benchmarks/objectstore_server.py --videos V --video-size BYTES --recordings M`` seeds
``V`` recordings whose video is ``BYTES`` long (their other four resources small) and ``M``
recordings with all five resources small (the few KiB of ``archive_server.py``); every
resource has bytes of its own. It prints one JSON line with ``base_url``, ``api_key``,
``workspace_id`` and the ``files`` to expect (per recording, per kind: size and sha256), and
serves until its standard input closes (so it also stops when the parent dies). Then it prints
a second JSON line with what it saw (``archive_server.summary``). No rate limit.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from typing import Any

from archive_server import SIZES, URL_LIFETIME, WORKSPACE_ID, summary

from userplane_async.testing import FakeResource, FakeUserplane

VIDEO = "video"


def content(recording_id: str, kind: str, size: int) -> bytes:
    """``size`` deterministic bytes of one resource: no two resources share them, so an object
    stored under the wrong key, or a part in the wrong place, cannot pass for the right one."""
    return hashlib.shake_256(f"{recording_id}\0{kind}".encode()).digest(size)


def video_id(number: int) -> str:
    return f"rec_video_{number:03d}"


def small_id(number: int) -> str:
    return f"rec_small_{number:06d}"


def seed(
    fake: FakeUserplane, videos: int, video_size: int, recordings: int
) -> dict[str, dict[str, dict[str, Any]]]:
    """Seed the workspace; per recording and kind, the size and sha256 its object must have."""
    fake.add_workspace(WORKSPACE_ID)
    files: dict[str, dict[str, dict[str, Any]]] = {}
    ids = [video_id(n) for n in range(videos)] + [small_id(n) for n in range(recordings)]
    for number, recording_id in enumerate(ids):
        sizes = {**SIZES, VIDEO: video_size} if number < videos else SIZES
        resources = {kind: content(recording_id, kind, size) for kind, size in sizes.items()}
        fake.add_recording(
            WORKSPACE_ID,
            recording_id,
            resources={kind: FakeResource(data) for kind, data in resources.items()},
        )
        files[recording_id] = {
            kind: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for kind, data in resources.items()
        }
    return files


async def serve(videos: int, video_size: int, recordings: int) -> None:
    async with FakeUserplane(rate_limits=None, url_lifetime=URL_LIFETIME) as fake:
        files = seed(fake, videos, video_size, recordings)
        ready = {
            "base_url": fake.base_url,
            "api_key": fake.api_key,
            "workspace_id": WORKSPACE_ID,
            "files": files,
        }
        print(json.dumps(ready), flush=True)
        # Serve until the parent closes our stdin (or exits); fake.requests grows by one
        # small record per request: some thousands over a whole benchmark.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        print(json.dumps(summary(fake)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, required=True)
    parser.add_argument("--video-size", type=int, required=True, help="bytes per video")
    parser.add_argument("--recordings", type=int, required=True, help="small recordings")
    args = parser.parse_args()
    asyncio.run(serve(args.videos, args.video_size, args.recordings))


if __name__ == "__main__":
    main()

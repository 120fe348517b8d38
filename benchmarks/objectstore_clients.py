"""The clients of ``bench_objectstore.py``, each run in a process of its own.

``python benchmarks/objectstore_clients.py archive WORKSPACE DEST`` archives ``WORKSPACE`` into
``DEST`` (a local directory or ``s3://bucket/prefix``) with ``archive_client.archive`` (no rate
limit; ``USERPLANE_API_KEY``, ``USERPLANE_BASE_URL`` and the ``AWS_*`` variables from the
environment), and prints its JSON line with ``disk_write_bytes`` added.

``python benchmarks/objectstore_clients.py upload DIRECTORY s3://bucket/prefix`` is the second
step of the baseline a user scripts today: every file under ``DIRECTORY`` goes to
``prefix/<relative path>`` through one s3transfer ``TransferManager``, the engine of boto3's
``upload_file`` and of ``aws s3 cp --recursive``, with the CLI's default part size and
threshold (8 MiB) and 8 requests in flight (as the SDK's 8 downloads). Prints one JSON line:
``real_seconds``, ``files``, ``bytes`` and ``disk_write_bytes``.

``disk_write_bytes`` is the ``write_bytes`` of ``/proc/self/io`` over the archive or the
upload alone (imports excluded): the bytes this process caused to be written to a block
device, counted when a page is dirtied, so before any writeback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive_client import archive

CONCURRENCY = 8
PART_SIZE = 8 * 1024 * 1024  # the AWS CLI's multipart_chunksize and multipart_threshold


def disk_write_bytes() -> int:
    """``write_bytes`` of this process so far, from ``/proc/self/io``."""
    for line in Path("/proc/self/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "write_bytes":
            return int(value)
    raise RuntimeError("/proc/self/io has no write_bytes")


def run_archive(workspace_id: str, dest: str) -> dict[str, Any]:
    written = disk_write_bytes()
    result = asyncio.run(archive(workspace_id, dest, rate=0, factor=1.0, kinds=None))
    return {**result, "disk_write_bytes": disk_write_bytes() - written}


def run_upload(directory: Path, dest: str) -> dict[str, Any]:
    import boto3  # type: ignore[import-untyped]
    from boto3.s3.transfer import (  # type: ignore[import-untyped]
        TransferConfig,
        create_transfer_manager,
    )

    parts = urlsplit(dest)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    client = boto3.client("s3")  # endpoint and credentials from the AWS_* variables
    config = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=CONCURRENCY,
    )
    written = disk_write_bytes()
    started = time.perf_counter()
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    with create_transfer_manager(client, config) as manager:
        futures = [
            manager.upload(str(path), bucket, f"{prefix}/{path.relative_to(directory).as_posix()}")
            for path in files
        ]
        for future in futures:
            future.result()  # raises the first failed upload's error
    return {
        "real_seconds": time.perf_counter() - started,
        "files": len(files),
        "bytes": sum(path.stat().st_size for path in files),
        "disk_write_bytes": disk_write_bytes() - written,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    archive_parser = commands.add_parser("archive")
    archive_parser.add_argument("workspace_id")
    archive_parser.add_argument("dest")
    upload_parser = commands.add_parser("upload")
    upload_parser.add_argument("directory", type=Path)
    upload_parser.add_argument("dest")
    args = parser.parse_args()
    if args.command == "archive":
        result = run_archive(args.workspace_id, args.dest)
    else:
        result = run_upload(args.directory, args.dest)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

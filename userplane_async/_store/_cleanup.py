"""``userplane-async cleanup s3://...``: abort the multipart uploads a killed run left behind.

An upload cut off by SIGKILL is invisible to readers but its parts are billed until it is
aborted (or a bucket lifecycle rule expires it). obstore has no call to list uploads, so this
uses boto3 (the ``cleanup`` extra): its credential chain and ``AWS_ENDPOINT_URL`` are the ones
users of S3 already have. Only uploads under the prefix whose keys have the archive's layout
(``<workspace>/<recording>/<kind>.<ext>``) and that started ``older_than`` seconds ago are
aborted: a run still under way elsewhere keeps its uploads.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlsplit

import anyio

from .._errors import ConfigurationError, ObjectStoreError
from .._models import ResourceKind
from .._names import unsafe_name_reason

_KINDS = tuple(f"{kind.value}." for kind in ResourceKind)


def is_ours(relative: str) -> bool:
    """Whether a key below the archive's prefix has the archive's layout."""
    parts = relative.split("/")
    return (
        len(parts) == 3
        and all(unsafe_name_reason(part) is None for part in parts)
        and parts[2].startswith(_KINDS)
    )


async def cleanup_uploads(url: str, *, older_than: float) -> list[str]:
    """Abort our incomplete multipart uploads under ``url`` (``s3://bucket/prefix``) that
    started more than ``older_than`` seconds ago; returns their keys."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3a") or not parts.netloc:
        raise ConfigurationError("cleanup works on s3:// URLs (s3://bucket/prefix)")
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError(
            "cleanup needs boto3: pip install 'userplane-async[cleanup]'"
        ) from None
    prefix = parts.path.strip("/")
    below = f"{prefix}/" if prefix else ""
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=older_than)
    return await anyio.to_thread.run_sync(
        _abort_ours, boto3.client("s3"), parts.netloc, below, cutoff
    )


def _abort_ours(client: Any, bucket: str, below: str, cutoff: datetime.datetime) -> list[str]:
    aborted = []
    try:
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=below)
        for page in pages:
            for upload in page.get("Uploads", []):
                key = upload["Key"]
                if is_ours(key[len(below) :]) and upload["Initiated"] <= cutoff:
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=key, UploadId=upload["UploadId"]
                    )
                    aborted.append(key)
    except Exception as exc:  # botocore's ClientError and friends
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        raise ObjectStoreError(
            f"cannot clean up s3://{bucket}/{below}: the object store said "
            f"{code or type(exc).__name__}",
            code=code,
        ) from None
    return aborted

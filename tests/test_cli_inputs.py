"""What the console script says about bad settings and IDs, and what ``-vv`` shows.

Each test runs ``python -m userplane_async`` as a subprocess against the fake, as a user would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import anyio
import attrs
import pytest

from userplane_async.testing import FakeUserplane

pytestmark = pytest.mark.anyio

WS = "ws_demo"


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


async def console(fake: FakeUserplane, *argv: str, base_url: str | None = None) -> Run:
    """The console script with the fake's key and ``base_url`` (the fake's by default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERPLANE_")}
    env |= {"USERPLANE_API_KEY": fake.api_key, "USERPLANE_BASE_URL": base_url or fake.base_url}
    command = [sys.executable, "-m", "userplane_async", *argv]
    done = await anyio.run_process(command, env=env, check=False)
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_a_bare_origin_as_base_url_finds_the_api(fake_userplane: FakeUserplane) -> None:
    """``http://host:port`` (no /api/v1) is taken as the API's origin and works."""
    origin = fake_userplane.base_url.removesuffix("/api/v1")
    run = await console(fake_userplane, "me", "--json", base_url=origin + "/")
    assert run.code == 0, run.err
    assert '"id":"usr_default"' in run.out


@pytest.mark.parametrize("path", ["/v1", "/api", "/api/v1/public"])
async def test_a_base_url_off_the_api_path_is_refused_before_any_call(
    fake_userplane: FakeUserplane, path: str
) -> None:
    """Any other path is a ConfigurationError naming what was expected, with no request sent."""
    origin = fake_userplane.base_url.removesuffix("/api/v1")
    run = await console(fake_userplane, "me", base_url=origin + path)
    assert run.code == 3
    assert run.err.startswith("ConfigurationError: base_url must end in /api/v1 (like https://")
    assert "Traceback" not in run.err
    assert fake_userplane.requests == []


async def test_a_huge_id_is_refused_with_a_short_reason(fake_userplane: FakeUserplane) -> None:
    """A 20,000-character ID fails before calling, saying what is wrong in one short line."""
    run = await console(fake_userplane, "recordings", "get", WS, "r" * 20_000)
    assert run.code == 3
    assert run.err.strip() == (
        f"InvalidIDError: recording_id {'r' * 40 + '...'!r} is 20,000 characters long;"
        " IDs have at most 128"
    )
    assert fake_userplane.requests == []


async def test_a_control_character_in_an_id_is_refused(fake_userplane: FakeUserplane) -> None:
    run = await console(fake_userplane, "recordings", "get", "ws_demo\n", "rec_demo_full")
    assert run.code == 3
    assert "InvalidIDError: workspace_id 'ws_demo\\n' contains control characters" in run.err
    assert fake_userplane.requests == []


async def test_debug_logging_shows_api_calls_and_storage_gets_without_secrets(
    fake_userplane: FakeUserplane, tmp_path: Path
) -> None:
    """``-vv`` logs each API call (status, attempt, budget wait) and storage GET (host, range,
    status); no key, security token or signature in any line."""
    fake_userplane.script("recordings.resource", status=503, times=1)
    run = await console(
        fake_userplane, "-vv", "download", WS, "rec_demo_small", "video", str(tmp_path)
    )
    assert run.code == 0, run.err
    path = f"/api/v1/public/workspace/{WS}/recordings/rec_demo_small/video"
    api = [line for line in run.err.splitlines() if f"API GET {path} " in line]
    assert len(api) == 2
    assert api[0].startswith(f"DEBUG userplane_async: API GET {path} -> 503 in ")
    assert "(attempt 1, waited " in api[0]
    assert api[1].startswith(f"DEBUG userplane_async: API GET {path} -> 200 in ")
    assert "(attempt 2, waited " in api[1]
    host = f"127.0.0.1:{fake_userplane.storage_requests()[-1].headers['host'].split(':')[1]}"
    assert f"DEBUG userplane_async: storage GET {host} range=all -> 200" in run.err
    signed = dict(parse_qsl(fake_userplane.storage_requests()[-1].query))
    secrets = [fake_userplane.api_key, signed["X-Amz-Security-Token"], signed["X-Amz-Signature"]]
    assert not [secret for secret in secrets if secret in run.out + run.err]

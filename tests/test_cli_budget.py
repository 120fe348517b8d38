"""The shared budget from the command line: ``--budget URL``, ``$USERPLANE_BUDGET_URL`` and
``userplane-async budget``, each run as a subprocess against the fake and a real valkey-server.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import attrs
import pytest

from userplane_async.testing import FakeUserplane

pytestmark = pytest.mark.anyio


@attrs.frozen
class Run:
    code: int
    out: str
    err: str


async def console(fake: FakeUserplane, *argv: str, **env_extra: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERPLANE_")}
    env |= {"USERPLANE_API_KEY": fake.api_key, "USERPLANE_BASE_URL": fake.base_url, **env_extra}
    command = [sys.executable, "-m", "userplane_async", *argv]
    done = await anyio.run_process(command, env=env, check=False)
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


async def test_budget_shows_the_shared_count_of_every_process(
    fake_userplane: FakeUserplane, redis_url: str
) -> None:
    """Two commands with --budget share the count: the second's ``budget`` sees both."""
    first = await console(fake_userplane, "me", "--budget", redis_url)
    second = await console(fake_userplane, "budget", "--json", "--budget", redis_url)

    assert first.code == 0, first.err
    assert second.code == 0, second.err
    status = json.loads(second.out)
    assert status["shared"] is True
    assert status["group"] == "usr_default"
    assert status["usedLastMinute"] == 2  # the first run's me() and the one finding the user
    assert status["remainingToday"] == 10_000 - 2


async def test_the_budget_url_can_come_from_the_environment(
    fake_userplane: FakeUserplane, redis_url: str
) -> None:
    await console(fake_userplane, "me", USERPLANE_BUDGET_URL=redis_url)
    run = await console(fake_userplane, "budget", USERPLANE_BUDGET_URL=redis_url)

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert "shared: true" in lines
    assert "group: usr_default" in lines
    assert "usedLastMinute: 2" in lines


async def test_budget_without_redis_says_it_counts_alone(fake_userplane: FakeUserplane) -> None:
    run = await console(fake_userplane, "budget")

    assert run.code == 0, run.err
    assert "shared: false" in run.out.splitlines()
    assert "pass --budget redis://" in run.out


async def test_a_budget_url_that_is_not_redis_is_a_configuration_error(
    fake_userplane: FakeUserplane,
) -> None:
    run = await console(fake_userplane, "me", "--budget", "http://127.0.0.1:1/0")

    assert run.code == 3
    assert run.err.startswith("ConfigurationError: the budget URL must start with redis://")
    assert "Traceback" not in run.err
    assert fake_userplane.api_requests() == []

"""Configuration, opening and closing: clear errors, no leaks, user sessions left alone."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anyio
import anyio.abc
import pytest

from userplane_async import AsyncUserplane, ClientClosedError, ConfigurationError, RateLimit
from userplane_async.testing import FakeUserplane, RequestRecord

pytestmark = pytest.mark.anyio


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without api_key or USERPLANE_API_KEY the constructor says what to do."""
    monkeypatch.delenv("USERPLANE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="USERPLANE_API_KEY"):
        AsyncUserplane()


@pytest.mark.parametrize("key", ["uspl_a b", "uspl_a\nInjected: 1", "", 42])
def test_malformed_keys_are_refused(key: object) -> None:
    """Keys that could not be a header value are refused, without echoing them."""
    with pytest.raises(ConfigurationError) as caught:
        AsyncUserplane(key)  # type: ignore[arg-type]
    assert "Injected" not in str(caught.value)


def test_environment_configures_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """USERPLANE_API_KEY and USERPLANE_BASE_URL are read when no argument is given."""
    monkeypatch.setenv("USERPLANE_API_KEY", "uspl_from_env")
    monkeypatch.setenv("USERPLANE_BASE_URL", "http://127.0.0.1:9/api/v1/")
    client = AsyncUserplane()
    assert client.base_url == "http://127.0.0.1:9/api/v1"


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production API is the default."""
    monkeypatch.delenv("USERPLANE_BASE_URL", raising=False)
    assert AsyncUserplane("uspl_x").base_url == "https://api.userplane.io/api/v1"


@pytest.mark.parametrize(
    "url",
    [
        "http://api.userplane.io/api/v1",
        "http://10.0.0.1/api",
        "ftp://127.0.0.1/api",
        "https://user:pw@api.userplane.io/api/v1",
        "not a url",
    ],
)
def test_unsafe_base_urls_are_refused(url: str) -> None:
    """Only https, or http on loopback, without credentials."""
    with pytest.raises(ConfigurationError):
        AsyncUserplane("uspl_x", base_url=url)


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True])
def test_concurrency_must_be_positive(concurrency: object) -> None:
    """A nonsensical concurrency is refused at construction."""
    with pytest.raises(ConfigurationError):
        AsyncUserplane("uspl_x", concurrency=concurrency)  # type: ignore[arg-type]


async def test_aclose_is_idempotent_and_final(fake_userplane: FakeUserplane) -> None:
    """After aclose() (twice is fine) every call raises ClientClosedError."""
    client = AsyncUserplane(fake_userplane.api_key, base_url=fake_userplane.base_url)
    await client.me()
    await client.aclose()
    await client.aclose()
    assert client.closed
    assert "closed" in repr(client)
    with pytest.raises(ClientClosedError):
        await client.me()
    with pytest.raises(ClientClosedError):
        [_ async for _ in client.recordings.list("ws_demo")]


async def test_context_manager_closes(fake_userplane: FakeUserplane) -> None:
    """Leaving async with closes the client."""
    async with AsyncUserplane(fake_userplane.api_key, base_url=fake_userplane.base_url) as client:
        await client.me()
    assert client.closed


async def test_closing_unused_client_is_fine() -> None:
    """A client that never sent anything closes without opening a session."""
    client = AsyncUserplane("uspl_x")
    await client.aclose()
    assert client.closed


async def test_user_session_is_used_and_left_open(fake_userplane: FakeUserplane) -> None:
    """A user-supplied aiohttp session carries the calls and survives aclose()."""
    async with aiohttp.ClientSession(headers={"X-Trace": "t1"}) as session:
        async with AsyncUserplane(
            fake_userplane.api_key, base_url=fake_userplane.base_url, session=session
        ) as client:
            await client.me()
        assert not session.closed
        assert fake_userplane.api_requests()[-1].headers.get("x-trace") == "t1"


async def test_proxy_and_netrc_from_environment_are_ignored(
    fake_userplane: FakeUserplane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A hostile HTTP(S)_PROXY and ~/.netrc get no connection and no credentials."""
    connections = 0

    async def count(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        connections += 1
        await stream.aclose()

    netrc = tmp_path / ".netrc"
    netrc.write_text("default login stolen password hunter2\n")
    netrc.chmod(0o600)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as canary:
        port = canary.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - not Django
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
        monkeypatch.setenv("NETRC", str(netrc))
        monkeypatch.delenv("NO_PROXY", raising=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(canary.serve, count)
            async with AsyncUserplane(
                fake_userplane.api_key, base_url=fake_userplane.base_url
            ) as client:
                await client.me()
            tg.cancel_scope.cancel()
    assert connections == 0
    headers = fake_userplane.api_requests()[-1].headers
    assert headers["authorization"] == RequestRecord.redacted(f"Bearer {fake_userplane.api_key}")
    assert "hunter2" not in str(headers)


@pytest.mark.parametrize("field", ["per_minute", "per_day"])
def test_zero_rate_limit_is_refused(field: str) -> None:
    """A limit of zero would wait forever, so it is refused up front."""
    with pytest.raises(ValueError, match=field):
        RateLimit(**{field: 0})

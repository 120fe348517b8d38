"""The API key never shows up in a repr, an error, a log record or a warning."""

from __future__ import annotations

import logging

import pytest

from userplane_async import AsyncUserplane, RetryPolicy, UserplaneError
from userplane_async.testing import FakeUserplane

pytestmark = pytest.mark.anyio

SECRET = "uspl_secret0123456789abcdefSECRET"


@pytest.fixture
def fake(fake_userplane: FakeUserplane) -> FakeUserplane:
    fake_userplane.add_api_key(SECRET)
    return fake_userplane


def _texts(exc: BaseException) -> list[str]:
    """Everything a traceback or a log of the error shows, chained causes included."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), repr(vars(seen))]
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    return texts


async def test_key_absent_everywhere(fake: FakeUserplane, caplog: pytest.LogCaptureFixture) -> None:
    """A run through retries and failures leaks the key into no output at DEBUG level."""
    caplog.set_level(logging.DEBUG)
    fake.script("me", status=503, times=2)
    fake.script("workspaces.get", status=400, body={"error": "BAD", "message": f"key {SECRET}"})
    fake.script("recordings.get", status=200, body=b'{"data": {"recording": {"recordingId": 1}}}')
    errors: list[UserplaneError] = []
    async with AsyncUserplane(
        SECRET, base_url=fake.base_url, retry=RetryPolicy.no_wait()
    ) as client:
        assert SECRET not in repr(client)
        assert SECRET not in str(vars(client))
        await client.me()
        for call in (
            client.workspaces.get("ws_demo"),
            client.recordings.get("ws_demo", "rec_x"),
            client.recordings.get("ws_nope", "rec_x"),
        ):
            try:
                await call
            except UserplaneError as exc:
                errors.append(exc)
    assert len(errors) == 3
    assert "<redacted>" in str(errors[0])
    for error in errors:
        assert all(SECRET not in text for text in _texts(error))
    assert caplog.records, "the retries were logged"
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert all(SECRET not in str(record.args) for record in caplog.records)


async def test_bad_key_error_names_no_key(fake: FakeUserplane) -> None:
    """An invalid key is reported by code, not by value."""
    wrong = SECRET + "x"
    async with AsyncUserplane(wrong, base_url=fake.base_url) as client:
        with pytest.raises(UserplaneError) as caught:
            await client.me()
    assert all(wrong not in text for text in _texts(caught.value))


async def test_transport_errors_carry_no_url_or_cause() -> None:
    """Network failures are ours, with no link to aiohttp's exception (its request_info has the key)."""
    async with AsyncUserplane(
        SECRET, base_url="http://127.0.0.1:9/api/v1", retry=RetryPolicy.no_wait(attempts=1)
    ) as client:
        with pytest.raises(UserplaneError) as caught:
            await client.me()
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert all(SECRET not in text for text in _texts(caught.value))

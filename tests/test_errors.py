"""API error answers become typed errors: by documented code first, then by status."""

from __future__ import annotations

import pytest

from userplane_async import (
    AsyncUserplane,
    AuthenticationError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    UserplaneAPIError,
    UserplaneError,
)
from userplane_async._errors import CODE_TO_ERROR
from userplane_async.testing import FakeUserplane

pytestmark = pytest.mark.anyio

#: (code, status, class) for every code documented in userplane-api.md §4.2.
DOCUMENTED = [
    ("API_KEY_REQUIRED", 401, AuthenticationError),
    ("API_KEY_INVALID", 401, AuthenticationError),
    ("API_KEY_EXPIRED", 401, AuthenticationError),
    ("API_KEY_DISABLED", 403, PermissionDeniedError),
    ("NOT_A_MEMBER", 403, PermissionDeniedError),
    ("FORBIDDEN", 403, PermissionDeniedError),
    ("PLAN_LIMIT_EXCEEDED", 403, PermissionDeniedError),
    ("LINK_DELETE_FORBIDDEN", 403, PermissionDeniedError),
    ("RECORDING_DELETE_FORBIDDEN", 403, PermissionDeniedError),
    ("RECORDING_WORKSPACE_MISMATCH", 403, PermissionDeniedError),
    ("LINK_NOT_FOUND", 404, NotFoundError),
    ("RECORDING_NOT_FOUND", 404, NotFoundError),
    ("PROJECT_NOT_FOUND", 404, NotFoundError),
    ("WORKSPACE_NOT_FOUND", 404, NotFoundError),
    ("LINK_DEFAULT_PROJECT_NOT_FOUND", 404, NotFoundError),
    ("LINK_GONE", 410, GoneError),
    ("RECORDING_GONE", 410, GoneError),
    ("PROJECT_GONE", 410, GoneError),
    ("LINK_PROJECT_DELETED", 410, GoneError),
    ("RATE_LIMITED", 429, RateLimitError),
    ("LINK_CREATE_FAILED", 500, ServerError),
    ("LINK_UPDATE_FAILED", 500, ServerError),
    ("LINK_DELETE_FAILED", 500, ServerError),
    ("RECORDING_DELETE_FAILED", 500, ServerError),
    ("SERVICE_UNAVAILABLE", 503, ServerError),
]


def test_table_covers_every_documented_code() -> None:
    """The mapping knows exactly the documented codes."""
    assert set(CODE_TO_ERROR) == {code for code, _, _ in DOCUMENTED}


@pytest.mark.parametrize(
    ("code", "status", "cls"), [pytest.param(*row, id=row[0]) for row in DOCUMENTED]
)
async def test_documented_codes(
    client: AsyncUserplane,
    fake_userplane: FakeUserplane,
    code: str,
    status: int,
    cls: type[UserplaneAPIError],
) -> None:
    """Each documented code raises its class with status, code and message, without retrying."""
    body = {"error": code, "message": f"{code} happened"}
    fake_userplane.script("me", status=status, body=body, times=10, retry_after="9999")
    with pytest.raises(cls) as caught:
        await client.me()
    assert type(caught.value) is cls
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message == f"{code} happened"
    assert code in str(caught.value)
    # 4xx never retry; a 429 whose Retry-After is past the cap neither; 5xx use every attempt.
    assert len(fake_userplane.api_requests()) == (client.retry.attempts if status >= 500 else 1)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, UserplaneAPIError, id="400"),
        pytest.param(401, AuthenticationError, id="401"),
        pytest.param(403, PermissionDeniedError, id="403"),
        pytest.param(404, NotFoundError, id="404"),
        pytest.param(409, UserplaneAPIError, id="409"),
        pytest.param(410, GoneError, id="410"),
        pytest.param(422, UserplaneAPIError, id="422"),
        pytest.param(429, RateLimitError, id="429"),
        pytest.param(502, ServerError, id="502"),
    ],
)
async def test_unknown_code_maps_by_status(
    client: AsyncUserplane, fake_userplane: FakeUserplane, status: int, cls: type[Exception]
) -> None:
    """An undocumented code still raises the class of its status."""
    body = {"error": "SOMETHING_NEW", "message": "new failure"}
    fake_userplane.script("me", status=status, body=body, times=100)  # outlasts every retry
    with pytest.raises(cls) as caught:
        await client.me()
    assert type(caught.value) is cls
    assert caught.value.code == "SOMETHING_NEW"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html>Bad Gateway</html>", id="html"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"error": 5, "message": ["x"]}', id="wrong-types"),
        pytest.param(b"[1, 2]", id="array"),
    ],
)
async def test_non_json_error_bodies(
    client: AsyncUserplane, fake_userplane: FakeUserplane, body: bytes
) -> None:
    """A non-JSON or malformed error body still gives a clear error with its status."""
    fake_userplane.script("me", status=418, body=body)
    with pytest.raises(UserplaneAPIError) as caught:
        await client.me()
    assert caught.value.status == 418
    assert caught.value.code is None
    assert "418" in str(caught.value)


async def test_redirects_are_not_followed(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """A 3xx from the API is an error, and its target never sees a request."""
    target = fake_userplane.base_url + "/public/me"  # would answer: a follower would succeed
    fake_userplane.script("me", status=302, body=b"", headers={"Location": target})
    with pytest.raises(UserplaneAPIError, match="redirect"):
        await client.me()
    assert len(fake_userplane.api_requests()) == 1


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param(b"not json", "$", id="invalid-json"),
        pytest.param(b'{"message": "ok"}', "$.data", id="no-data"),
        pytest.param(b'{"message": "ok", "data": []}', "$.data", id="data-array"),
        pytest.param(b'{"data": {"user": {"id": 7}}}', "$.data.user.id", id="id-not-str"),
        pytest.param(b'{"data": {"user": {"name": "x"}}}', "$.data.user.id", id="id-missing"),
        pytest.param(
            b'{"data": {"user": {"id": "u", "emailVerified": "yes"}}}',
            "$.data.user.emailVerified",
            id="bool-as-str",
        ),
        pytest.param(
            b'{"data": {"user": {"id": "u"}, "stats": {"links": "3"}}}',
            "$.data.stats.links",
            id="int-as-str",
        ),
    ],
)
async def test_contradicting_payloads(
    client: AsyncUserplane, fake_userplane: FakeUserplane, body: bytes, path: str
) -> None:
    """A 2xx payload that contradicts the documented shape names the bad field."""
    fake_userplane.script("me", status=200, body=body)
    with pytest.raises(ResponseFormatError) as caught:
        await client.me()
    assert caught.value.path == path
    assert path in str(caught.value)


async def test_lenient_payload(client: AsyncUserplane, fake_userplane: FakeUserplane) -> None:
    """Unknown keys and nulls in optional fields are accepted."""
    body = {
        "message": "ok",
        "newTopLevel": True,
        "data": {
            "user": {"id": "u1", "name": None, "createdAt": None, "brandNew": {"x": 1}},
            "stats": None,
            "extra": [1, 2],
        },
    }
    fake_userplane.script("me", status=200, body=body)
    me = await client.me()
    assert me.user.id == "u1"
    assert me.user.name is None
    assert me.stats is None


async def test_oversized_answer_is_refused(
    client: AsyncUserplane, fake_userplane: FakeUserplane
) -> None:
    """An API answer larger than the cap raises instead of filling memory."""
    fake_userplane.script("me", status=200, body=b"[" + b"1," * (5 * 1024 * 1024) + b"1]")
    with pytest.raises(ResponseFormatError, match="larger than"):
        await client.me()


def test_every_error_is_a_userplane_error() -> None:
    """Catching UserplaneError catches every API error class."""
    assert all(issubclass(cls, UserplaneError) for cls in CODE_TO_ERROR.values())

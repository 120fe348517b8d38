"""Every error the SDK raises, rooted at :class:`UserplaneError`.

```
UserplaneError
├── ConfigurationError            bad api_key / base_url / arguments (also a ValueError)
├── InvalidIDError                an ID that is empty, '.', '..', or unsafe (also a ValueError)
├── ClientClosedError             the client was used after aclose() (also a RuntimeError)
├── ResponseFormatError           a 2xx payload that contradicts the documented shape
├── TransportError                the network failed before an HTTP answer arrived
│   ├── ConnectError
│   ├── RequestTimeoutError
│   └── TLSError                  certificate or handshake failure (never retried)
├── DownloadError                 a resource could not be saved or streamed (.recording_id, .kind)
│   ├── ResourceUnavailableError  the API has no URL for it (.capture_enabled says why)
│   ├── URLExpiredError           the object store kept refusing fresh URLs as expired
│   ├── URLPolicyError            a presigned URL broke the policy; refused before connecting
│   ├── StorageError              the object store answered with an error (.status, .code)
│   │   └── RangeNotSatisfiableError  416: the range asked for lies past the end (.size)
│   ├── IntegrityError            the bytes do not add up to the announced size
│   └── DestinationError          the local file could not be written (disk full, read-only)
└── UserplaneAPIError             the API answered with an error status (.status, .code, .message)
    ├── AuthenticationError       401
    ├── PermissionDeniedError     403
    ├── NotFoundError             404
    ├── GoneError                 410
    ├── RateLimitError            429, or the client-side daily budget is spent (.retry_after)
    └── ServerError               5xx
```

Messages and attributes never carry the API key or a presigned URL; errors translated from
foreign exceptions keep no link to them for the same reason (their text includes full URLs).
"""

from __future__ import annotations


class UserplaneError(Exception):
    """Root of every error raised by ``userplane_async``."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(UserplaneError, ValueError):
    """The client was configured wrongly (missing key, non-https base URL, bad argument)."""


class InvalidIDError(UserplaneError, ValueError):
    """An ID that cannot be used as a path segment (empty, ``.``, ``..``, not a str)."""


class ClientClosedError(UserplaneError, RuntimeError):
    """The client was used after ``aclose()``: a programming error, not a remote failure."""


class ResponseFormatError(UserplaneError):
    """A successful response whose payload contradicts the documented shape.

    ``path`` names the offending field (``$.data.recording.recordingDurationMs``).
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class TransportError(UserplaneError):
    """The request failed on the network before an HTTP answer arrived."""


class ConnectError(TransportError):
    """No connection could be opened (refused, DNS failure, TLS handshake)."""


class RequestTimeoutError(TransportError):
    """Connecting, or waiting for the next bytes of an answer, took too long."""


class TLSError(TransportError):
    """The TLS handshake failed: an untrusted certificate will not fix itself, so no retry."""


class UserplaneAPIError(UserplaneError):
    """The API answered with an error.

    ``status`` is the HTTP status, ``code`` the body's ``error`` field (``None`` when the body
    was not the documented JSON), ``message`` the human text.
    """

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def __str__(self) -> str:
        label = self.code or f"HTTP {self.status}"
        return f"{label}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class AuthenticationError(UserplaneAPIError):
    """401: the API key is missing, invalid or expired."""


class PermissionDeniedError(UserplaneAPIError):
    """403: the key is disabled, or its user may not do this here (``NOT_A_MEMBER``, ...)."""


class NotFoundError(UserplaneAPIError):
    """404: the workspace, project, link or recording does not exist."""


class GoneError(UserplaneAPIError):
    """410: the resource existed and has been (soft-)deleted."""


class RateLimitError(UserplaneAPIError):
    """429 from the API, or the client's own daily budget is spent.

    ``retry_after`` is the number of seconds after which a call may succeed, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        code: str | None = "RATE_LIMITED",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


#: ``RateLimitError.code`` when the client's own budget, not the server, refused the call.
BUDGET_SPENT = "CLIENT_BUDGET_SPENT"


class ServerError(UserplaneAPIError):
    """5xx: the API failed; retried with backoff where that is safe."""


class DownloadError(UserplaneError):
    """A resource could not be downloaded or streamed; no partial file is left behind."""

    def __init__(self, message: str, *, recording_id: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.recording_id = recording_id
        self.kind = kind


class ResourceUnavailableError(DownloadError):
    """The API returned no URL for this resource; ``message`` is the API's own explanation."""

    def __init__(
        self,
        message: str,
        *,
        capture_enabled: bool | None,
        recording_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, recording_id=recording_id, kind=kind)
        self.capture_enabled = capture_enabled


class URLExpiredError(DownloadError):
    """The object store answered "Request has expired" to every fresh URL we resolved."""


class URLPolicyError(DownloadError):
    """A presigned URL was refused before connecting (plain http off loopback, user info, ...)."""


class StorageError(DownloadError):
    """The object store answered with an error; ``code`` is S3's ``<Code>`` when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        recording_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, recording_id=recording_id, kind=kind)
        self.status = status
        self.code = code


class RangeNotSatisfiableError(StorageError):
    """416: no byte of the range asked for exists; ``size`` is the object's size, if known.

    A web handler answers its client 416 with ``Content-Range: bytes */<size>``.
    """

    def __init__(
        self,
        message: str,
        *,
        size: int | None,
        recording_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(
            message, status=416, code="InvalidRange", recording_id=recording_id, kind=kind
        )
        self.size = size


class IntegrityError(DownloadError):
    """The bytes received do not match the size the API or the object store announced."""


class DestinationError(DownloadError):
    """The destination could not be written (disk full, read-only, not a directory, ...).

    ``errno`` is the operating system's error number, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        errno: int | None = None,
        recording_id: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message, recording_id=recording_id, kind=kind)
        self.errno = errno


class ObjectStoreError(DestinationError):
    """An object store refused or failed a request (no bucket, access denied, throttled...).

    ``code`` is the store's error code when it said one (``AccessDenied``, ``NoSuchBucket``,
    ``SlowDown``, ...). Messages name what was being done, never a credential or signature.
    """

    def __init__(self, message: str, *, code: str | None = None, errno: int | None = None) -> None:
        super().__init__(message, errno=errno)
        self.code = code

    @property
    def refuses_all(self) -> bool:
        """The store refuses us as a whole (no bucket, no access): nothing more can succeed."""
        return self.code in _REFUSALS


# The object store's codes for "not here, not by you": a run that meets one stops.
_REFUSALS = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "InvalidToken",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
    }
)


#: Documented error codes (userplane-api.md §4.2) and the class each one raises.
CODE_TO_ERROR: dict[str, type[UserplaneAPIError]] = {
    "API_KEY_REQUIRED": AuthenticationError,
    "API_KEY_INVALID": AuthenticationError,
    "API_KEY_EXPIRED": AuthenticationError,
    "API_KEY_DISABLED": PermissionDeniedError,
    "NOT_A_MEMBER": PermissionDeniedError,
    "FORBIDDEN": PermissionDeniedError,
    "PLAN_LIMIT_EXCEEDED": PermissionDeniedError,
    "LINK_DELETE_FORBIDDEN": PermissionDeniedError,
    "RECORDING_DELETE_FORBIDDEN": PermissionDeniedError,
    "RECORDING_WORKSPACE_MISMATCH": PermissionDeniedError,
    "LINK_NOT_FOUND": NotFoundError,
    "RECORDING_NOT_FOUND": NotFoundError,
    "PROJECT_NOT_FOUND": NotFoundError,
    "WORKSPACE_NOT_FOUND": NotFoundError,
    "LINK_DEFAULT_PROJECT_NOT_FOUND": NotFoundError,
    "LINK_GONE": GoneError,
    "RECORDING_GONE": GoneError,
    "PROJECT_GONE": GoneError,
    "LINK_PROJECT_DELETED": GoneError,
    "RATE_LIMITED": RateLimitError,
    "LINK_CREATE_FAILED": ServerError,
    "LINK_UPDATE_FAILED": ServerError,
    "LINK_DELETE_FAILED": ServerError,
    "RECORDING_DELETE_FAILED": ServerError,
    "SERVICE_UNAVAILABLE": ServerError,
}

_STATUS_TO_ERROR: dict[int, type[UserplaneAPIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: GoneError,
    429: RateLimitError,
}


def error_class(status: int, code: str | None) -> type[UserplaneAPIError]:
    """The class for an error answer: by documented code first, then by status."""
    if code is not None and code in CODE_TO_ERROR:
        return CODE_TO_ERROR[code]
    if status >= 500:
        return ServerError
    return _STATUS_TO_ERROR.get(status, UserplaneAPIError)


def api_error(
    status: int, code: str | None, message: str, *, retry_after: float | None = None
) -> UserplaneAPIError:
    """Build the error for an API answer with ``status`` and body ``code``/``message``."""
    cls = error_class(status, code)
    if issubclass(cls, RateLimitError):
        return cls(message, status=status, code=code, retry_after=retry_after)
    return cls(message, status=status, code=code)

"""obstore's errors as ours: a :class:`ObjectStoreError` that names the store's error code and
what was being done, never a signature or a credential."""

from __future__ import annotations

import errno
import re

from obstore import exceptions

from .._errors import ObjectStoreError

_CODE = re.compile(r"<Code>([A-Za-z]{1,64})</Code>")
_STATUS = re.compile(r"status code: (\d{3})")


def store_error(exc: BaseException, action: str) -> ObjectStoreError:
    """An :class:`ObjectStoreError` for an obstore error met while doing ``action``."""
    text = str(exc)
    found = _CODE.search(text)
    code = found[1] if found else None
    status = _STATUS.search(text)
    if code is None:
        code = _fallback_code(exc)
    shown = code or type(exc).__name__
    at = f" (HTTP {status[1]})" if status else ""
    return ObjectStoreError(
        f"cannot {action}: the object store said {shown}{at}",
        code=code,
        errno=errno.EEXIST if isinstance(exc, exceptions.AlreadyExistsError) else None,
    )


def _fallback_code(exc: BaseException) -> str | None:
    if isinstance(exc, exceptions.PermissionDeniedError):
        return "AccessDenied"
    if isinstance(exc, exceptions.UnauthenticatedError):
        return "InvalidAccessKeyId"
    if isinstance(exc, (exceptions.AlreadyExistsError, exceptions.PreconditionError)):
        return "PreconditionFailed"
    if isinstance(exc, exceptions.NotFoundError):
        return "NoSuchKey"
    return None


def is_missing(exc: BaseException) -> bool:
    """The object is not there (and the bucket is)."""
    return isinstance(exc, FileNotFoundError) and "NoSuchBucket" not in str(exc)

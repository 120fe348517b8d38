"""Byte ranges of a resource, written and checked the way HTTP's ``Range`` header has them."""

from __future__ import annotations

import re
from typing import TypeGuard

import attrs

from ._errors import ConfigurationError

# One range of bytes only; several (``bytes=0-1,5-6``) are not one ByteRange.
_HEADER = re.compile(r"bytes=(?:(\d+)-(\d*)|-(\d+))")
# RFC 9110's entity-tag without the W/ of a weak one, in visible ASCII, of a sane length.
_STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e]{0,1024}"')


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"a ByteRange's {name} must be an int, not {value!r}")
    return value


@attrs.frozen
class ByteRange:
    """Bytes ``start`` to ``end`` of a resource, both included, as in ``Range: bytes=0-499``.

    ``end=None`` runs to the end of the object (``bytes=500-``); a negative ``start`` counts
    from the end, like a slice, so ``ByteRange(-500)`` is the last 500 bytes (``bytes=-500``,
    also :meth:`suffix`). An ``end`` past the object's last byte stops at it, as in HTTP.
    """

    start: int
    end: int | None = None

    def __attrs_post_init__(self) -> None:
        start = _int(self.start, "start")
        if self.end is None:
            return
        end = _int(self.end, "end")
        if start < 0:
            raise ConfigurationError("a ByteRange counted from the end (negative start) has no end")
        if end < start:
            raise ConfigurationError(f"a ByteRange's end ({end}) is before its start ({start})")

    @classmethod
    def suffix(cls, length: int) -> ByteRange:
        """The last ``length`` bytes (all of them if the object is shorter)."""
        if _int(length, "length") < 1:
            raise ConfigurationError("a suffix ByteRange needs a length of at least 1")
        return cls(-length)

    @classmethod
    def parse(cls, header: str | None) -> ByteRange | None:
        """The single range a ``Range`` header value asks for, or ``None``.

        ``None`` for a header that is absent, malformed, in another unit, asks for several
        ranges or for ``bytes=-0``: HTTP lets a server ignore those and send the whole object.
        """
        found = _HEADER.fullmatch((header or "").strip())
        if found is None:
            return None
        first, last, suffix = found.groups()
        if suffix is not None:
            return cls(-int(suffix)) if int(suffix) else None
        if last and int(last) < int(first):
            return None
        return cls(int(first), int(last) if last else None)

    @property
    def header(self) -> str:
        """The ``Range`` header value that asks for these bytes."""
        if self.start < 0:
            return f"bytes={self.start}"
        return f"bytes={self.start}-{'' if self.end is None else self.end}"

    def within(self, size: int) -> tuple[int, int] | None:
        """The first and last byte this range covers in an object of ``size`` bytes.

        ``None`` when it covers none (it starts at or past the end): HTTP's 416.
        """
        if size <= 0 or self.start >= size:
            return None
        if self.start < 0:
            return max(size + self.start, 0), size - 1
        return self.start, size - 1 if self.end is None else min(self.end, size - 1)


def content_range(first: int, last: int, size: int) -> str:
    """The ``Content-Range`` header value of a 206 carrying bytes ``first``-``last``."""
    return f"bytes {first}-{last}/{size}"


def is_strong_etag(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a strong entity tag (``"abc"``), the only kind If-Range may use."""
    return isinstance(value, str) and _STRONG_ETAG.fullmatch(value) is not None

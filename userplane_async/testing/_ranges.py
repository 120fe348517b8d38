"""HTTP conditional and range requests, evaluated the way S3 evaluates them for a GET."""

from __future__ import annotations

import re

import attrs

# One range only: S3 serves no multipart/byteranges, and ignores a header it cannot use.
_RANGE = re.compile(r"bytes=(?:(\d+)-(\d*)|-(\d+))")


@attrs.frozen
class Span:
    """Bytes ``[start, stop)`` of an object of ``total`` bytes."""

    start: int
    stop: int
    total: int

    @classmethod
    def whole(cls, total: int) -> Span:
        return cls(0, total, total)

    def __len__(self) -> int:
        return self.stop - self.start

    def head(self, count: int) -> Span:
        """The first ``count`` bytes of this span (all of it if shorter)."""
        return attrs.evolve(self, stop=min(self.stop, self.start + max(count, 0)))

    def content_range(self, shift: int = 0) -> str:
        """``bytes A-B/TOTAL`` (``shift`` moves both ends, to fake a misaligned answer)."""
        return f"bytes {self.start + shift}-{self.stop - 1 + shift}/{self.total}"


class Unsatisfiable(Exception):
    """The range starts at or past the end of the object: S3 answers 416."""


def parse_range(header: str | None, total: int) -> Span | None:
    """The span a ``Range`` header asks for, ``None`` to serve the whole object.

    A malformed header (or several ranges, or ``B < A``) is ignored like S3 ignores it.
    Raises :class:`Unsatisfiable` for a range no byte of the object falls in.
    """
    found = _RANGE.fullmatch((header or "").strip())
    if found is None:
        return None
    first, last, suffix = found.groups()
    if suffix is not None:
        length = int(suffix)
        if length == 0 or total == 0:
            raise Unsatisfiable
        return Span(max(total - length, 0), total, total)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= total:
        raise Unsatisfiable
    stop = total if not last else min(int(last) + 1, total)
    return Span(start, stop, total)


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``/``If-Range`` list names ``etag`` (``*`` names any object).

    S3 compares the tag text, so an unquoted tag matches too; a weak tag never does.
    """
    bare = etag.strip('"')
    return any(tag == "*" or tag.strip('"') == bare for tag in _tags(header))

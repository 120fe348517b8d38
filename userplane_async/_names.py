"""Which IDs may become path components of an archive (design rule 6)."""

from __future__ import annotations

import re

MAX_ID_LENGTH = 128
_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
# Names Windows refuses whatever their extension: an archive must be copyable there too.
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{n}" for n in range(1, 10)]
    + [f"LPT{n}" for n in range(1, 10)]
)


def unsafe_name_reason(value: object) -> str | None:
    """Why ``value`` cannot name a directory of the archive, or None if it can.

    Safe names are letters, digits, ``_``, ``-`` and ``.``, are not ``.`` or ``..``, and have
    at most :data:`MAX_ID_LENGTH` characters. The reason never repeats the value itself.
    """
    if not isinstance(value, str):
        return "the ID is not a string"
    if not value:
        return "the ID is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"the ID is longer than {MAX_ID_LENGTH} characters"
    if value in (".", "..") or not _SAFE.fullmatch(value):
        return "the ID is not a safe file name (letters, digits, '_', '-', '.')"
    if value.split(".")[0].upper() in _RESERVED or value.endswith("."):
        return "the ID is a name Windows reserves"
    return None

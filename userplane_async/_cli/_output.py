"""Where the command writes: human text and tables, or one JSON object per line.

JSON uses the API's camelCase keys (a model field's ``metadata["json"]`` where it has one, as
the models declare), so ``--json`` output reads like the API's own payloads.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs
from rich.console import Console

_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")


def json_key(field: attrs.Attribute[Any]) -> str:
    """The JSON key of a model field: its declared name, or the camelCase of its own."""
    declared = field.metadata.get("json")
    if isinstance(declared, str):
        return declared
    return _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), field.name)


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: attrs objects become objects keyed like the API's."""
    if attrs.has(type(value)):
        return {json_key(f): to_json(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    return value


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted.key, text)`` pairs for the non-null leaves of JSON data."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from flatten(value, f"{prefix}{key}.")
    elif data is not None and data != []:
        text = data if isinstance(data, str) else json.dumps(data)
        yield prefix.rstrip("."), text


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        return f"{moment:%Y-%m-%d %H:%M}"
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M}Z"


class _Console(Console):
    """rich's console, but a reader that went away (``| head``) is a ``BrokenPipeError``.

    rich raises ``SystemExit`` there, which inside a task group becomes an exception group
    with a traceback; a ``BrokenPipeError`` is what ``main()`` ends on quietly.
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


class Output:
    """stdout and stderr for one command run.

    ``live`` (rich progress bars) only when rich sees an interactive terminal on stdout, no
    ``--json`` and no ``-q``; rich also honours ``NO_COLOR``, ``TTY_COMPATIBLE`` and
    ``TTY_INTERACTIVE``. Text is printed as is: no markup, no highlighting, no wrapping.
    """

    def __init__(self, *, json_lines: bool, verbosity: int) -> None:
        options: dict[str, Any] = {"markup": False, "highlight": False, "emoji": False}
        self.stdout = _Console(soft_wrap=True, **options)
        self.stderr = _Console(stderr=True, soft_wrap=True, **options)
        self.json_lines = json_lines
        self.quiet = verbosity < 0
        self.live = self.stdout.is_interactive and not json_lines and not self.quiet

    def print(self, text: object = "") -> None:
        """A line of the command's result (never in ``--json`` mode)."""
        self.stdout.print(text)

    def info(self, text: str) -> None:
        """A line about the run, for people: left out with ``--json`` or ``-q``."""
        if not self.json_lines and not self.quiet:
            self.stdout.print(text)

    def error(self, text: str) -> None:
        self.stderr.print(text)

    def json(self, data: Any) -> None:
        """One JSON object on its own line, flushed at once (readers may be waiting)."""
        sys.stdout.write(json.dumps(to_json(data), separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def fields(self, obj: object) -> None:
        """An object as ``key: value`` lines, or one JSON line."""
        if self.json_lines:
            self.json(obj)
            return
        for key, text in flatten(to_json(obj)):
            self.print(f"{key}: {text}")

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """Columns padded to their widest cell, headers first."""
        lines = [list(headers), *(list(row) for row in rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
        for line in lines:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            self.print("  ".join(cells).rstrip())

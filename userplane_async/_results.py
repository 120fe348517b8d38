"""What a download hands back."""

# No ``from __future__ import annotations``: see ``_models``.
from pathlib import Path

import attrs


@attrs.frozen
class DownloadResult:
    """A resource saved to ``path``: its size, SHA-256 and how much work it took."""

    path: Path
    size: int
    sha256: str
    content_type: str | None
    attempts: int  # storage requests sent
    resolutions: int  # presigned URLs resolved through the API
    skipped: bool = False  # the file was already there with the announced size

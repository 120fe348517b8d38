"""Seeding and oracles shared by the ``client.archive()`` tests (this module holds no tests).

The oracles are the fault matrix's: **M** (every requested (recording, kind) has exactly one
manifest line per run, with the status expected), **H** (every saved file is the object, byte
for byte, at the path design §4 names), **G** (no temp file anywhere, nothing outside DEST, a
canary sibling directory untouched) and **S** (no API key, presigned query or URL in anything
the run left behind or reported).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from userplane_async import ArchiveReport, ResourceKind
from userplane_async.testing import FakeResource, FakeUserplane, RequestRecord

WS = "ws_archive"
KINDS = tuple(kind.value for kind in ResourceKind)
SIZES = {
    "video": 24_000,
    "thumbnail": 3_000,
    "console-log": 1_500,
    "network-log": 1_700,
    "action": 900,
}
TYPES = {
    "video": "video/webm",
    "thumbnail": "image/jpeg",
    "console-log": "application/x-ndjson",
    "network-log": "application/json",
    "action": "application/json",
}
# Design §4: the extension follows the MIME type.
EXTENSIONS = {
    "video/webm": "webm",
    "video/mp4": "mp4",
    "image/jpeg": "jpg",
    "image/png": "png",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
}
LINE_KEYS = {
    "workspaceId",
    "recordingId",
    "kind",
    "status",
    "path",
    "size",
    "sha256",
    "contentType",
    "time",
    "error",
    "errorType",
    "message",
}
URL_MARKERS = ("X-Amz-", "x-amz-", "Signature=", "Credential=", "Security-Token")
CANARY = b"canary: nothing may touch this"

Key = tuple[str, str]  # (recording_id, kind)


def content(recording_id: str, kind: str, size: int) -> bytes:
    """Distinct, deterministic bytes for one resource (a subprocess can make the same ones)."""
    return hashlib.shake_256(f"{recording_id}\0{kind}".encode()).digest(size)


def created_at(index: int) -> datetime:
    """Creation times that list recordings newest first in the order they were seeded."""
    return datetime(2025, 1, 1, tzinfo=timezone.utc) - timedelta(minutes=index)


def items(recording_ids: Iterable[str], kinds: Sequence[str] = KINDS) -> list[Key]:
    return [(recording_id, kind) for recording_id in recording_ids for kind in kinds]


class Archive:
    """One archive destination next to a canary, the objects seeded, and the oracles."""

    def __init__(self, fake: FakeUserplane, tmp_path: Path, workspace_id: str = WS) -> None:
        self.fake = fake
        self.workspace_id = workspace_id
        self.tmp = tmp_path
        self.dest = tmp_path / "dest"
        self.canary = tmp_path / "canary"
        self.canary.mkdir()
        (self.canary / "keep.txt").write_bytes(CANARY)
        self.objects: dict[Key, bytes] = {}
        self.types: dict[Key, str] = {}
        self.seeded: list[str] = []
        self.mapped: set[str] = set()  # IDs whose directory is "<id>~<hash>" (case variants)
        fake.add_workspace(workspace_id)

    # --- seeding -----------------------------------------------------------------------------

    def add(
        self,
        recording_id: str,
        *,
        uncaptured: Sequence[str] = (),
        sizes: Mapping[str, int] | None = None,
        types: Mapping[str, str] | None = None,
    ) -> None:
        """A recording with distinct content per kind; ``uncaptured`` kinds have none.

        Recordings are listed in the order they were added (the fake lists newest first).
        """
        resources: dict[str, FakeResource] = {}
        for kind in KINDS:
            if kind in uncaptured:
                resources[kind] = FakeResource(captured=False)
                continue
            data = content(recording_id, kind, {**SIZES, **(sizes or {})}[kind])
            mime = (types or {}).get(kind, TYPES[kind])
            resources[kind] = FakeResource(data, type=mime)
            self.objects[recording_id, kind] = data
            self.types[recording_id, kind] = mime
        self.fake.add_recording(
            self.workspace_id,
            recording_id,
            resources=resources,
            created_at=created_at(len(self.seeded)),
        )
        self.seeded.append(recording_id)

    def add_many(self, count: int, prefix: str = "rec_") -> list[str]:
        ids = [f"{prefix}{n:03d}" for n in range(count)]
        for recording_id in ids:
            self.add(recording_id)
        return ids

    # --- reading what the run left -------------------------------------------------------------

    def manifest_text(self) -> str:
        """The manifest, or "" if the run wrote no line (then it creates no file)."""
        path = self.dest / "manifest.jsonl"
        return path.read_text() if path.exists() else ""

    def lines(self, since: int = 0) -> list[dict[str, Any]]:
        """Manifest lines from number ``since`` on; every one must parse as a JSON object."""
        raw = self.manifest_text().splitlines()
        parsed = [json.loads(line) for line in raw[since:]]
        assert all(isinstance(line, dict) for line in parsed)
        return parsed

    def line_count(self) -> int:
        path = self.dest / "manifest.jsonl"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def file(self, recording_id: str, kind: str) -> Path:
        mime = self.types.get((recording_id, kind), TYPES[kind]).split(";")[0].strip()
        directory = self.dest / self.workspace_id / self.directory_name(recording_id)
        return directory / f"{kind}.{EXTENSIONS[mime]}"

    def directory_name(self, recording_id: str) -> str:
        """The recording's directory: its ID, or for an ID that must give way to another that
        differs only in case (listed in ``mapped``), the ID plus a hash of it."""
        if recording_id not in self.mapped:
            return recording_id
        return f"{recording_id}~{hashlib.sha256(recording_id.encode()).hexdigest()[:10]}"

    def files(self) -> dict[str, bytes]:
        """Every regular file under DEST by relative path, the manifest left out."""
        return {
            p.relative_to(self.dest).as_posix(): p.read_bytes()
            for p in sorted(self.dest.rglob("*"))
            if p.is_file() and p.name != "manifest.jsonl"
        }

    # --- oracles -------------------------------------------------------------------------------

    def check(
        self,
        expected: Mapping[Key, str],
        report: ArchiveReport | None = None,
        *,
        since: int = 0,
        skipped: int = 0,
    ) -> list[dict[str, Any]]:
        """M, H and G for one run: ``expected`` maps each item given a line to its status."""
        lines = self.lines(since)
        keys = [(line["recordingId"], line["kind"]) for line in lines]
        duplicates = [key for key, n in Counter(keys).items() if n > 1]
        assert not duplicates, f"items with more than one line: {duplicates}"
        assert {key: line["status"] for key, line in zip(keys, lines, strict=True)} == dict(
            expected
        )
        for line in lines:
            self.check_line(line)
        if report is not None:
            counts = Counter(line["status"] for line in lines)
            if skipped:
                counts["skipped"] += skipped
            assert report.counts == dict(counts)
            assert sum(report.counts.values()) == len(expected) + skipped
            failed = {(e.recording_id, e.kind) for e in report.items}
            assert failed == {
                key
                for key, status in expected.items()
                if status not in ("downloaded", "skipped", "unavailable")
            }
        self.check_no_leftovers()
        return lines

    def check_history(self) -> None:
        """Row 15, after re-runs: the whole manifest, line by line. Every line is whole and
        true of the files now on disk, no item was downloaded twice, and every seeded item's
        last line is final."""
        lines = self.lines()
        for line in lines:
            self.check_line(line)
        keys = [(line["recordingId"], line["kind"]) for line in lines]
        statuses = list(zip(keys, (line["status"] for line in lines), strict=True))
        downloads = Counter(key for key, status in statuses if status == "downloaded")
        assert [key for key, n in downloads.items() if n > 1] == []
        latest = dict(statuses)
        assert set(latest) == set(items(self.seeded))
        assert set(latest.values()) <= {"downloaded", "skipped", "unavailable"}

    def check_line(self, line: Mapping[str, Any]) -> None:
        """One line: the fields of design §4, and for a saved file, the file is the object (H)."""
        assert set(line) == LINE_KEYS, set(line) ^ LINE_KEYS  # every field, nulls written too
        assert line["workspaceId"] == self.workspace_id
        assert line["kind"] in KINDS
        assert line["time"].endswith("Z")
        if line["status"] in ("downloaded", "skipped"):
            self.check_saved(line)
        else:
            assert line["path"] is None
            assert line["sha256"] is None
        if line["status"] in ("failed", "not_found", "gone", "deferred"):
            assert line["error"]
            assert line["errorType"]
            assert line["message"]

    def check_saved(self, line: Mapping[str, Any]) -> None:
        key = (line["recordingId"], line["kind"])
        expected = self.objects[key]
        relative = Path(line["path"])
        assert not relative.is_absolute()
        assert ".." not in relative.parts
        assert line["path"] == self.file(*key).relative_to(self.dest).as_posix()
        data = (self.dest / relative).read_bytes()
        assert data == expected
        assert line["size"] == len(expected)
        assert line["sha256"] == hashlib.sha256(expected).hexdigest()
        assert line["contentType"] == self.types[key]
        assert line["error"] is None

    def check_no_leftovers(self) -> None:
        """G: no temp file anywhere, nothing beside DEST and the canary, the canary intact."""
        everything = list(self.tmp.rglob("*"))
        assert [p for p in everything if p.name.endswith(".part")] == []
        assert {p.name for p in self.tmp.iterdir()} <= {"dest", "canary"}
        assert [p.name for p in self.canary.iterdir()] == ["keep.txt"]
        assert (self.canary / "keep.txt").read_bytes() == CANARY
        if not self.dest.exists():
            return
        for path in self.dest.rglob("*"):
            assert not path.is_symlink()
            parts = path.relative_to(self.dest).parts
            if parts == ("manifest.jsonl",):
                continue
            assert parts[0] == self.workspace_id, parts
            if len(parts) > 1:
                assert parts[1] in {self.directory_name(r) for r in self.seeded}, parts
            if len(parts) > 2:
                assert len(parts) == 3, parts
                assert parts[2] == "recording.json" or parts[2].split(".")[0] in KINDS

    def check_identical(self, before: Mapping[str, bytes]) -> None:
        """Files saved earlier are still there and unchanged."""
        now = self.files()
        assert {name: now.get(name) for name in before} == dict(before)


def storage_keys(records: Iterable[RequestRecord]) -> list[Key]:
    """(recording, kind) of each object-store request, from its ``/storage/ws/rec/kind`` path."""
    keys = []
    for record in records:
        _, _, _, recording_id, kind = record.path.split("/")
        keys.append((unquote(recording_id), unquote(kind)))
    return keys


def routes(fake: FakeUserplane, since: int = 0) -> list[str]:
    return [r.route for r in fake.api_requests()[since:]]


def query_values(records: Iterable[RequestRecord]) -> set[str]:
    """The signature and token values of every storage query, raw and decoded."""
    values: set[str] = set()
    for record in records:
        for pair in record.query.split("&"):
            name, _, value = pair.partition("=")
            if name in ("X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential") and value:
                values |= {value, unquote(value)}
    return values


def assert_no_secrets(fake: FakeUserplane, texts: Iterable[str]) -> None:
    """S: neither the key, nor a presigned query part, nor the fake's URL in any text."""
    origin = fake.base_url.split("/api/")[0]
    secrets = [fake.api_key, origin, *query_values(fake.storage_requests())]
    for text in texts:
        assert not [s for s in secrets if s in text], text
        assert not [m for m in URL_MARKERS if m in text], text


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    records: list[logging.LogRecord] = caplog.records
    return [caplog.text] + [r.getMessage() for r in records] + [str(r.args) for r in records]


async def listed_items(fake: FakeUserplane, workspace_id: str = WS) -> list[dict[str, Any]]:
    """The List Recordings items as the fake sends them, read with plain aiohttp."""
    found: list[dict[str, Any]] = []
    url = f"{fake.base_url}/public/workspace/{workspace_id}/recordings"
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with aiohttp.ClientSession() as session:
        for page in range(1, 50):
            params = {"page": str(page), "per_page": "20"}
            async with session.get(url, params=params, headers=headers) as response:
                data = (await response.json())["data"]
            found += data["recordings"]
            if not data["pagination"]["hasMore"]:
                break
    return found


def list_page(
    workspace_id: str, recordings: Sequence[Mapping[str, Any]], page: int, pages: int
) -> dict[str, Any]:
    """A List Recordings answer with these items, as page ``page`` of ``pages``."""
    return {
        "message": "Recordings retrieved successfully",
        "data": {
            "workspaceId": workspace_id,
            "recordings": list(recordings),
            "pagination": {
                "page": page,
                "perPage": 20,
                "total": 20 * pages,
                "totalPages": pages,
                "hasMore": page < pages,
            },
        },
    }

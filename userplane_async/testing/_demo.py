"""The demo workspace: a project, a domain, two links and recordings with varied captures."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from importlib import resources

from ._content import RESOURCE_KINDS, FakeResource
from ._seeding import Seeding

DEMO_WORKSPACE = "ws_demo"
LARGE_VIDEO_SIZE = 50 * 1024 * 1024
DEMO_VIDEO_DURATION_MS = 5_000  # data/video.webm: 5 s of ffmpeg's testsrc2 pattern

# Real sample files shipped as package data (see data/README.md for how they were made).
_DATA_FILES = {
    "video": "video.webm",
    "thumbnail": "thumbnail.jpg",
    "console-log": "console-log.ndjson",
    "network-log": "network-log.json",
    "action": "action.json",
}


@functools.cache
def sample(kind: str) -> bytes:
    """The bytes of the shipped sample file for one resource kind."""
    data = resources.files("userplane_async.testing") / "data"
    return (data / _DATA_FILES[kind]).read_bytes()


def _samples() -> dict[str, FakeResource]:
    return {kind: FakeResource(sample(kind)) for kind in RESOURCE_KINDS}


def _seed_structure(fake: Seeding) -> None:
    fake.add_workspace(DEMO_WORKSPACE, name="Demo workspace")
    fake.add_project(DEMO_WORKSPACE, "prj_demo", title="Demo project")
    fake.add_domain(DEMO_WORKSPACE, "dom_demo", url="https://shop.demo.test")
    fake.add_link(
        DEMO_WORKSPACE,
        "lnk_demo_support",
        title="Support ticket #4521",
        domain_id="dom_demo",
        provider_type="intercom",
        provider_id="conv_4521",
        provider_ref="4521",
    )
    fake.add_link(
        DEMO_WORKSPACE, "lnk_demo_feedback", title="Feedback", domain_id="dom_demo", reusable=True
    )


def seed_demo(fake: Seeding) -> str:
    """Seed ``ws_demo`` and return its ID.

    Recordings, newest first: ``rec_demo_full`` (everything captured, with real sample files:
    a playable 5 s WebM, a JPEG thumbnail and realistic logs),
    ``rec_demo_no_logs`` (console and network logs not captured), ``rec_demo_no_video``
    (video not captured), ``rec_demo_large`` (a 50 MiB generated video), ``rec_demo_small``
    (small generated content) and ``rec_demo_deleted`` (soft-deleted).
    """
    _seed_structure(fake)
    now = fake._when(None)

    def hours_ago(hours: int) -> datetime:
        return now - timedelta(hours=hours)

    off = FakeResource(captured=False)
    ws = DEMO_WORKSPACE
    fake.add_recording(
        ws,
        "rec_demo_full",
        link_id="lnk_demo_support",
        duration_ms=DEMO_VIDEO_DURATION_MS,
        notes="Checkout button does nothing",
        custom_meta={"plan": "pro", "customerId": "cust_42"},
        system_meta={"browser": "Chrome 126", "os": "macOS 14.5", "viewport": "1440x900"},
        resources=_samples(),
        created_at=hours_ago(1),
    )
    fake.add_recording(
        ws,
        "rec_demo_no_logs",
        link_id="lnk_demo_feedback",
        resources={"console-log": off, "network-log": off},
        created_at=hours_ago(2),
    )
    fake.add_recording(
        ws,
        "rec_demo_no_video",
        link_id="lnk_demo_feedback",
        resources={"video": off},
        created_at=hours_ago(3),
    )
    fake.add_recording(
        ws,
        "rec_demo_large",
        link_id="lnk_demo_support",
        duration_ms=178_000,
        resources={"video": FakeResource(size=LARGE_VIDEO_SIZE)},
        created_at=hours_ago(4),
    )
    fake.add_recording(ws, "rec_demo_small", duration_ms=3_100, created_at=hours_ago(5))
    fake.add_recording(ws, "rec_demo_deleted", created_at=hours_ago(6))
    fake.delete_recording(ws, "rec_demo_deleted")
    return ws

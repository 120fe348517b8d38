"""Cost of turning a listing page into models, next to the JSON parse it cannot avoid.

Run with ``nox -s bench``; pytest-benchmark prints both rows of a group side by side.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from userplane_async import Recording
from userplane_async._convert import structure

ITEMS = 1_000


def _recording(n: int) -> dict[str, Any]:
    stamp = "2026-11-07T05:31:56Z"
    return {
        "recordingId": f"rec_{n:06}",
        "recordingDurationMs": 45_200,
        "recordingStartedAt": stamp,
        "meta": {
            "workspaceId": "ws_1",
            "status": "completed",
            "link": {"linkId": "link_1", "title": "Ticket", "createdAt": stamp},
            "creator": {"workspaceMemberId": "mem_1", "name": "Ada"},
            "project": {"projectId": "proj_1", "title": "Support"},
            "domain": {"domainId": "dom_1", "url": "https://shop.example"},
            "systemMeta": {"browser": "Firefox", "os": "Linux"},
            "customMeta": {"plan": "pro"},
            "createdAt": stamp,
            "updatedAt": stamp,
        },
    }


PAGE = json.dumps([_recording(n) for n in range(ITEMS)]).encode()


@pytest.mark.benchmark(group="listing page of 1,000 recordings")
def bench_json_only(benchmark: BenchmarkFixture) -> None:
    """Baseline: json.loads alone."""
    assert len(benchmark(json.loads, PAGE)) == ITEMS


@pytest.mark.benchmark(group="listing page of 1,000 recordings")
def bench_json_and_models(benchmark: BenchmarkFixture) -> None:
    """json.loads plus structuring every item into a Recording."""

    def parse() -> tuple[Recording, ...]:
        return structure(json.loads(PAGE), tuple[Recording, ...])

    assert len(benchmark(parse)) == ITEMS

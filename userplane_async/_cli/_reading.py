"""Commands that read or change API objects: tables and ``key: value`` lines, or JSON lines."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterable, Callable, Sequence
from typing import Generic, TypeVar

from .. import AsyncUserplane, Link, Project, Recording, Workspace
from ._output import Output, human_time

T = TypeVar("T")

EXIT_OK = 0


class Columns(Generic[T]):
    """How a list command shows each item: a header and a cell function per column."""

    def __init__(self, *columns: tuple[str, Callable[[T], object]]) -> None:
        self.headers = [header for header, _ in columns]
        self._cells = [cell for _, cell in columns]

    def row(self, item: T) -> list[str]:
        return ["-" if value is None else str(value) for value in (c(item) for c in self._cells)]


async def _listing(items: AsyncIterable[T], columns: Columns[T], out: Output) -> int:
    """JSON lines as pages arrive, or a table once all are in."""
    rows: list[Sequence[str]] = []
    async for item in items:
        if out.json_lines:
            out.json(item)
        else:
            rows.append(columns.row(item))
    if not out.json_lines:
        out.table(columns.headers, rows)
    return EXIT_OK


def _seconds(ms: int | None) -> str | None:
    return None if ms is None else f"{ms / 1000:.1f} s"


RECORDINGS = Columns[Recording](
    ("ID", lambda r: r.recording_id),
    ("DURATION", lambda r: _seconds(r.recording_duration_ms)),
    ("STATUS", lambda r: r.meta and r.meta.status),
    ("STARTED", lambda r: human_time(r.recording_started_at)),
    ("LINK", lambda r: r.meta and r.meta.link and (r.meta.link.title or r.meta.link.link_id)),
    ("PROJECT", lambda r: r.meta and r.meta.project and r.meta.project.project_id),
)
WORKSPACES = Columns[Workspace](
    ("ID", lambda w: w.workspace_id),
    ("NAME", lambda w: w.workspace_name),
    ("ROLE", lambda w: w.workspace_membership and w.workspace_membership.workspace_role),
    ("CREATED", lambda w: human_time(w.created_at)),
)
PROJECTS = Columns[Project](
    ("ID", lambda p: p.project_id),
    ("TITLE", lambda p: p.title),
    ("CREATED", lambda p: human_time(p.created_at)),
)
LINKS = Columns[Link](
    ("ID", lambda k: k.link_id),
    ("TITLE", lambda k: k.link_title),
    (
        "REUSABLE",
        lambda k: None if k.link_reusable is None else ("yes" if k.link_reusable else "no"),
    ),
    ("PROVIDER", lambda k: k.link_provider_type),
    ("URL", lambda k: k.link_url),
)


async def me(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    out.fields(await client.me())
    return EXIT_OK


async def budget(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    status = await client.budget_status()
    out.fields(status)
    if not status.shared:
        out.info(
            "This is this process's own count: pass --budget redis://... (or set "
            "USERPLANE_BUDGET_URL) to see the budget all processes of the user share."
        )
    return EXIT_OK


async def workspaces_list(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    items = client.workspaces.list(include_membership=args.membership)
    return await _listing(items, WORKSPACES, out)


async def workspaces_get(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    out.fields(await client.workspaces.get(args.workspace_id))
    return EXIT_OK


async def projects_list(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    return await _listing(client.projects.list(args.workspace_id), PROJECTS, out)


async def projects_get(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    out.fields(await client.projects.get(args.workspace_id, args.project_id))
    return EXIT_OK


async def recordings_list(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    items = client.recordings.list(
        args.workspace_id,
        project_id=args.project_id,
        link_id=args.link_id,
        created_by=args.created_by,
    )
    return await _listing(items, RECORDINGS, out)


async def recordings_get(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    out.fields(await client.recordings.get(args.workspace_id, args.recording_id))
    return EXIT_OK


async def recordings_delete(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    deleted = await client.recordings.delete(args.workspace_id, args.recording_id)
    if out.json_lines:
        out.json(deleted)
    else:
        out.print(f"Deleted recording {deleted.recording_id} of {deleted.workspace_id}")
    return EXIT_OK


async def links_list(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    return await _listing(client.links.list(args.workspace_id), LINKS, out)


async def links_get(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    out.fields(await client.links.get(args.workspace_id, args.link_id))
    return EXIT_OK


async def links_create(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    link = await client.links.create(
        args.workspace_id,
        domain_id=args.domain_id,
        project_id=args.project_id,
        link_reference=args.reference,
        link_reusable=args.reusable,
    )
    out.fields(link)
    return EXIT_OK


async def links_update(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    link = await client.links.update(
        args.workspace_id,
        args.link_id,
        link_title=args.title,
        link_reusable=args.reusable,
        link_provider_type=args.provider_type,
        link_provider_id=args.provider_id,
        link_provider_ref=args.provider_ref,
    )
    out.fields(link)
    return EXIT_OK


async def links_delete(client: AsyncUserplane, args: argparse.Namespace, out: Output) -> int:
    deleted = await client.links.delete(args.workspace_id, args.link_id)
    if out.json_lines:
        out.json(deleted)
    else:
        out.print(f"Deleted link {deleted.link_id} of {deleted.workspace_id}")
    return EXIT_OK

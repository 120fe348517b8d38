"""``userplane-async``: a thin command line over the public API.

Exit codes: 0 all done, 1 some items failed, 2 usage error, 3 fatal (auth, nothing done).
Errors print as ``ErrorType: message``; never a traceback, never a secret.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import anyio

from . import AsyncUserplane, Recording, RecordingResource, ResourceKind, UserplaneError
from .testing import FakeUserplane

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3

Command = Callable[[argparse.Namespace], Awaitable[int]]


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _availability(resource: RecordingResource) -> str:
    if resource.available:
        return _size(resource.size)
    return "not captured" if resource.capture_enabled is False else "unavailable"


def _recording_row(recording: Recording, resources: Sequence[RecordingResource]) -> list[str]:
    duration = (recording.recording_duration_ms or 0) / 1000
    status = recording.meta.status if recording.meta else None
    cells = [f"{r.kind}: {_availability(r)}" for r in resources]
    return [recording.recording_id, f"{duration:.1f} s", status or "-", ", ".join(cells)]


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


async def _list_recordings(client: AsyncUserplane, workspace_id: str) -> int:
    workspace = await client.workspaces.get(workspace_id)
    print(f"Workspace {workspace.workspace_id} ({workspace.workspace_name or 'unnamed'})")
    rows = []
    async for recording in client.recordings.list(workspace_id):
        resources = [
            await client.recordings.resource(workspace_id, recording.recording_id, kind)
            for kind in ResourceKind
        ]
        rows.append(_recording_row(recording, resources))
    _print_table(rows)
    print(f"{len(rows)} recordings, {client.api_calls} API calls")
    return EXIT_OK


async def _demo(args: argparse.Namespace) -> int:
    """List the built-in fake's demo workspace: no account needed."""
    async with FakeUserplane() as fake:
        workspace_id = fake.seed_demo()
        print(f"Started a fake Userplane at {fake.base_url}")
        async with AsyncUserplane(fake.api_key, base_url=fake.base_url) as client:
            return await _list_recordings(client, workspace_id)


async def _fake_server(args: argparse.Namespace) -> int:
    """Run the fake Userplane, seeded with the demo workspace, until SIGINT or SIGTERM."""
    async with FakeUserplane(port=args.port) as fake:
        workspace_id = fake.seed_demo()
        print("Fake Userplane is running; point the SDK at it with:")
        print(f"  USERPLANE_BASE_URL={fake.base_url}")
        print(f"  USERPLANE_API_KEY={fake.api_key}")
        print(f"Demo workspace: {workspace_id}. Press Ctrl+C to stop.", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
    print("Stopped.")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="userplane-async", description="Work with Userplane recordings from the shell."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="list a built-in fake workspace (no account needed)")
    demo.set_defaults(run=_demo)
    fake = commands.add_parser("fake-server", help="run the fake Userplane for local testing")
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    fake.set_defaults(run=_fake_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    run: Command = args.run
    try:
        return anyio.run(run, args)
    except KeyboardInterrupt:
        return EXIT_FAILED
    except (UserplaneError, OSError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FATAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

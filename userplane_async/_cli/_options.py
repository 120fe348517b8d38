"""The argument parser: every command, its arguments, and the options commands share.

The output and connection options work before or after the command (``-v archive ...`` or
``archive ... -v``): they are declared on both levels with suppressed defaults, and filled in
after parsing. Options only some commands take (``--concurrency``, the API budget) come after
the command, and only its ``--help`` lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from .. import ResourceKind, __version__
from . import _jobs, _reading
from ._confirm import add_confirmation, check_confirmable

KINDS = tuple(kind.value for kind in ResourceKind)

#: Defaults of the shared options (declared with ``argparse.SUPPRESS``, see the docstring).
SHARED_DEFAULTS: dict[str, Any] = {
    "verbose": 0,
    "quiet": False,
    "json": False,
    "api_key": None,
    "base_url": None,
    "budget": None,
    "concurrency": None,
    "per_minute": None,
    "per_day": None,
}


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def kind_list(text: str) -> list[str]:
    """``video,thumbnail`` -> the kinds, each checked against :class:`ResourceKind`."""
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS] or ([] if kinds else [text])
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown kind {unknown[0]!r}; choose from {', '.join(KINDS)}"
        )
    return kinds


def _output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    loudness = group.add_mutually_exclusive_group()
    hide = argparse.SUPPRESS
    loudness.add_argument(
        "-v", "--verbose", action="count", default=hide, help="log more (-v: INFO, -vv: DEBUG)"
    )
    loudness.add_argument(
        "-q", "--quiet", action="store_true", default=hide, help="errors and the summary only"
    )
    group.add_argument(
        "--json", action="store_true", default=hide, help="one JSON object per line on stdout"
    )


def _connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    hide = argparse.SUPPRESS
    group.add_argument(
        "--api-key", default=hide, help="API key (default: $USERPLANE_API_KEY, which is safer)"
    )
    group.add_argument(
        "--base-url", default=hide, help="API base URL (default: $USERPLANE_BASE_URL)"
    )
    group.add_argument(
        "--budget",
        default=hide,
        metavar="URL",
        help="share the user's API budget through this Redis (redis://host:6379/0; "
        "default: $USERPLANE_BUDGET_URL, else this process counts alone)",
    )


def _budget_options(parser: argparse.ArgumentParser) -> None:
    """For the commands that may make many API calls: archive and the lists."""
    group = parser.add_argument_group("API budget")
    hide = argparse.SUPPRESS
    group.add_argument(
        "--requests-per-minute",
        dest="per_minute",
        type=positive_int,
        default=hide,
        metavar="N",
        help="client-side API budget per minute (default: 120)",
    )
    group.add_argument(
        "--requests-per-day",
        dest="per_day",
        type=positive_int,
        default=hide,
        metavar="N",
        help="client-side API budget per day (default: 10000)",
    )


def _concurrency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="parallel downloads (default: 8)",
    )


class _Commands:
    """Adds leaf commands with the options they share: output for all, connection for those
    that need an API client (``client``), the API budget for those that may make many calls
    (``budget``). Each command's ``--help`` lists only options that change what it does."""

    def __init__(self, parent: Any) -> None:
        self._parent = parent

    def add(
        self,
        name: str,
        run: Callable[..., Any],
        help: str,
        *,
        client: bool = True,
        budget: bool = False,
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._parent.add_parser(
            name, help=help, description=help[0].upper() + help[1:] + "."
        )
        _output_options(parser)
        if client:
            _connection_options(parser)
        if budget:
            _budget_options(parser)
        parser.set_defaults(run=run, needs_client=client)
        return parser

    def group(self, name: str, help: str) -> _Commands:
        parser = self._parent.add_parser(name, help=help, description=help[0].upper() + help[1:])
        return _Commands(parser.add_subparsers(dest="action", required=True, metavar="ACTION"))


def _archive_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kinds",
        type=kind_list,
        action="extend",
        metavar="KIND[,KIND]",
        help=f"resources to save (repeatable; default: all of {', '.join(KINDS)})",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-hash files an earlier run saved before skipping them",
    )


def _add_saving_commands(commands: _Commands) -> None:
    archive = commands.add(
        "archive", _jobs.archive, "archive a workspace into DEST (resumable)", budget=True
    )
    archive.add_argument("workspace_id", metavar="WORKSPACE_ID")
    archive.add_argument(
        "dest", metavar="DEST", help="a directory, or an s3://, gs://, az:// or file:// URL"
    )
    _archive_options(archive)
    _concurrency_option(archive)
    archive.add_argument(
        "--recording",
        dest="recording_ids",
        action="append",
        metavar="ID",
        help="archive only this recording (repeatable)",
    )
    download = commands.add("download", _jobs.download, "save one resource of a recording")
    download.add_argument("workspace_id", metavar="WORKSPACE_ID")
    download.add_argument("recording_id", metavar="RECORDING_ID")
    download.add_argument("kind", metavar="KIND", choices=KINDS, help=", ".join(KINDS))
    download.add_argument(
        "dest",
        metavar="DEST",
        nargs="?",
        default=".",
        help="file or directory, or an s3://... URL (a trailing / names a prefix; default: .)",
    )
    download.add_argument("--overwrite", action="store_true", help="replace a file already there")
    verify = commands.add(
        "verify", _jobs.verify, "re-hash an archive against its manifest", client=False
    )
    verify.add_argument("dest", metavar="DEST", help="a directory, or an s3://, gs://... URL")
    cleanup = commands.add(
        "cleanup",
        _jobs.cleanup,
        "abort the incomplete multipart uploads killed archive runs left under an s3:// DEST",
        client=False,
    )
    cleanup.add_argument("dest", metavar="DEST", help="s3://bucket/prefix of the archive")
    cleanup.add_argument(
        "--older-than",
        type=non_negative_float,
        default=3600.0,
        metavar="SECONDS",
        help="only uploads started this long ago: a run still under way keeps its own "
        "(default: 3600)",
    )
    demo = commands.add(
        "demo",
        _jobs.demo,
        "archive the built-in fake's demo workspace (no account needed)",
        client=False,
    )
    demo.add_argument(
        "dest",
        metavar="DEST",
        nargs="?",
        help="default: ~/.cache/userplane-async/demo ($XDG_CACHE_HOME), replaced on each run",
    )
    _archive_options(demo)
    _concurrency_option(demo)
    fake = commands.add(
        "fake-server", _jobs.fake_server, "run the fake Userplane for local testing", client=False
    )
    fake.add_argument("--port", type=port, default=0, help="port on 127.0.0.1 (default: any)")
    fake.add_argument(
        "--keys",
        type=positive_int,
        default=1,
        metavar="N",
        help="API keys for the demo user, all sharing one rate limit (default: 1)",
    )
    fake.add_argument(
        "--rate-limit",
        type=positive_int,
        default=120,
        metavar="PER_MINUTE",
        help="the fake's limit of API calls per minute and user (default: 120)",
    )
    fake.add_argument(
        "--daily-limit",
        type=positive_int,
        default=10_000,
        metavar="PER_DAY",
        help="the fake's limit of API calls per day and user (default: 10000)",
    )


def _add_reading_commands(commands: _Commands) -> None:
    recordings = commands.group("recordings", "list, show or delete recordings")
    listing = recordings.add(
        "list", _reading.recordings_list, "list a workspace's recordings", budget=True
    )
    listing.add_argument("workspace_id", metavar="WORKSPACE_ID")
    listing.add_argument("--project-id")
    listing.add_argument("--link-id")
    listing.add_argument("--created-by", metavar="MEMBER_ID")
    for action, run in (("get", _reading.recordings_get), ("delete", _reading.recordings_delete)):
        parser = recordings.add(action, run, f"{action} a recording")
        parser.add_argument("workspace_id", metavar="WORKSPACE_ID")
        parser.add_argument("recording_id", metavar="RECORDING_ID")
        if action == "delete":
            add_confirmation(parser, "recording", "recording_id")

    workspaces = commands.group("workspaces", "list or show workspaces")
    listing = workspaces.add("list", _reading.workspaces_list, "list your workspaces", budget=True)
    listing.add_argument("--membership", action="store_true", help="add your role in each")
    workspaces.add("get", _reading.workspaces_get, "show a workspace").add_argument(
        "workspace_id", metavar="WORKSPACE_ID"
    )

    projects = commands.group("projects", "list or show projects")
    projects.add(
        "list", _reading.projects_list, "list a workspace's projects", budget=True
    ).add_argument("workspace_id", metavar="WORKSPACE_ID")
    parser = projects.add("get", _reading.projects_get, "show a project")
    parser.add_argument("workspace_id", metavar="WORKSPACE_ID")
    parser.add_argument("project_id", metavar="PROJECT_ID")

    _add_link_commands(commands.group("links", "list, show, create, update or delete links"))
    commands.add("me", _reading.me, "show the key's user and their stats")
    commands.add(
        "budget",
        _reading.budget,
        "show the API budget: calls used, left today, any pause",
        budget=True,
    )


def _add_link_commands(links: _Commands) -> None:
    links.add("list", _reading.links_list, "list a workspace's links", budget=True).add_argument(
        "workspace_id", metavar="WORKSPACE_ID"
    )
    for action, run in (("get", _reading.links_get), ("delete", _reading.links_delete)):
        parser = links.add(action, run, f"{action} a link")
        parser.add_argument("workspace_id", metavar="WORKSPACE_ID")
        parser.add_argument("link_id", metavar="LINK_ID")
        if action == "delete":
            add_confirmation(parser, "link", "link_id")
    create = links.add("create", _reading.links_create, "create a link on a verified domain")
    create.add_argument("workspace_id", metavar="WORKSPACE_ID")
    create.add_argument("--domain-id", required=True)
    create.add_argument("--project-id")
    create.add_argument("--reference", help="your reference for the link")
    create.add_argument("--reusable", action="store_const", const=True, help="reusable link")
    update = links.add("update", _reading.links_update, "change fields of a link")
    update.add_argument("workspace_id", metavar="WORKSPACE_ID")
    update.add_argument("link_id", metavar="LINK_ID")
    update.add_argument("--title")
    update.add_argument("--reusable", action=argparse.BooleanOptionalAction)
    update.add_argument("--provider-type")
    update.add_argument("--provider-id")
    update.add_argument("--provider-ref")
    update.set_defaults(
        changes=("title", "reusable", "provider_type", "provider_id", "provider_ref")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="userplane-async",
        description="Archive and read Userplane recordings from the shell.",
        epilog="Exit codes: 0 all done, 1 some items failed, interrupted or not confirmed, "
        "2 usage error, 3 fatal error (nothing done).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _output_options(parser)
    _connection_options(parser)
    commands = _Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    _add_saving_commands(commands)
    _add_reading_commands(commands)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; a usage error exits 2 (argparse's ``SystemExit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in SHARED_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    changes = getattr(args, "changes", ())
    if changes and all(getattr(args, name) is None for name in changes):
        parser.error("links update: give at least one field to change")
    check_confirmable(args)
    return args

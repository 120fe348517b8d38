"""Asking before a command deletes something: yes on a terminal, or ``--yes`` beforehand.

Without a terminal there is nobody to ask, so a delete without ``--yes`` is a usage error
(exit 2) before any API call: a script must say what it means.
"""

from __future__ import annotations

import argparse
import sys

import attrs

NO_TERMINAL = "without a terminal to confirm on, deleting needs --yes (-y)"


@attrs.frozen
class Deletion:
    """What a delete command removes (``noun``, the argument holding its ID), and its parser."""

    noun: str
    id_dest: str
    parser: argparse.ArgumentParser

    def question(self, args: argparse.Namespace) -> str:
        target = getattr(args, self.id_dest)
        return f"Delete {self.noun} {target} of {args.workspace_id}? [y/N] "


def add_confirmation(parser: argparse.ArgumentParser, noun: str, id_dest: str) -> None:
    """Make ``parser``'s command ask first, unless ``--yes``."""
    parser.add_argument(
        "-y", "--yes", action="store_true", help="delete without asking (needed in scripts)"
    )
    parser.set_defaults(deletion=Deletion(noun, id_dest, parser))


def _deletion(args: argparse.Namespace) -> Deletion | None:
    deletion: Deletion | None = getattr(args, "deletion", None)
    return None if deletion is None or args.yes else deletion


def _can_ask() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def check_confirmable(args: argparse.Namespace) -> None:
    """A usage error (``SystemExit(2)``) for a delete that can be neither asked nor assumed."""
    deletion = _deletion(args)
    if deletion is not None and not _can_ask():
        deletion.parser.error(NO_TERMINAL)


def confirmed(args: argparse.Namespace) -> bool:
    """Whether the command may go on: nothing to ask, ``--yes``, or the user answered yes.

    The question goes to stderr, so stdout keeps only the command's result (``--json``).
    """
    deletion = _deletion(args)
    if deletion is None:
        return True
    sys.stderr.write(deletion.question(args))
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")  # end of input: no

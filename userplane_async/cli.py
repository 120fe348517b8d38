"""``userplane-async``: a thin command line over the public API.

Exit codes: 0 all done, 1 some items failed (or the run was interrupted, or a delete was not
confirmed), 2 usage error, 3 fatal (auth or another error before anything was done). Errors print as
``ErrorType: message`` on stderr; never a traceback, never a secret. The commands live in
``userplane_async._cli``; this module is the one place that turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TextIO

import anyio

from . import UserplaneError
from ._cli._client import open_client
from ._cli._confirm import confirmed
from ._cli._options import parse_args
from ._cli._output import Output

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3

_LEVELS = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (progress bars redirect it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


@contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Log the ``userplane_async`` logger to stderr at the level ``-v``/``-q`` chose."""
    logger = logging.getLogger("userplane_async")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    previous = logger.level
    logger.setLevel(_LEVELS.get(verbosity, logging.DEBUG))
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def _run(args: argparse.Namespace, out: Output) -> int:
    if not args.needs_client:
        code: int = await args.run(args, out)
        return code
    async with open_client(args) as client:
        code = await args.run(client, args, out)
        return code


def _discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not fail again."""
    with suppress(OSError, ValueError):  # not a file (captured, say): nothing to do
        stdout = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout)
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (usage errors raise ``SystemExit(2)``)."""
    args = parse_args(argv)
    verbosity = -1 if args.quiet else args.verbose
    out = Output(json_lines=args.json, verbosity=verbosity)
    with _logging(verbosity):
        try:
            if not confirmed(args):
                out.error("Not deleted.")
                return EXIT_FAILED
            return anyio.run(_run, args, out)
        except BrokenPipeError:  # the reader went away (``| head``): stop, quietly
            _discard_stdout()
            return EXIT_FAILED
        except KeyboardInterrupt:
            out.error("Interrupted.")
            return EXIT_FAILED
        except (UserplaneError, OSError) as exc:
            out.error(f"{type(exc).__name__}: {exc}")
            return EXIT_FATAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

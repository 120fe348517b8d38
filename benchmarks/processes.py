"""Running a benchmark's client in a process of its own and measuring what it used.

Linux carries a process's peak RSS across exec, and a child forked from a large process starts
with the parent's: so each client is spawned and reaped by a tiny launcher (about 9 MiB), which
writes the client's exit code, ``ru_maxrss`` (KiB) and CPU seconds to the file named first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    cpu = usage.ru_utime + usage.ru_stime
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {cpu}")
"""


@dataclass(frozen=True)
class Usage:
    """What a finished client process used, from ``os.wait4``."""

    max_rss_kib: int
    cpu_seconds: float  # user + system, start-up included


def tail(file: IO[bytes]) -> str:
    """The last 2,000 characters a process wrote to ``file``."""
    file.seek(0)
    return file.read().decode(errors="replace")[-2000:]


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and everything in its session (a launcher's child too)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_measured(
    argv: Sequence[str],
    env: dict[str, str] | None,
    timeout: float,
    name: str,
    *,
    cwd: Path | None = None,
) -> tuple[str, Usage]:
    """Run ``argv`` to the end under the launcher (in ``cwd``, default: ours): its standard
    output and what it used."""
    with tempfile.TemporaryDirectory() as scratch, open(Path(scratch) / "out", "w+b") as out:
        usage = Path(scratch) / "usage"
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(usage), *argv]
        with open(Path(scratch) / "err", "w+b") as err:
            process = subprocess.Popen(
                launcher,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop(process)
                raise TimeoutError(f"{name} did not finish in {timeout:.0f} s") from None
            except BaseException:  # Ctrl-C: no client outlives the benchmark
                stop(process)
                raise
            code, max_rss_kib, cpu = usage.read_text().split()
            if code != "0" or process.returncode != 0:
                raise RuntimeError(f"{name} exited with {code}:\n{tail(err)}")
        return tail(out), Usage(int(max_rss_kib), float(cpu))

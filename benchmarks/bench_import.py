"""How long ``python -c "import userplane_async"`` takes, beside ``import aiohttp`` alone.

``nox -s bench`` runs it as ``bench_import``; ``python benchmarks/bench_import.py [--runs N]``
gives a quick look (``BENCH_IMPORT_RUNS`` sets the same under pytest).

Each command is a fresh interpreter timed from spawn to exit (so the interpreter's own start-up
is in every figure, as a user sees it), the commands alternate within each round, and the
medians are compared: the target is 0.12 s for the package, whatever aiohttp costs. A second
row imports the CLI, which needs aiohttp for every command but ``--help``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import pytest

TARGET_SECONDS = 0.12
COMMANDS = {
    "python -c pass": "pass",
    "import aiohttp": "import aiohttp",
    "import userplane_async": "import userplane_async",
    "import userplane_async.cli": "import userplane_async.cli",
}


def _seconds(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - started


def run(runs: int) -> str:
    for statement in COMMANDS.values():  # warm the page cache and the bytecode caches
        _seconds(statement)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for round_number in range(runs):
        names = list(COMMANDS)
        if round_number % 2:
            names.reverse()
        for name in names:
            times[name].append(_seconds(COMMANDS[name]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    aiohttp = medians["import aiohttp"]
    lines = [f"{'command':<28}{'median s':>10}{'min s':>8}{'max s':>8}{'÷ aiohttp':>11}"]
    for name, values in times.items():
        lines.append(
            f"{name:<28}{medians[name]:>10.3f}{min(values):>8.3f}{max(values):>8.3f}"
            f"{medians[name] / aiohttp:>11.2f}"
        )
    package = medians["import userplane_async"]
    verdict = "PASS" if package <= TARGET_SECONDS else "FAIL"
    lines.append(
        f"{verdict}: import userplane_async {package:.3f} s, target <= {TARGET_SECONDS} s "
        f"({package / TARGET_SECONDS:.2f} of it); medians of {runs} runs"
    )
    return "\n".join(lines)


def bench_import(capsys: pytest.CaptureFixture[str]) -> None:
    table = run(int(os.environ.get("BENCH_IMPORT_RUNS", "11")))
    with capsys.disabled():
        print("\n" + table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    print(run(parser.parse_args().runs))


if __name__ == "__main__":
    main()

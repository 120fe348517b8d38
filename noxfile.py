"""The project's single entry point for checks: ``nox`` runs lint, typing and tests."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = re.findall(
    r"Programming Language :: Python :: (3\.\d+)", "\n".join(PYPROJECT["project"]["classifiers"])
)

#: The Python that runs nox runs the whole suite; the others skip the tests marked slow (real
#: processes, scaled minutes), which test the SDK's logic, not the interpreter, and would
#: otherwise make CI run most of its time four times over.
FULL_SUITE_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True
# A machine without one of PYTHONS reports that session as skipped; CI
# (``.ci/run``, ``--error-on-missing-interpreters``) fails instead.


def _install_package(session: nox.Session) -> None:
    """Install the package (a built wheel with ``-- --installpkg DIST``), never the checkout."""
    if "--installpkg" in session.posargs:
        session.install(session.posargs[session.posargs.index("--installpkg") + 1])
    else:
        session.install(".")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite against the installed package (pytest runs in importlib mode)."""
    _install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "tests"))
    args = [a for a in session.posargs if a != "--installpkg" and not a.endswith(".whl")]
    if session.python != FULL_SUITE_PYTHON and FULL_SUITE_PYTHON in PYTHONS and not args:
        args = ["-m", "not slow"]
    session.run("pytest", *args)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and format."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the typing examples."""
    session.install("-e", ".")
    session.install(*nox.project.dependency_groups(PYPROJECT, "typing"))
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, on request only: ``nox -s bench``."""
    _install_package(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "bench"))
    if Path("benchmarks").is_dir():
        session.run(
            "pytest",
            "benchmarks",
            "-o",
            "python_files=bench_*.py",
            "-o",
            "python_functions=bench_*",
            "-p",
            "no:cacheprovider",
            *session.posargs,
        )

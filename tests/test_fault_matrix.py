"""``tests/fault_matrix.md`` stays true: every fault row names tests, and those tests exist."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
MATRIX = TESTS / "fault_matrix.md"
COVERED = range(1, 50)  # rows 50-53 (fleets of workers) are planned, with no test yet
PLANNED = range(50, 54)
_REFERENCE = re.compile(r"`tests/(test_\w+\.py)::(test_\w+)`")
_MARKER = re.compile(r"\(([^()]*#\d+[^()]*)\)")  # "(#24)", "(#17, #32)", "(#24, #25)"


def _cells(line: str) -> list[str]:
    """The cells of one table line; ``\\|`` inside a cell is text, not a separator."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


@cache
def rows() -> dict[int, list[str]]:
    """Row number to its cells, for every numbered line of the matrix's tables."""
    found: dict[int, list[str]] = {}
    for line in MATRIX.read_text(encoding="utf-8").splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if cells and cells[0].isdigit():
            number = int(cells[0])
            assert number not in found, f"row {number} appears twice"
            found[number] = cells
    return found


def references(number: int) -> list[tuple[str, str]]:
    """The ``(file, test function)`` pairs the Tests column of a row names."""
    return _REFERENCE.findall(rows()[number][-1])


@cache
def functions_in(file_name: str) -> frozenset[str]:
    """The module-level test functions of ``tests/<file_name>``, sync or async."""
    tree = ast.parse((TESTS / file_name).read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    )


def marked_tests() -> list[tuple[int, str, str]]:
    """``(row, file, test)`` for every test whose docstring names a row as ``(#N)``."""
    marked = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for group in _MARKER.findall(ast.get_docstring(node) or ""):
                    marked += [(int(n), path.name, node.name) for n in re.findall(r"#(\d+)", group)]
    return marked


def test_the_matrix_has_every_row_once() -> None:
    """Rows 1-53 are all in the matrix, each once, with the six columns."""
    assert sorted(rows()) == [*COVERED, *PLANNED]
    assert {len(cells) for cells in rows().values()} == {6}


@pytest.mark.parametrize("number", COVERED)
def test_every_covered_row_names_tests_that_exist(number: int) -> None:
    """Each of rows 1-49 names at least one test, and each named test function exists."""
    named = references(number)
    assert named, f"row {number} names no test"
    for file_name, function in named:
        assert (TESTS / file_name).is_file(), f"row {number}: no tests/{file_name}"
        assert function in functions_in(file_name), f"row {number}: no {file_name}::{function}"


@pytest.mark.parametrize("number", PLANNED)
def test_planned_rows_say_so(number: int) -> None:
    """Rows 50-53 have no test yet and say which issue will bring them."""
    assert rows()[number][-1] == "planned: issue 13"


def test_every_marked_test_is_on_its_row() -> None:
    """A test whose docstring says ``(#N)`` is listed on row N, so the matrix misses none."""
    missing = [
        f"row {number}: tests/{file_name}::{function}"
        for number, file_name, function in marked_tests()
        if (file_name, function) not in references(number)
    ]
    assert missing == []
    assert len(marked_tests()) >= 40  # the markers are found at all

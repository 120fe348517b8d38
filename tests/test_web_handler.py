"""The README's web handlers are the ones examples/aiohttp_video.py runs (and tests drive)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "aiohttp_video.py"
_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_MARK = "<!-- not run by tests/test_readme.py: a handler without its app, which is examples/aiohttp_video.py"


def _handler_blocks() -> list[str]:
    """The README's python blocks marked as parts of the aiohttp example."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        block["code"]
        for block in _BLOCK.finditer(text)
        if text[: block.start()].rstrip("\n").rsplit("\n", 1)[-1].startswith(_MARK)
    ]


def _imported(tree: ast.Module) -> set[tuple[str, str]]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names |= {(node.module or "", alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {(alias.name, "") for alias in node.names}
    return names


def test_the_readme_shows_both_handlers() -> None:
    """The proxying handler and the redirect one are both in the README."""
    blocks = _handler_blocks()
    assert len(blocks) == 2
    assert "serve_resource(request" in blocks[0]
    assert "web.HTTPFound(location" in blocks[1]


@pytest.mark.parametrize("code", _handler_blocks())
def test_a_readme_handler_is_the_example_s(code: str) -> None:
    """Every definition in the block is in the example word for word; so are its imports."""
    example_source = EXAMPLE.read_text(encoding="utf-8")
    example, block = ast.parse(example_source), ast.parse(code)
    assert _imported(block) <= _imported(example)
    for node in block.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            segment = ast.get_source_segment(code, node)
            assert segment is not None
            assert segment in example_source, f"not in {EXAMPLE.name}:\n{segment}"

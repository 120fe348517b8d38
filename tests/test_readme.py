"""Every example in the README runs as written against the fake Userplane.

Each ```python and ```sh block runs in a subprocess, in a fresh directory, with
``USERPLANE_API_KEY`` and ``USERPLANE_BASE_URL`` pointing at a fake seeded with the demo
workspace, as a reader who pasted ``userplane-async fake-server``'s export lines would, and
``REDIS_URL`` at a throwaway valkey-server, and the ``AWS_*`` variables at a throwaway S3
server (moto) with the bucket ``my-archive``. A block
right after a ``<!-- not run by tests/test_readme.py: why -->`` line is left out, with its why.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import anyio
import pytest

from userplane_async.testing import FakeUserplane, S3Server

pytestmark = pytest.mark.anyio

README = Path(__file__).parent.parent / "README.md"
_BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_SKIP = "<!-- not run by tests/test_readme.py:"
BUCKET = "my-archive"  # the README's bucket
_RUNNERS = {
    "python": [sys.executable, "example.py"],
    "sh": ["bash", "-euo", "pipefail", "example.py"],
}


def _examples() -> list[object]:
    text = README.read_text(encoding="utf-8")
    examples: list[object] = []
    for block in _BLOCK.finditer(text):
        if block["lang"] not in _RUNNERS:
            continue  # plain ``` blocks show layouts and output, not code
        line = text.count("\n", 0, block.start()) + 1
        before = text[: block.start()].rstrip("\n").rsplit("\n", 1)[-1]
        why = before.removeprefix(_SKIP).removesuffix("-->").strip()
        marks = [pytest.mark.skip(reason=why)] if before.startswith(_SKIP) else []
        examples.append(pytest.param(block["lang"], block["code"], id=f"line-{line}", marks=marks))
    return examples


def test_the_readme_has_examples_of_both_kinds() -> None:
    """The extraction finds the blocks (a regex gone wrong would make every case vanish)."""
    langs = [param.values[0] for param in _examples()]  # type: ignore[attr-defined]
    assert langs.count("python") >= 5
    assert langs.count("sh") >= 2


@pytest.mark.parametrize(("lang", "code"), _examples())
async def test_readme_example_runs(
    fake_userplane: FakeUserplane,
    redis_url: str,
    s3_server: S3Server,
    tmp_path: Path,
    lang: str,
    code: str,
) -> None:
    s3_server.client().create_bucket(Bucket=BUCKET)  # again for each block: moto answers 200
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERPLANE_")}
    env |= {
        "USERPLANE_API_KEY": fake_userplane.api_key,
        "USERPLANE_BASE_URL": fake_userplane.base_url,
        "REDIS_URL": redis_url,  # for the examples of a shared budget
        **s3_server.env,  # for the examples of archiving into a bucket
        # The console script installed beside this interpreter, as after `pip install`.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }
    with anyio.fail_after(50):
        done = await anyio.run_process(_RUNNERS[lang], cwd=tmp_path, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"Traceback" not in done.stderr

"""The command line end to end: every command against the fake Userplane, over real sockets.

``main(argv)`` runs in a worker thread (it starts its own event loop) while the fake serves on
the test's loop; subprocesses only where a signal or a real pipe is the point.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from anyio.abc import ByteReceiveStream
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.text import TextReceiveStream
from hypothesis import given

from tests.strategies import MODEL_CLASSES, any_model
from userplane_async import AsyncUserplane, GoneError, ManifestEntry, RateLimitError, RetryPolicy
from userplane_async._cli import _reporting
from userplane_async._cli._options import build_parser
from userplane_async._cli._output import to_json
from userplane_async._convert import structure
from userplane_async.cli import main
from userplane_async.testing import FakeUserplane, S3Error, StallAfter, Trickle

pytestmark = pytest.mark.anyio

WS = "ws_demo"
SECRET = "uspl_secret0123456789abcdefSECRET"
#: Environment that would change what the CLI prints or which fake it talks to.
_ENV_KNOBS = (
    "USERPLANE_API_KEY",
    "USERPLANE_BASE_URL",
    "USERPLANE_BUDGET_URL",
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "COLUMNS",
)
_COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;[0-9;]+)m")


@attrs.frozen
class Run:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_KNOBS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api(fake_userplane: FakeUserplane) -> list[str]:
    """The connection options for the fake."""
    return ["--api-key", fake_userplane.api_key, "--base-url", fake_userplane.base_url]


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """``main(argv)`` in a worker thread, with what it printed."""
    code = await anyio.to_thread.run_sync(main, list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def _files(root: Path) -> dict[str, bytes]:
    """Every archived file under ``root`` but the manifest, by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.jsonl"
    }


def _manifest(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_KNOBS}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _console(*argv: str) -> list[str]:
    """The installed ``userplane-async`` console script with ``argv`` (``-m`` without one)."""
    script = Path(sys.executable).with_name("userplane-async")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "userplane_async"]
    return [*command, *argv]


def _disk_use(root: Path) -> int:
    """Bytes in the files under ``root``."""
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file())


# --- demo and usage -----------------------------------------------------------------------


def test_demo_archives_the_demo_workspace(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """demo archives ws_demo with every item done (capture-off ones unavailable) and exits 0."""
    assert main(["demo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Archived ws_demo into {tmp_path}: 22 downloaded, 3 unavailable" in out
    assert "unavailable rec_demo_no_video/video" in out
    assert f"userplane-async verify {tmp_path}" in out
    assert (tmp_path / WS / "rec_demo_full" / "video.webm").stat().st_size > 0
    assert main(["verify", str(tmp_path)]) == 0


@pytest.mark.slow
async def test_demo_keeps_one_archive_per_user_and_replaces_it(tmp_path: Path) -> None:
    """Without DEST, demo archives into $XDG_CACHE_HOME/userplane-async/demo, says so, and
    replaces that archive on the next run: the disk does not grow and no temp data is left."""
    scratch, cache, home = tmp_path / "tmp", tmp_path / "cache", tmp_path / "home"
    for directory in (scratch, cache, home):
        directory.mkdir()
    env = _subprocess_env(TMPDIR=str(scratch), XDG_CACHE_HOME=str(cache), HOME=str(home))
    where = cache / "userplane-async" / "demo"
    used = []
    for _ in range(2):
        with anyio.fail_after(40):
            done = await anyio.run_process(_console("demo"), env=env, check=False)
        out = done.stdout.decode()
        assert done.returncode == 0, done.stderr.decode()
        assert f"Archived ws_demo into {where}: 22 downloaded, 3 unavailable" in out
        assert out.rstrip().endswith(f"check it with: userplane-async verify {where}")
        used.append(_disk_use(tmp_path))
        assert list(scratch.iterdir()) == [], "nothing left in the temp directory"
        assert list(home.iterdir()) == [], "XDG_CACHE_HOME is honoured"
    assert used[0] > 50_000_000, "the demo archive is there to look at"
    assert used[1] == used[0], "the second run replaced the first one's archive"
    verified = await anyio.run_process(_console("verify", str(where)), env=env, check=False)
    assert verified.returncode == 0
    assert "0 missing, 0 mismatched" in verified.stdout.decode()


async def test_demo_without_xdg_cache_home_uses_the_home_cache(tmp_path: Path) -> None:
    """With no $XDG_CACHE_HOME the demo archive goes to ~/.cache/userplane-async/demo."""
    env = {k: v for k, v in _subprocess_env(HOME=str(tmp_path)).items() if k != "XDG_CACHE_HOME"}
    with anyio.fail_after(40):
        done = await anyio.run_process(
            _console("demo", "-q", "--kinds", "thumbnail"), env=env, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    where = tmp_path / ".cache" / "userplane-async" / "demo"
    assert f"Archived ws_demo into {where}: 5 downloaded" in done.stdout.decode()
    assert "downloaded rec_" not in done.stdout.decode(), "-q leaves out the per-item lines"
    assert len(list((where / WS).rglob("thumbnail.jpg"))) == 5


def test_live_progress_on_a_terminal_honours_no_color(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal demo draws progress bars and a summary table; NO_COLOR drops the colours."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich's terminal detection: stdout is a TTY
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    assert main(["demo", str(tmp_path / "colour")]) == 0
    coloured = capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["demo", str(tmp_path / "plain")]) == 0
    plain = capsys.readouterr().out
    for out in (coloured, plain):
        assert re.search(r"recordings .* 5/5 ", out)
        assert "50.2/50.2 MiB" in out
        assert "downloaded rec_" not in out, "bars instead of item lines"
        assert re.search(r"│ downloaded\s+│\s+22 │", out), "the summary table"
    assert _COLOR.search(coloured)
    assert not _COLOR.search(plain)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["nonsense"], id="unknown-command"),
        pytest.param(["archive", WS], id="missing-dest"),
        pytest.param(["archive", WS, "d", "--kinds", "video,movie"], id="bad-kind"),
        pytest.param(["archive", WS, "d", "--concurrency", "0"], id="zero-concurrency"),
        pytest.param(["download", WS, "rec_1", "movie"], id="bad-download-kind"),
        pytest.param(["links", "update", WS, "lnk_1"], id="update-nothing"),
        pytest.param(["links", "create", WS], id="create-without-domain"),
        pytest.param(["me", "-v", "-q"], id="verbose-and-quiet"),
    ],
)
def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Bad arguments are usage errors: argparse's message and exit code 2."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err


_OUTPUT = {"-h", "--help", "-v", "-vv", "--verbose", "-q", "--quiet", "--json"}  # -vv: in -v's help
_CONNECTION = {"--api-key", "--base-url", "--budget"}
_BUDGET = {"--requests-per-minute", "--requests-per-day"}
_ARCHIVING = {"--kinds", "--verify", "--concurrency"}
#: The options each command's --help lists: only those that change what it does.
_OPTIONS = {
    "": _OUTPUT | _CONNECTION | {"--version"},
    "archive": _OUTPUT | _CONNECTION | _BUDGET | _ARCHIVING | {"--recording"},
    "download": _OUTPUT | _CONNECTION | {"--overwrite"},
    "verify": _OUTPUT,
    "cleanup": _OUTPUT | {"--older-than"},
    "demo": _OUTPUT | _ARCHIVING,
    "fake-server": _OUTPUT | {"--port", "--keys", "--rate-limit", "--daily-limit"},
    "recordings list": _OUTPUT
    | _CONNECTION
    | _BUDGET
    | {"--project-id", "--link-id"}
    | {"--created-by"},
    "recordings get": _OUTPUT | _CONNECTION,
    "recordings delete": _OUTPUT | _CONNECTION | {"-y", "--yes"},
    "workspaces list": _OUTPUT | _CONNECTION | _BUDGET | {"--membership"},
    "workspaces get": _OUTPUT | _CONNECTION,
    "projects list": _OUTPUT | _CONNECTION | _BUDGET,
    "projects get": _OUTPUT | _CONNECTION,
    "links list": _OUTPUT | _CONNECTION | _BUDGET,
    "links get": _OUTPUT | _CONNECTION,
    "links delete": _OUTPUT | _CONNECTION | {"-y", "--yes"},
    "links create": _OUTPUT
    | _CONNECTION
    | {"--domain-id", "--project-id", "--reference"}
    | {"--reusable"},
    "links update": _OUTPUT
    | _CONNECTION
    | {"--title", "--reusable", "--no-reusable"}
    | {"--provider-type", "--provider-id", "--provider-ref"},
    "me": _OUTPUT | _CONNECTION,
    "budget": _OUTPUT | _CONNECTION | _BUDGET,
}
_OPTION = re.compile(r"(?<![\w-])--?[a-z][a-z-]*")


def _leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every command the parser runs, as typed (``links update``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _leaf_commands(sub, f"{prefix}{name} ")
    return found or [prefix.strip()]


def test_the_help_table_covers_every_command() -> None:
    """The table below names every command the parser has (a new one must be added)."""
    assert sorted(_leaf_commands(build_parser())) == sorted(c for c in _OPTIONS if c)


@pytest.mark.parametrize("command", list(_OPTIONS))
def test_each_command_lists_only_its_own_options(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """``COMMAND --help`` shows the options that change what COMMAND does, and no others
    (``me --help`` has no ``--concurrency``)."""
    with pytest.raises(SystemExit) as caught:
        main([*command.split(), "--help"])
    assert caught.value.code == 0
    assert set(_OPTION.findall(capsys.readouterr().out)) == _OPTIONS[command]


async def test_me_help_from_the_console_script() -> None:
    """The installed command shows the same: ``me --help`` offers no download options."""
    with anyio.fail_after(20):
        done = await anyio.run_process(_console("me", "--help"), env=_subprocess_env())
    assert set(_OPTION.findall(done.stdout.decode())) == _OPTIONS["me"]


# --- archive ------------------------------------------------------------------------------


async def test_archive_then_a_rerun_only_lists(
    fake_userplane: FakeUserplane,
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """archive saves the workspace; a re-run skips everything with one list call and no GET."""
    first = await cli(capsys, "archive", WS, str(tmp_path), *api)
    assert first.code == 0, first.err
    assert "downloaded rec_demo_full/video (48.5 KiB)" in first.out
    assert "22 downloaded, 3 unavailable" in first.out
    assert first.err == ""
    fake_userplane.clear_requests()
    again = await cli(capsys, "archive", WS, str(tmp_path), *api)
    assert again.code == 0
    assert "25 skipped" in again.out
    assert [r.route for r in fake_userplane.api_requests()] == ["recordings.list"]
    assert fake_userplane.storage_requests() == []


async def test_archive_json_prints_every_event(
    api: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--json prints one parseable event per line, camelCase, ending with the report."""
    run = await cli(capsys, "archive", WS, str(tmp_path), "--json", *api)
    assert run.code == 0
    events = run.json_lines()
    assert events[0] == {
        "event": "ArchiveStarted",
        "workspaceId": WS,
        "dest": str(tmp_path),
        "kinds": ["video", "thumbnail", "console-log", "network-log", "action"],
    }
    names = {e["event"] for e in events}
    assert {"RecordingQueued", "DownloadStarted", "DownloadProgress", "DownloadFinished"} <= names
    finished = [e["entry"] for e in events if e["event"] == "DownloadFinished"]
    assert len(finished) == 25
    assert {"recordingId", "kind", "status", "sha256", "contentType"} <= finished[0].keys()
    assert events[-1]["event"] == "ArchiveFinished"
    assert events[-1]["report"]["counts"] == {"unavailable": 3, "downloaded": 22}
    assert events[-1]["report"]["ok"] is True


async def test_archive_takes_kinds_and_recordings(
    api: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--kinds (comma-separated and repeated) and --recording narrow what is archived."""
    run = await cli(
        capsys,
        "archive",
        WS,
        str(tmp_path),
        "--kinds",
        "video,thumbnail",
        "--kinds",
        "action",
        "--recording",
        "rec_demo_full",
        "--recording",
        "rec_demo_small",
        "--concurrency",
        "2",
        "--requests-per-minute",
        "60",
        "--requests-per-day",
        "500",
        *api,
    )
    assert run.code == 0, run.err
    assert "6 downloaded" in run.out
    saved = {path.rpartition("/")[0] for path in _files(tmp_path) if "." in path}
    assert saved == {f"{WS}/rec_demo_full", f"{WS}/rec_demo_small"}
    assert {e["kind"] for e in _manifest(tmp_path)} == {"video", "thumbnail", "action"}


@pytest.mark.slow
async def test_a_recording_id_that_does_not_exist_exits_1_on_every_run(
    fake_userplane: FakeUserplane, api: list[str], tmp_path: Path
) -> None:
    """``--recording rec_typo``: its items are not_found, the run says so and exits 1, and a
    re-run over the same DEST (the manifest knows the typo) exits 1 again, with no API call."""
    argv = ["archive", WS, str(tmp_path), "--recording", "rec_typo"]
    argv += ["--recording", "rec_demo_small", *api]
    runs = []
    for extra in ([], [], ["--json"]):
        with anyio.fail_after(20):
            runs.append(
                await anyio.run_process(_console(*argv, *extra), env=_subprocess_env(), check=False)
            )
        if len(runs) == 1:
            fake_userplane.clear_requests()
    first, again, as_json = (run.stdout.decode() for run in runs)
    assert [run.returncode for run in runs] == [1, 1, 1], [r.stderr.decode() for r in runs]
    assert (
        "not_found rec_typo/video: NotFoundError (RECORDING_NOT_FOUND): Recording not found"
        in first
    )
    assert "5 downloaded, 5 not found" in first
    assert f"Not found in {WS} (check the ID): rec_typo" in first.splitlines()
    assert "failed or deferred" not in first, "nothing to retry"
    assert "5 skipped, 5 not found" in again
    assert f"Not found in {WS} (check the ID): rec_typo" in again.splitlines()
    assert [r.route for r in fake_userplane.api_requests()] == [], "re-runs: the manifest answered"
    report = json.loads(as_json.splitlines()[-1])["report"]
    assert (report["ok"], report["missingRecordings"]) == (False, ["rec_typo"])


async def test_a_failed_item_exits_1(
    fake_userplane: FakeUserplane,
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """An item the object store refuses is reported, the rest is archived, and the exit is 1."""
    fake_userplane.script_storage(
        S3Error(403, "AccessDenied", "Access Denied"),
        times=10,
        recording_id="rec_demo_small",
        kind="video",
    )
    run = await cli(capsys, "archive", WS, str(tmp_path), *api)
    assert run.code == 1
    why = "StorageError (AccessDenied): the object store answered 403 AccessDenied: Access Denied"
    assert f"failed rec_demo_small/video: {why}" in run.out.splitlines()  # as it happened
    assert f"  failed rec_demo_small/video: {why}" in run.out.splitlines()  # in the summary
    assert "21 downloaded, 3 unavailable, 1 failed" in run.out
    assert "1 item failed or deferred; a re-run retries them." in run.out
    assert "Traceback" not in run.err


async def test_failures_say_why_in_the_manifest_the_json_and_the_summary(
    fake_userplane: FakeUserplane,
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A local failure keeps its class, code and message everywhere it is reported."""
    dest = tmp_path / "dest"
    (dest / WS).mkdir(parents=True)
    (dest / WS / "rec_demo_small").symlink_to(tmp_path, target_is_directory=True)
    run = await cli(capsys, "archive", WS, str(dest), "--kinds", "video", "--json", *api)
    assert run.code == 1
    [failed] = [e["entry"] for e in run.json_lines() if e["event"] == "ItemFailed"]
    assert (failed["errorType"], failed["error"]) == ("DestinationError", "ELOOP")
    assert "is a symbolic link" in failed["message"]
    assert [e for e in _manifest(dest) if e["status"] == "failed"] == [failed]
    plain = await cli(capsys, "archive", WS, str(dest), "--kinds", "video", *api)
    summary = plain.out.splitlines()[-2]
    assert summary.startswith("  failed rec_demo_small/video: DestinationError (ELOOP): ")
    assert summary.endswith("is a symbolic link; it is not followed out of the destination")


@pytest.mark.parametrize("json_lines", [False, True], ids=["plain", "json"])
async def test_a_reader_that_goes_away_ends_the_archive_quietly(
    fake_userplane: FakeUserplane, api: list[str], tmp_path: Path, json_lines: bool
) -> None:
    """``archive ... | head -1``: the broken pipe ends the run with exit 1, no traceback."""
    fake_userplane.script_storage(  # the run goes on writing after the reader left
        Trickle(bytes_per_second=16 * 1024 * 1024, chunk=256 * 1024),
        recording_id="rec_demo_large",
        kind="video",
    )
    argv = [sys.executable, "-m", "userplane_async", "archive", WS, str(tmp_path), *api]
    argv += ["--json"] if json_lines else []
    # A real pipe into head, as a user types it; bash reports the archive's own exit status.
    script = f'{shlex.join(argv)} | head -1 >/dev/null; echo "exit=${{PIPESTATUS[0]}}" >&2'
    with anyio.fail_after(30):
        done = await anyio.run_process(["bash", "-c", script], env=_subprocess_env(), check=False)
    err = done.stderr.decode()
    assert err.strip().splitlines()[-1] == "exit=1", err
    assert "Traceback" not in err
    assert "Exception" not in err


_PROGRESS = re.compile(
    r"progress: (?P<done>\d+)/(?P<queued>\d+) recordings, (?P<items>\d+) items?(?: \((?P<counts>[^)]*)\))?, "
    r"(?P<amount>[\d.]+) (?P<unit>B|KiB|MiB) in [\d.]+ s \([\d.]+ (?:B|KiB|MiB)/s\)"
)
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}


def _progress_bytes(match: re.Match[str]) -> float:
    return float(match["amount"]) * _UNITS[match["unit"]]


async def test_archive_into_a_pipe_prints_progress_as_recordings_end(
    fake_userplane: FakeUserplane, api: list[str], tmp_path: Path
) -> None:
    """Without a terminal, each recording that ends prints a progress line on stdout at once
    (recordings, items by status, bytes, rate), while a long download is still going."""
    fake_userplane.script_storage(  # the large video holds the run open until it is stopped
        StallAfter(after=1000), recording_id="rec_demo_large", kind="video"
    )
    dest = tmp_path / "dest"
    command = _console("archive", WS, str(dest), *api)
    async with await anyio.open_process(command, env=_subprocess_env()) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        progress = []
        with anyio.fail_after(20):
            async for line in _text_lines(proc.stdout):
                if (match := _PROGRESS.fullmatch(line)) is not None:
                    progress.append(match)
                if len(progress) == 4:  # all but the large recording have ended
                    break
        assert proc.returncode is None, "the lines came while the archive was running"
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            err = await _read_all(proc.stderr)
            assert await proc.wait() == 1
    assert [(int(m["done"]), int(m["queued"])) for m in progress] == [(n, 5) for n in (1, 2, 3, 4)]
    last = progress[-1]
    assert (last["items"], last["counts"]) == ("20", "17 downloaded, 3 unavailable")
    saved = sum(e["size"] for e in _manifest(dest) if e["status"] == "downloaded")
    rounding = 0.05 * 1024  # a tenth of a KiB, as printed
    assert saved - rounding <= _progress_bytes(last) <= saved + 1000 + rounding  # + stalled
    assert "progress:" not in err, "progress is stdout's, like the item lines"


@pytest.mark.slow
async def test_archive_into_a_pipe_prints_progress_while_bytes_come_in(
    fake_userplane: FakeUserplane,
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long download prints a progress line every PROGRESS_EVERY seconds before it ends;
    -q and --json print none."""
    monkeypatch.setattr(_reporting, "PROGRESS_EVERY", 0.1)
    fake_userplane.script_storage(  # about a second for the large video
        Trickle(bytes_per_second=48 * 1024 * 1024, chunk=1024 * 1024),
        times=3,
        recording_id="rec_demo_large",
        kind="video",
    )
    argv = ["archive", WS, "--recording", "rec_demo_large", "--kinds", "video", *api]
    run = await cli(capsys, *argv[:2], str(tmp_path / "plain"), *argv[2:])
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    ended = lines.index("downloaded rec_demo_large/video (50.0 MiB)")
    during = [m for m in map(_PROGRESS.fullmatch, lines[:ended]) if m is not None]
    assert len(during) >= 2, run.out
    assert all((m["done"], m["queued"], m["items"]) == ("0", "1", "0") for m in during)
    amounts = [_progress_bytes(m) for m in during]
    assert amounts == sorted(amounts)
    assert 0 < amounts[0] < amounts[-1]
    after = _PROGRESS.fullmatch(lines[ended + 1])
    assert after is not None
    assert (after["done"], after["items"], after["counts"]) == ("1", "1", "1 downloaded")
    for quiet in ("-q", "--json"):
        run = await cli(capsys, *argv[:2], str(tmp_path / quiet), *argv[2:], quiet)
        assert run.code == 0, run.err
        assert "progress:" not in run.out + run.err


@pytest.mark.slow
async def test_sigint_stops_an_archive_and_a_rerun_completes(
    fake_userplane: FakeUserplane,
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """SIGINT mid-download exits 1 quickly with no temp file; a re-run finishes the rest."""
    fake_userplane.script_storage(
        Trickle(bytes_per_second=4 * 1024 * 1024, chunk=64 * 1024),
        recording_id="rec_demo_large",
        kind="video",
    )
    dest = tmp_path / "resumed"
    command = [sys.executable, "-m", "userplane_async", "archive", WS, str(dest), "--json", *api]
    async with await anyio.open_process(command, env=_subprocess_env()) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        lines = _lines(proc.stdout)
        with anyio.fail_after(20):
            async for event in lines:  # wait until the large video is mid-body
                if (
                    event["event"] == "DownloadProgress"
                    and event["recordingId"] == "rec_demo_large"
                ):
                    break
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(5):
            rest = [event async for event in lines]
            err = await _read_all(proc.stderr)
            assert await proc.wait() == 1
    assert rest[-1]["event"] == "ArchiveInterrupted"
    assert "Interrupted after" in err
    assert "run the same command again to continue" in err
    assert "Traceback" not in err
    assert not list(dest.rglob("*.part"))
    complete = {(e["recordingId"], e["kind"]) for e in _manifest(dest) if e["status"] != "failed"}
    assert ("rec_demo_large", "video") not in complete

    again = await cli(capsys, "archive", WS, str(dest), "--json", *api)
    assert again.code == 0, again.err
    started = {
        (e["recordingId"], e["kind"]) for e in again.json_lines() if e["event"] == "DownloadStarted"
    }
    assert ("rec_demo_large", "video") in started
    assert not started & complete, "nothing finished before the break is fetched again"
    assert (await cli(capsys, "verify", str(dest))).code == 0
    clean = tmp_path / "clean"
    assert (await cli(capsys, "archive", WS, str(clean), "-q", *api)).code == 0
    assert _files(dest) == _files(clean)


async def _lines(stream: ByteReceiveStream) -> AsyncIterator[dict[str, Any]]:
    """JSON lines from a process's stdout until it closes."""
    buffered = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await buffered.receive_until(b"\n", 1 << 20)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        yield json.loads(line)


async def _text_lines(stream: ByteReceiveStream) -> AsyncIterator[str]:
    """Lines of text from a process's output until it closes."""
    buffered = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await buffered.receive_until(b"\n", 1 << 20)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        yield line.decode()


async def _read_all(stream: ByteReceiveStream) -> str:
    return "".join([text async for text in TextReceiveStream(stream)])


# --- exit 3, secrets and broken pipes -----------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["me"], ["archive", WS, "DEST"], ["download", WS, "rec_1", "video", "DEST"]]
)
async def test_a_bad_key_is_fatal(
    fake_userplane: FakeUserplane,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
) -> None:
    """A key the API refuses ends the command with ``AuthenticationError: ...`` and exit 3."""
    argv = [str(tmp_path) if arg == "DEST" else arg for arg in argv]
    bad = ["--api-key", "uspl_" + "x" * 32, "--base-url", fake_userplane.base_url]
    run = await cli(capsys, *argv, *bad)
    assert run.code == 3
    assert run.err.startswith("AuthenticationError: ")
    assert "Traceback" not in run.err
    assert "x" * 32 not in run.out + run.err


async def test_settings_come_from_the_environment(
    fake_userplane: FakeUserplane,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without options the key and base URL come from the environment; no key is exit 3."""
    monkeypatch.setenv("USERPLANE_BASE_URL", fake_userplane.base_url)
    missing = await cli(capsys, "me")
    assert missing.code == 3
    assert (
        missing.err.strip()
        == "ConfigurationError: no API key: set USERPLANE_API_KEY or pass --api-key"
    )
    monkeypatch.setenv("USERPLANE_API_KEY", fake_userplane.api_key)
    assert (await cli(capsys, "me")).code == 0


async def test_no_secret_in_any_output_at_debug(
    fake_userplane: FakeUserplane, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """At -vv, through retries, downloads and errors, neither the key nor a URL query shows."""
    fake_userplane.add_api_key(SECRET)
    fake_userplane.script("recordings.list", status=503)
    fake_userplane.script("workspaces.get", status=400, body={"error": "BAD", "message": SECRET})
    fake_userplane.script_storage(S3Error(503, "SlowDown", "Reduce your rate"), kind="thumbnail")
    key = ["--api-key", SECRET, "--base-url", fake_userplane.base_url]
    runs = [
        await cli(capsys, "archive", WS, str(tmp_path), "-vv", *key),
        await cli(capsys, "-vv", "--json", "archive", WS, str(tmp_path / "json"), *key),
        await cli(capsys, "workspaces", "get", WS, "-vv", *key),
        await cli(capsys, "download", WS, "rec_demo_full", "video", str(tmp_path), "-vv", *key),
    ]
    assert [run.code for run in runs] == [0, 0, 3, 0]
    logged = runs[0].err
    assert "INFO userplane_async: " in logged, "the retry was logged"
    assert "DEBUG userplane_async.cli: DownloadStarted(" in logged
    for run in runs:
        assert SECRET not in run.out + run.err
        assert "X-Amz-" not in run.out + run.err


def test_a_closed_stdout_ends_quietly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When stdout's reader goes away (``| head``), the command stops with exit 1, no traceback."""

    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise io.UnsupportedOperation("fileno")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["demo", str(tmp_path), "--json"]) == 1
    assert capsys.readouterr().err == ""
    assert not list(tmp_path.rglob("*.part"))


def test_busy_port_is_a_clean_fatal_error(capsys: pytest.CaptureFixture[str]) -> None:
    """fake-server on a taken port prints ErrorType: message and exits 3, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["fake-server", "--port", str(taken.getsockname()[1])]) == 3
    err = capsys.readouterr().err
    assert err.startswith("OSError: ")
    assert "Traceback" not in err


# --- verify and download ------------------------------------------------------------------


async def test_verify_finds_a_corrupted_and_a_missing_file(
    api: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """verify passes a fresh archive, then names a flipped byte and a deleted file, exit 1."""
    assert (await cli(capsys, "archive", WS, str(tmp_path), "-q", *api)).code == 0
    ok = await cli(capsys, "verify", str(tmp_path))
    assert ok.code == 0
    assert f"Checked 22 files in {tmp_path}: 0 missing, 0 mismatched" in ok.out
    corrupted = tmp_path / WS / "rec_demo_full" / "thumbnail.jpg"
    data = bytearray(corrupted.read_bytes())
    data[100] ^= 0x01
    corrupted.write_bytes(bytes(data))
    (tmp_path / WS / "rec_demo_small" / "action.json").unlink()
    bad = await cli(capsys, "verify", str(tmp_path))
    assert bad.code == 1
    assert f"mismatched: {WS}/rec_demo_full/thumbnail.jpg (rec_demo_full thumbnail)" in bad.out
    assert f"missing: {WS}/rec_demo_small/action.json" in bad.out
    assert "1 missing, 1 mismatched" in bad.out
    (report,) = (await cli(capsys, "verify", str(tmp_path), "--json")).json_lines()
    assert report["ok"] is False
    assert report["checked"] == 22
    assert [e["path"] for e in report["mismatched"]] == [f"{WS}/rec_demo_full/thumbnail.jpg"]
    assert f"Fetch them again with: userplane-async archive {WS} {tmp_path} --verify" in bad.out
    repaired = await cli(capsys, "archive", WS, str(tmp_path), *api)
    assert repaired.code == 0, repaired.err
    assert "downloaded rec_demo_small/action" in repaired.out


async def test_archive_verify_replaces_a_damaged_file(
    api: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """archive --verify fetches a file whose bytes no longer match the manifest anew."""
    assert (await cli(capsys, "archive", WS, str(tmp_path), "-q", *api)).code == 0
    damaged = tmp_path / WS / "rec_demo_full" / "thumbnail.jpg"
    original = damaged.read_bytes()
    damaged.write_bytes(bytes([original[0] ^ 0x01]) + original[1:])
    repaired = await cli(capsys, "archive", WS, str(tmp_path), "--verify", *api)
    assert repaired.code == 0, repaired.err
    assert damaged.read_bytes() == original


async def test_verify_without_a_manifest_is_fatal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """verify on a directory that is not an archive says so and exits 3."""
    run = await cli(capsys, "verify", str(tmp_path))
    assert run.code == 3
    assert run.err.startswith("FileNotFoundError: no manifest.jsonl in ")


async def test_download_saves_one_resource(
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """download saves into the current directory by default, keeps it next time, and says so."""
    monkeypatch.chdir(tmp_path)
    saved = await cli(capsys, "download", WS, "rec_demo_full", "thumbnail", *api)
    assert saved.code == 0
    assert saved.out.startswith("Saved thumbnail.jpg (7.1 KiB, sha256 ")
    kept = await cli(capsys, "download", WS, "rec_demo_full", "thumbnail", "--json", *api)
    (result,) = kept.json_lines()
    assert result["skipped"] is True
    assert result["path"] == "thumbnail.jpg"
    assert len(result["sha256"]) == 64
    target = str(tmp_path / "out" / "log.ndjson")
    named = await cli(capsys, "download", WS, "rec_demo_full", "console-log", target, *api)
    assert named.code == 0
    assert (await anyio.Path(target).stat()).st_size > 0


async def test_download_keeps_a_file_it_did_not_write_unless_overwrite(
    api: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A file already at the target that the SDK did not save: exit 3 naming --overwrite,
    the file as it was; with --overwrite, the resource replaces it."""
    target = tmp_path / "thumb.jpg"
    target.write_bytes(b"my own picture")
    args = ("download", WS, "rec_demo_full", "thumbnail", str(target), *api)
    refused = await cli(capsys, *args)
    assert refused.code == 3
    assert refused.err.startswith("DestinationError: ")
    assert "pass overwrite=True (--overwrite) to replace it" in refused.err
    assert target.read_bytes() == b"my own picture"
    replaced = await cli(capsys, *args, "--overwrite")
    assert replaced.code == 0
    assert target.read_bytes()[:2] == b"\xff\xd8"  # the JPEG


async def test_download_of_a_resource_not_captured_is_fatal(
    api: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A resource that was not captured cannot be downloaded: exit 3 with the SDK's error."""
    run = await cli(capsys, "download", WS, "rec_demo_no_video", "video", str(tmp_path), *api)
    assert run.code == 3
    assert run.err.startswith("ResourceUnavailableError: ")
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


# --- reading the API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected", "absent"),
    [
        (["me"], ["user.id: usr_default", "stats.recordings: 5"], []),
        (
            ["workspaces", "list", "--membership"],
            ["ID", "ROLE", "ws_demo  Demo workspace  owner"],
            [],
        ),
        (["workspaces", "get", WS], ["workspaceId: ws_demo", "workspaceName: Demo workspace"], []),
        (["projects", "list", WS], ["prj_demo  Demo project"], []),
        (["projects", "get", WS, "prj_demo"], ["projectId: prj_demo", "title: Demo project"], []),
        (["recordings", "list", WS], ["rec_demo_full", "5.0 s", "Support ticket #4521"], []),
        (
            ["recordings", "list", WS, "--link-id", "lnk_demo_feedback"],
            ["rec_demo_no_logs", "rec_demo_no_video"],
            ["rec_demo_full"],
        ),
        (
            ["recordings", "get", WS, "rec_demo_full"],
            ["recordingDurationMs: 5000", "meta.customMeta.plan: pro", "meta.link.title: Support"],
            [],
        ),
        (["links", "list", WS], ["lnk_demo_feedback", "Feedback", "yes", "intercom"], []),
        (["links", "get", WS, "lnk_demo_support"], ["linkProviderType: intercom"], []),
    ],
)
async def test_read_commands_print_tables_and_fields(
    api: list[str],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: list[str],
    absent: list[str],
) -> None:
    """Each read command prints a compact table or key: value lines and exits 0."""
    run = await cli(capsys, *argv, *api)
    assert run.code == 0, run.err
    for text in expected:
        assert text in run.out
    for text in absent:
        assert text not in run.out


@pytest.mark.parametrize(
    ("argv", "key", "count"),
    [
        (["me"], "user", 1),
        (["workspaces", "list"], "workspaceId", 1),
        (["workspaces", "get", WS], "workspaceName", 1),
        (["projects", "list", WS], "projectId", 1),
        (["projects", "get", WS, "prj_demo"], "title", 1),
        (["recordings", "list", WS], "recordingDurationMs", 5),
        (["recordings", "get", WS, "rec_demo_full"], "meta", 1),
        (["links", "list", WS], "linkURL", 2),
        (["links", "get", WS, "lnk_demo_support"], "linkURL", 1),
    ],
)
async def test_read_commands_print_json_lines(
    api: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], key: str, count: int
) -> None:
    """With --json each object is one parseable line with the API's camelCase keys."""
    run = await cli(capsys, *argv, "--json", *api)
    assert run.code == 0, run.err
    objects = run.json_lines()
    assert len(objects) == count
    assert all(key in obj for obj in objects)


async def test_links_create_update_delete(
    api: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """links create, update and delete change the link; a deleted link is gone (exit 3)."""
    created = await cli(
        capsys,
        "links",
        "create",
        WS,
        "--domain-id",
        "dom_demo",
        "--project-id",
        "prj_demo",
        "--reference",
        "ticket-9",
        "--reusable",
        "--json",
        *api,
    )
    assert created.code == 0, created.err
    (link,) = created.json_lines()
    assert link["linkReusable"] is True
    assert link["linkProviderReference"] == "ticket-9"
    link_id = link["linkId"]
    update = ["--title", "Renamed", "--no-reusable", "--provider-type", "zendesk"]
    update += ["--provider-id", "zd_1", "--provider-ref", "ref-1"]
    updated = await cli(capsys, "links", "update", WS, link_id, *update, *api)
    assert updated.code == 0, updated.err
    for line in ("linkTitle: Renamed", "linkReusable: false", "linkProviderType: zendesk"):
        assert line in updated.out
    deleted = await cli(capsys, "links", "delete", WS, link_id, "--yes", *api)
    assert deleted.out == f"Deleted link {link_id} of {WS}\n"
    gone = await cli(capsys, "links", "get", WS, link_id, *api)
    assert gone.code == 3
    assert gone.err.startswith("GoneError: ")


#: The delete commands, what they delete, and the fake's route for a delete.
_DELETES = [
    pytest.param("recordings", "rec_demo_small", "recordings.delete", id="recording"),
    pytest.param("links", "lnk_demo_support", "links.delete", id="link"),
]


async def _exists(fake: FakeUserplane, group: str, object_id: str) -> bool:
    """Whether the fake still has the recording or link (a deleted one is a GoneError)."""
    async with AsyncUserplane(fake.api_key, base_url=fake.base_url) as client:
        namespace = client.recordings if group == "recordings" else client.links
        try:
            await namespace.get(WS, object_id)
        except GoneError:
            return False
    return True


@pytest.mark.parametrize(("group", "object_id", "route"), _DELETES)
async def test_deleting_without_a_terminal_needs_yes(
    fake_userplane: FakeUserplane, api: list[str], group: str, object_id: str, route: str
) -> None:
    """Without a terminal to ask on, delete without --yes is a usage error (exit 2) that
    names --yes, before any API call; with --yes (or -y) it deletes."""
    command = _console(group, "delete", WS, object_id, *api)
    with anyio.fail_after(20):
        refused = await anyio.run_process(
            command, stdin=subprocess.DEVNULL, env=_subprocess_env(), check=False
        )
    err = refused.stderr.decode()
    assert refused.returncode == 2
    assert f"usage: userplane-async {group} delete" in err
    assert "without a terminal to confirm on, deleting needs --yes (-y)" in err
    assert fake_userplane.api_requests() == [], "not a single API call"
    assert await _exists(fake_userplane, group, object_id)
    with anyio.fail_after(20):
        done = await anyio.run_process(
            [*command, "-y", "--json"], stdin=subprocess.DEVNULL, env=_subprocess_env()
        )
    (deleted,) = (json.loads(line) for line in done.stdout.decode().splitlines())
    assert deleted["workspaceId"] == WS
    assert object_id in deleted.values()
    assert done.stderr.decode() == "", "no question asked"
    assert [r.route for r in fake_userplane.api_requests()].count(route) == 1
    assert not await _exists(fake_userplane, group, object_id)


async def _read_terminal(fd: int) -> bytes:
    """What the child wrote to its terminal next; b"" once it closed it."""
    await anyio.wait_readable(fd)
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: every end of the terminal the child held is closed
        return b""


async def _on_a_terminal(command: list[str], answer: bytes) -> tuple[int, str]:
    """Run ``command`` on a pseudo-terminal, type ``answer`` at its question; exit code and
    everything it showed."""
    controller, terminal = os.openpty()
    try:
        proc = await anyio.open_process(
            command, stdin=terminal, stdout=terminal, stderr=terminal, env=_subprocess_env()
        )
    finally:
        os.close(terminal)
    shown = b""
    try:
        with anyio.fail_after(20):
            while b"[y/N] " not in shown:
                chunk = await _read_terminal(controller)
                assert chunk, shown
                shown += chunk
            os.write(controller, answer + b"\n")
            while chunk := await _read_terminal(controller):
                shown += chunk
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.aclose()
        os.close(controller)
    return code, shown.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
@pytest.mark.parametrize(("group", "object_id", "route"), _DELETES)
@pytest.mark.parametrize(
    ("answer", "deletes"),
    [(b"n", False), (b"", False), (b"y", True), (b"YES", True)],
    ids=["n", "enter", "y", "YES"],
)
async def test_deleting_on_a_terminal_asks_first(
    fake_userplane: FakeUserplane,
    api: list[str],
    group: str,
    object_id: str,
    route: str,
    answer: bytes,
    deletes: bool,
) -> None:
    """On a terminal delete asks; only y or yes deletes, anything else exits 1 keeping it."""
    noun = group.rstrip("s")
    code, shown = await _on_a_terminal(_console(group, "delete", WS, object_id, *api), answer)
    assert f"Delete {noun} {object_id} of {WS}? [y/N] " in shown
    assert await _exists(fake_userplane, group, object_id) is not deletes
    routes = [r.route for r in fake_userplane.api_requests()]
    if deletes:
        assert code == 0, shown
        assert f"Deleted {noun} {object_id} of {WS}" in shown
        assert routes.count(route) == 1
    else:
        assert code == 1, shown
        assert "Not deleted." in shown
        assert route not in routes


@pytest.mark.parametrize("cls", MODEL_CLASSES)
def test_json_output_reads_back_through_the_sdk_converter(cls: type[Any]) -> None:
    """The CLI's JSON for every model is API-shaped: the SDK's converter reads it back whole."""

    @given(any_model(cls))
    def round_trip(model: Any) -> None:
        assert structure(json.loads(json.dumps(to_json(model))), cls) == model

    round_trip()


def test_manifest_entries_serialize_like_the_manifest() -> None:
    """Event JSON keys for manifest entries are the manifest's own keys."""
    entry = ManifestEntry("ws", "rec", "video", "failed", error="AccessDenied")
    assert to_json(entry) == {
        "workspaceId": "ws",
        "recordingId": "rec",
        "kind": "video",
        "status": "failed",
        "path": None,
        "size": None,
        "sha256": None,
        "contentType": None,
        "time": None,
        "error": "AccessDenied",
        "errorType": None,
        "message": None,
    }


# --- fake-server --------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["80000", "-1", "http"])
async def test_fake_server_refuses_a_port_that_is_not_one(port: str) -> None:
    """A port outside 0-65535 is a usage error (exit 2) naming the option, no traceback."""
    command = [sys.executable, "-m", "userplane_async", "fake-server", "--port", port]
    with anyio.fail_after(20):
        done = await anyio.run_process(command, env=_subprocess_env(), check=False)
    assert done.returncode == 2
    assert "--port" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


async def _until_ready(proc: anyio.abc.Process) -> str:
    """What fake-server printed, up to and including its "Press Ctrl+C" line."""
    assert proc.stdout is not None
    output = ""
    with anyio.fail_after(20):
        async for text in TextReceiveStream(proc.stdout):
            output += text
            if "Press Ctrl+C" in output and output.endswith("\n"):
                return output
    raise AssertionError(f"fake-server ended before it was ready: {output!r}")


async def test_fake_server_serves_until_interrupted() -> None:
    """fake-server prints a working base URL and key, and exits 0 on SIGINT."""
    command = [sys.executable, "-m", "userplane_async", "fake-server"]
    async with await anyio.open_process(command, env=_subprocess_env(), stderr=None) as proc:
        output = await _until_ready(proc)
        # Every line is shell a user can paste or eval: comments and exports.
        lines = output.splitlines()
        assert all(line.startswith(("# ", "export ")) for line in lines), lines
        exports = [shlex.split(line)[1] for line in lines if line.startswith("export ")]
        settings = dict(export.partition("=")[::2] for export in exports)
        assert "USERPLANE_API_KEYS" not in settings, "one key: no list of them"
        async with AsyncUserplane(
            settings["USERPLANE_API_KEY"], base_url=settings["USERPLANE_BASE_URL"]
        ) as client:
            workspace = await client.workspaces.get("ws_demo")
        assert workspace.workspace_id == "ws_demo"
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(20):
            assert await proc.wait() == 0


@asynccontextmanager
async def _fake_server(*options: str) -> AsyncIterator[dict[str, Any]]:
    """``fake-server --json *options`` as a subprocess: its settings line, then SIGINT, exit 0."""
    command = _console("fake-server", "--json", *options)
    async with await anyio.open_process(command, env=_subprocess_env(), stderr=None) as proc:
        assert proc.stdout is not None
        with anyio.fail_after(20):
            settings = await anext(aiter(_lines(proc.stdout)))
        yield settings
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(20):
            assert await proc.wait() == 0


async def test_fake_server_keys_are_one_users_keys() -> None:
    """--keys 3 --json: three distinct keys, apiKey first, each the demo user's."""
    async with _fake_server("--keys", "3") as settings:
        keys = settings["apiKeys"]
        assert len(set(keys)) == 3
        assert keys[0] == settings["apiKey"]
        users = []
        for key in keys:
            async with AsyncUserplane(key, base_url=settings["baseUrl"]) as client:
                users.append((await client.me()).user.id)
        assert users == ["usr_default"] * 3


async def test_fake_server_exports_every_key_for_a_shell() -> None:
    """--keys 3 without --json adds one export of all keys, space-separated, for a shell."""
    command = _console("fake-server", "--keys", "3")
    async with await anyio.open_process(command, env=_subprocess_env(), stderr=None) as proc:
        output = await _until_ready(proc)
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(20):
            assert await proc.wait() == 0
    lines = output.splitlines()
    assert all(line.startswith(("# ", "export ")) for line in lines), lines
    exports = [shlex.split(line)[1] for line in lines if line.startswith("export ")]
    settings = dict(export.partition("=")[::2] for export in exports)
    keys = settings["USERPLANE_API_KEYS"].split(" ")
    assert len(set(keys)) == 3
    assert keys[0] == settings["USERPLANE_API_KEY"]


@pytest.mark.parametrize(
    ("options", "calls"),
    [
        pytest.param(("--rate-limit", "2"), 2, id="per-minute"),
        pytest.param(("--rate-limit", "5", "--daily-limit", "3"), 3, id="per-day"),
        pytest.param(("--keys", "2", "--rate-limit", "2"), 2, id="shared-by-keys"),
    ],
)
async def test_fake_server_limits_calls_as_told(options: tuple[str, ...], calls: int) -> None:
    """--rate-limit and --daily-limit set the fake's per-user limits: one call more is a 429."""
    async with _fake_server(*options) as settings:
        keys = settings["apiKeys"]
        retry = RetryPolicy.no_wait(attempts=1)
        for attempt in range(calls + 1):
            key = keys[attempt % len(keys)]
            async with AsyncUserplane(key, base_url=settings["baseUrl"], retry=retry) as client:
                if attempt < calls:
                    await client.me()
                else:
                    with pytest.raises(RateLimitError):
                        await client.me()


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate-limit", "0"],
        ["--daily-limit", "0"],
        ["--keys", "0"],
        ["--keys", "-2"],
        ["--rate-limit", "many"],
    ],
)
async def test_fake_server_refuses_limits_and_key_counts_below_one(argv: list[str]) -> None:
    """A limit or key count that is not a whole number >= 1 is a usage error naming it."""
    with anyio.fail_after(20):
        done = await anyio.run_process(
            _console("fake-server", *argv), env=_subprocess_env(), check=False
        )
    err = done.stderr.decode()
    assert done.returncode == 2
    assert argv[0] in err
    assert "Traceback" not in err

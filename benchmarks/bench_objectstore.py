"""``client.archive()`` straight into a bucket, against archiving to disk and uploading after.

``nox -s bench`` runs it as ``bench_objectstore``; ``python benchmarks/bench_objectstore.py
[--videos N] [--video-mib S] [--recordings M] [--runs R] [--dir D]`` gives a quick look
(``BENCH_OBJECTSTORE_VIDEOS``, ``BENCH_OBJECTSTORE_VIDEO_MIB``, ``BENCH_OBJECTSTORE_RECORDINGS``,
``BENCH_OBJECTSTORE_RUNS`` and ``BENCH_OBJECTSTORE_DIR`` set the same under pytest).

The workspace (``objectstore_server.py``): N recordings with an S-MiB video (default 3 of
200 MiB) and M recordings with five small resources (default 100), served by the fake in a
process of its own, with no rate limit. The bucket is moto's S3 server
(``testing.S3Server``), in a process of its own too, keeping objects in memory as a remote
store keeps them off our disk. Two variants, in each of R runs (default 5), their order
alternating from run to run:

- ``SDK -> S3``: ``client.archive(ws, "s3://bucket/sdk")``, in a process started in an empty
  directory that is also its ``TMPDIR``;
- ``two-step``: what a user scripts today: (1) ``client.archive(ws, <local dir>)``, then
  (2) every file of that tree uploaded under ``s3://bucket/two-step`` by s3transfer's
  ``TransferManager``, the engine of boto3's ``upload_file`` and of ``aws s3 cp --recursive``,
  with 8 requests in flight and the AWS CLI's 8 MiB parts (``objectstore_clients.py``).

Each client runs under ``processes.py``'s launcher, so its peak RSS (``ru_maxrss`` from
``os.wait4``) is its own; the two-step's is the larger of its two steps. Times are the
clients' own clocks around the archive or the upload (imports and start-up excluded); the
two-step's is the sum of its steps. Local disk: ``write_bytes`` of the client's
``/proc/self/io`` over the archive or upload, what it left in its directory, and the
two-step's tree. Each run uses a fresh bucket, removed afterwards, and starts after an
``os.sync()``; every object of both prefixes is checked (size and sha256, streamed) against
what the fake serves, with ``recording.json`` and the manifest. Medians over the runs, and
PASS/FAIL lines for the targets (wall <= 0.6 x the two-step's, peak RSS within the documented
bound, no local disk used); only a wrong or incomplete archive fails the benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from bench_archive import Server, client_env
from processes import Usage, run_measured, stop

from userplane_async._store._destination import PART_SIZE, PARTS_IN_FLIGHT
from userplane_async.testing import S3Server

HERE = Path(__file__).resolve().parent
SERVER = HERE / "objectstore_server.py"
CLIENTS = HERE / "objectstore_clients.py"
MIB = 1024 * 1024
KINDS = 5
CONCURRENCY = 8  # the client's default: the archive's downloads in parallel
RSS_BOUND_MIB = 64 + CONCURRENCY * PART_SIZE * (PARTS_IN_FLIGHT + 1) // MIB  # the README's
TARGET_WALL_RATIO = 0.6
CLIENT_TIMEOUT = 900.0  # one variant's step; a healthy default run takes well under a minute
VERIFY_THREADS = 4
# Objects up to this size stay in moto's memory (its default spools those over 5 MiB to disk).
MOTO_BUFFER = str(1 << 40)


@dataclass(frozen=True)
class Settings:
    videos: int = 3
    video_mib: int = 200
    recordings: int = 100
    runs: int = 5
    root: str | None = None  # where the per-run directories go (default: the temp dir)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            videos=int(os.environ.get("BENCH_OBJECTSTORE_VIDEOS", "3")),
            video_mib=int(os.environ.get("BENCH_OBJECTSTORE_VIDEO_MIB", "200")),
            recordings=int(os.environ.get("BENCH_OBJECTSTORE_RECORDINGS", "100")),
            runs=int(os.environ.get("BENCH_OBJECTSTORE_RUNS", "5")),
            root=os.environ.get("BENCH_OBJECTSTORE_DIR") or None,
        )


@dataclass(frozen=True)
class Sample:
    """One variant's run: seconds, peak RSS, and the local disk it used."""

    seconds: float
    max_rss_kib: int
    disk_write_bytes: int  # by the client processes, over the archive (and upload)
    left_bytes: int  # in the client's directory (the two-step's tree) once it was done
    left_files: int
    cpu_seconds: float
    fake_cpu_seconds: float  # the fake's, over the variant
    moto_cpu_seconds: float  # the S3 server's, over the variant
    steps: tuple[float, ...] = ()  # the two-step's seconds per step


@dataclass
class Variant:
    samples: list[Sample] = field(default_factory=list)

    def median(self, value: str) -> float:
        return statistics.median(float(getattr(sample, value)) for sample in self.samples)

    @property
    def max_rss_mib(self) -> float:
        return max(sample.max_rss_kib for sample in self.samples) / 1024


# --- processes -------------------------------------------------------------------------------


@contextmanager
def environ(extra: Mapping[str, str]) -> Iterator[None]:
    """``extra`` in ``os.environ`` for the ``with`` block (for a subprocess to inherit)."""
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def s3_server() -> Iterator[S3Server]:
    with environ({"MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": MOTO_BUFFER}):
        server = S3Server()
        server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def fake_server(settings: Settings) -> Iterator[Server]:
    """``objectstore_server.py`` seeded per ``settings``; stopped (killed if need be)."""
    argv = [
        *(sys.executable, str(SERVER), "--videos", str(settings.videos)),
        *("--video-size", str(settings.video_mib * MIB)),
        *("--recordings", str(settings.recordings)),
    ]
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
        try:
            yield Server(process, err)
        finally:
            if process.poll() is None:
                assert process.stdin is not None
                if not process.stdin.closed:
                    process.stdin.close()  # the server's signal to stop
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    stop(process)
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()


def run_client(
    command: str, *args: str, env: dict[str, str], cwd: Path | None = None
) -> tuple[dict[str, Any], Usage]:
    argv = [sys.executable, str(CLIENTS), command, *args]
    out, usage = run_measured(argv, env, CLIENT_TIMEOUT, f"the {command} client", cwd=cwd)
    result: dict[str, Any] = json.loads(out)
    return result, usage


# --- checking a prefix of the bucket ---------------------------------------------------------


def _sha256_of(client: Any, bucket: str, key: str) -> str:
    hasher = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(MIB):
        hasher.update(chunk)
    return hasher.hexdigest()


def list_objects(client: Any, bucket: str, prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` with its size."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = int(item["Size"])
    return found


def manifest_lines(client: Any, bucket: str, keys: list[str]) -> int:
    lines = 0
    for key in keys:
        lines += client.get_object(Bucket=bucket, Key=key)["Body"].read().count(b"\n")
    return lines


def check_prefix(s3: S3Server, bucket: str, prefix: str, server: Server) -> int:
    """Every recording under ``prefix`` has its ``recording.json`` and one object per kind with
    the bytes the fake serves, and the manifest one line per item; the objects checked."""
    client = s3.client()
    workspace = f"{prefix}/{server.info['workspace_id']}/"
    expected: dict[str, dict[str, dict[str, Any]]] = server.info["files"]
    objects = list_objects(client, bucket, f"{prefix}/")
    by_recording: dict[str, dict[str, str]] = {}
    for key in objects:
        if key.startswith(workspace):
            recording, _, name = key[len(workspace) :].partition("/")
            by_recording.setdefault(recording, {})[name.partition(".")[0]] = key
    assert by_recording.keys() == expected.keys(), (
        f"{prefix}: {len(by_recording)} of {len(expected)} recordings, "
        f"unexpected: {sorted(by_recording.keys() - expected.keys())[:3]}"
    )
    wanted: list[tuple[str, dict[str, Any]]] = []
    for recording, names in by_recording.items():
        assert names.keys() == {"recording", *expected[recording]}, f"{recording}: {sorted(names)}"
        body = client.get_object(Bucket=bucket, Key=names["recording"])["Body"].read()
        assert json.loads(body).get("recordingId") == recording, (
            f"{names['recording']} is not its own"
        )
        wanted += [(names[kind], file) for kind, file in expected[recording].items()]
    for key, file in wanted:
        assert objects[key] == file["size"], f"{key} has {objects[key]} of {file['size']} bytes"
    with ThreadPoolExecutor(VERIFY_THREADS) as pool:
        digests = pool.map(lambda item: _sha256_of(client, bucket, item[0]), wanted)
        for (key, file), digest in zip(wanted, digests, strict=True):
            assert digest == file["sha256"], f"{key} differs from what the fake serves"
    segments = sorted(k for k in objects if k.startswith(f"{prefix}/manifest.jsonl.d/"))
    manifest = [k for k in segments if k.endswith(".jsonl")] or [f"{prefix}/manifest.jsonl"]
    assert all(key in objects for key in manifest), f"{prefix}: no manifest"
    lines = manifest_lines(client, bucket, manifest)
    assert lines == len(wanted), f"{prefix}: the manifest has {lines} lines for {len(wanted)}"
    return len(wanted) + len(by_recording)


def incomplete_uploads(s3: S3Server, bucket: str) -> int:
    return len(s3.uploads(bucket))


def remove_bucket(s3: S3Server, bucket: str) -> None:
    """Abort what is incomplete, delete every object, then the bucket."""
    client = s3.client()
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    keys = list(list_objects(client, bucket, ""))
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


# --- the two variants ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (what they hold, not the blocks they take)."""
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


@dataclass
class Bench:
    settings: Settings
    server: Server
    s3: S3Server
    variants: dict[str, Variant] = field(
        default_factory=lambda: {"SDK -> S3": Variant(), "two-step": Variant()}
    )
    checked: int = 0  # objects verified over all runs
    leftover_uploads: int = 0
    load: float = 0.0  # 1-minute load average before the first run

    def servers_cpu(self) -> tuple[float, float]:
        """CPU seconds of the fake and of moto so far (moto's process: S3Server's own)."""
        moto = self.s3._process
        assert moto is not None
        return self.server.cpu_seconds(), cpu_seconds(moto.pid)

    def env(self, scratch: Path) -> dict[str, str]:
        return {**client_env(self.server), **self.s3.env, "TMPDIR": str(scratch)}

    def fresh(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.settings.root))

    def direct(self, bucket: str) -> Sample:
        workspace = self.server.info["workspace_id"]
        scratch = self.fresh("bench-objectstore-sdk-")
        try:
            result, usage = run_client(
                "archive", workspace, f"s3://{bucket}/sdk", env=self.env(scratch), cwd=scratch
            )
            self._check_report(result)
            return Sample(
                seconds=float(result["real_seconds"]),
                max_rss_kib=usage.max_rss_kib,
                disk_write_bytes=int(result["disk_write_bytes"]),
                left_bytes=tree_bytes(scratch),
                left_files=sum(1 for _ in scratch.rglob("*")),
                cpu_seconds=usage.cpu_seconds,
                fake_cpu_seconds=0.0,
                moto_cpu_seconds=0.0,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def two_step(self, bucket: str) -> Sample:
        workspace = self.server.info["workspace_id"]
        scratch = self.fresh("bench-objectstore-two-step-")
        try:
            env = self.env(scratch)
            tree = scratch / "archive"
            archived, first = run_client("archive", workspace, str(tree), env=env, cwd=scratch)
            self._check_report(archived)
            uploaded, second = run_client(
                "upload", str(tree), f"s3://{bucket}/two-step", env=env, cwd=scratch
            )
            steps = (float(archived["real_seconds"]), float(uploaded["real_seconds"]))
            return Sample(
                seconds=sum(steps),
                max_rss_kib=max(first.max_rss_kib, second.max_rss_kib),
                disk_write_bytes=int(archived["disk_write_bytes"])
                + int(uploaded["disk_write_bytes"]),
                left_bytes=tree_bytes(scratch),
                left_files=sum(1 for _ in scratch.rglob("*")),
                cpu_seconds=first.cpu_seconds + second.cpu_seconds,
                fake_cpu_seconds=0.0,
                moto_cpu_seconds=0.0,
                steps=steps,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _check_report(self, result: dict[str, Any]) -> None:
        items = (self.settings.videos + self.settings.recordings) * KINDS
        assert result["counts"] == {"downloaded": items}, (
            f"the archive reported {result['counts']}: {result['failures']}"
        )

    def run_once(self, number: int) -> None:
        """One run: both variants into one fresh bucket, in an order that alternates."""
        bucket = self.s3.new_bucket()
        try:
            order = [("SDK -> S3", self.direct), ("two-step", self.two_step)]
            for name, variant in order if number % 2 == 0 else reversed(order):
                os.sync()  # no earlier variant's dirty pages are written back during this one
                fake_cpu, moto_cpu = self.servers_cpu()
                sample = variant(bucket)
                fake_after, moto_after = self.servers_cpu()
                sample = replace(
                    sample,
                    fake_cpu_seconds=fake_after - fake_cpu,
                    moto_cpu_seconds=moto_after - moto_cpu,
                )
                self.variants[name].samples.append(sample)
            self.checked += check_prefix(self.s3, bucket, "sdk", self.server)
            self.checked += check_prefix(self.s3, bucket, "two-step", self.server)
            self.leftover_uploads += incomplete_uploads(self.s3, bucket)
        finally:
            remove_bucket(self.s3, bucket)


# --- the report ------------------------------------------------------------------------------


def _check(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'FAIL'}  {text}"


def _spread(variant: Variant) -> str:
    seconds = [sample.seconds for sample in variant.samples]
    return f"{min(seconds):.1f}-{max(seconds):.1f} s"


def _runs(variant: Variant) -> str:
    return " ".join(f"{sample.seconds:.1f}" for sample in variant.samples)


def _mib(value: float) -> str:
    return f"{value / MIB:,.1f} MiB"


def report(bench: Bench) -> str:
    settings = bench.settings
    direct, baseline = bench.variants["SDK -> S3"], bench.variants["two-step"]
    archive_step = statistics.median(s.steps[0] for s in baseline.samples)
    upload_step = statistics.median(s.steps[1] for s in baseline.samples)
    items = (settings.videos + settings.recordings) * KINDS
    files: dict[str, dict[str, dict[str, Any]]] = bench.server.info["files"]
    size = sum(file["size"] for kinds in files.values() for file in kinds.values())
    wall_ratio = direct.median("seconds") / baseline.median("seconds")
    rss = direct.max_rss_mib
    direct_disk = max(s.disk_write_bytes + s.left_bytes for s in direct.samples)
    direct_left = max(s.left_files for s in direct.samples)
    header = f"{'':<28} {'SDK -> S3':>12} {'two-step':>12}   note"
    rows = [
        (
            "wall time (median)",
            f"{direct.median('seconds'):.1f} s",
            f"{baseline.median('seconds'):.1f} s",
            f"two-step: archive {archive_step:.1f} s + upload {upload_step:.1f} s",
        ),
        (
            "wall time, fastest-slowest",
            _spread(direct),
            _spread(baseline),
            "run by run: " + " | ".join(_runs(v) for v in (direct, baseline)),
        ),
        (
            "throughput (median)",
            f"{size / MIB / direct.median('seconds'):.0f} MiB/s",
            f"{size / MIB / baseline.median('seconds'):.0f} MiB/s",
            f"{size / MIB:,.0f} MiB in all resources",
        ),
        (
            "peak RSS (largest)",
            f"{rss:.1f} MiB",
            f"{baseline.max_rss_mib:.1f} MiB",
            "two-step: the larger of its two processes",
        ),
        (
            "client CPU (median)",
            f"{direct.median('cpu_seconds'):.1f} s",
            f"{baseline.median('cpu_seconds'):.1f} s",
            "user + system, start-up included",
        ),
        (
            "fake Userplane CPU (median)",
            f"{direct.median('fake_cpu_seconds'):.1f} s",
            f"{baseline.median('fake_cpu_seconds'):.1f} s",
            "serving the recordings",
        ),
        (
            "moto S3 CPU (median)",
            f"{direct.median('moto_cpu_seconds'):.1f} s",
            f"{baseline.median('moto_cpu_seconds'):.1f} s",
            f"storing the objects; {os.cpu_count()} CPUs for all processes",
        ),
        (
            "local disk written",
            _mib(direct.median("disk_write_bytes")),
            _mib(baseline.median("disk_write_bytes")),
            "write_bytes of the clients' /proc/self/io",
        ),
        (
            "local files at the end",
            _mib(direct.median("left_bytes")),
            _mib(baseline.median("left_bytes")),
            "the SDK's empty cwd/TMPDIR; the two-step's tree",
        ),
    ]
    load = bench.load
    lines = [
        f"\nArchive into a bucket (moto S3 on 127.0.0.1): {settings.videos} x "
        f"{settings.video_mib} MiB videos + {settings.recordings} small recordings, "
        f"{items:,} resources, {settings.runs} runs (order alternating), medians",
        f"objects verified (size + sha256, with recording.json): {bench.checked:,}",
        header,
        *(f"{name:<28} {a:>12} {b:>12}   {note}".rstrip() for name, a, b, note in rows),
        _check(
            wall_ratio <= TARGET_WALL_RATIO,
            f"wall <= {TARGET_WALL_RATIO} x two-step: {wall_ratio:.2f}x",
        ),
        _check(
            rss <= RSS_BOUND_MIB,
            f"peak RSS <= 64 MiB + {CONCURRENCY} x {PART_SIZE // MIB} MiB x "
            f"({PARTS_IN_FLIGHT} + 1) = {RSS_BOUND_MIB} MiB: {rss:.1f} MiB "
            f"({rss / RSS_BOUND_MIB:.2f}x)",
        ),
        _check(
            direct_disk == 0 and direct_left == 0,
            f"no local disk used: {direct_disk:,} bytes written or left, "
            f"{direct_left} files left (largest run)",
        ),
        _check(
            bench.leftover_uploads == 0,
            f"no incomplete multipart upload left: {bench.leftover_uploads}",
        ),
    ]
    if load > 1.0:  # a whole core of 2 was taken by something else
        lines.append(
            f"WARNING: load average {load:.1f} before the first run: the figures are noisy"
        )
    return "\n".join(lines)


def run(settings: Settings) -> str:
    load = os.getloadavg()[0]  # before our own servers start
    with s3_server() as s3, fake_server(settings) as server:
        bench = Bench(settings, server, s3, load=load)
        for number in range(settings.runs):
            bench.run_once(number)
        server.finish()
    return report(bench)


# --- entry points ----------------------------------------------------------------------------


@pytest.mark.timeout(1800)
def bench_objectstore(capsys: pytest.CaptureFixture[str]) -> None:
    """SDK -> S3 against archive-then-upload; prints the table and the targets."""
    text = run(Settings.from_env())
    with capsys.disabled():
        print(text)


def main() -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(description="client.archive() into a bucket.")
    parser.add_argument("--videos", type=int, default=defaults.videos)
    parser.add_argument("--video-mib", type=int, default=defaults.video_mib)
    parser.add_argument("--recordings", type=int, default=defaults.recordings)
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument("--dir", default=defaults.root, help="where run directories go")
    args = parser.parse_args()
    if min(args.videos, args.recordings) < 0 or args.videos + args.recordings < 1:
        parser.error("--videos and --recordings must not be negative, nor both 0")
    if args.video_mib < 1 or args.runs < 1:
        parser.error("--video-mib and --runs must be at least 1")
    settings = Settings(
        videos=args.videos,
        video_mib=args.video_mib,
        recordings=args.recordings,
        runs=args.runs,
        root=args.dir,
    )
    print(run(settings), flush=True)


if __name__ == "__main__":
    main()

"""Resume after a crash: kill -9 the driver at several points, run the same command again."""

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from manifests.manifest import read_manifest, verify
from tests.conftest import run_command


def command(export: Path, output: Path, workers: int = 1) -> list[str]:
    return run_command(export, output, workers)


@pytest.fixture
def export(stdlib_export: Path) -> Path:
    return stdlib_export


@pytest.fixture
def reference(stdlib_reference: dict) -> dict:
    return stdlib_reference


def kill_when(cmd: list[str], ready: Callable[[], bool], timeout: float = 120) -> None:
    """Start ``cmd``, and kill -9 it as soon as ``ready()`` holds (fail if it finishes first)."""
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def rerun(export: Path, output: Path, workers: int = 2) -> tuple[int, str]:
    """Run the same command again; returns how many partitions it reused, and its log."""
    done = subprocess.run(command(export, output, workers), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    reused = re.search(r"reusing (\d+) of (\d+) partition", done.stderr)
    return (int(reused.group(1)) if reused else 0), done.stderr


def markers(output: Path) -> list[Path]:
    return sorted((output / ".v1.partial" / ".work" / "done").glob("part-*.json"))


def same_shards(output: Path, reference: dict) -> None:
    version = output / "v1"
    assert verify(version) == []
    assert {s["path"]: s["sha256"] for s in read_manifest(version)["shards"]} == {
        s["path"]: s["sha256"] for s in reference["shards"]}
    assert not (output / ".v1.partial").exists()


@pytest.mark.parametrize("point", ["walk", "stages", "dedup"])
def test_kill_9_then_the_same_command_resumes_with_identical_shards(
        export: Path, reference: dict, tmp_path: Path, point: str) -> None:
    output = tmp_path / "out"
    partitions = len({Path(s["path"]).name for s in reference["shards"]})  # the partitions that have files
    ready = {
        "walk": lambda: (output / ".v1.partial" / ".work" / "identity.json").exists(),
        "stages": lambda: len(markers(output)) >= 2,
        "dedup": lambda: len(markers(output)) == partitions,
    }[point]
    kill_when(command(export, output), ready)
    assert not (output / "v1").exists()  # nothing that looks finished
    left = len(markers(output))
    reused, log = rerun(export, output)
    assert reused == left and "resuming an interrupted build" in log
    if point != "walk":
        assert reused >= 2
    if point == "dedup":
        assert reused == partitions
    same_shards(output, reference)


def test_damaged_checkpoints_are_redone_not_trusted(export: Path, reference: dict, tmp_path: Path) -> None:
    output = tmp_path / "out"
    kill_when(command(export, output), lambda: len(markers(output)) >= 4)
    found = markers(output)
    work = output / ".v1.partial" / ".work"
    files = [json.loads(m.read_text())["files"] for m in found[:3]]
    rows = work / files[0][0]["path"]
    rows.write_bytes(rows.read_bytes()[:-100])  # truncated
    keys = work / files[1][1]["path"]
    data = bytearray(keys.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, wrong checksum
    keys.write_bytes(bytes(data))
    found[2].write_text('{"report": ')  # a marker cut short
    reused, log = rerun(export, output)
    assert reused == len(found) - 3
    assert "missing or truncated" in log and "does not match its checksum" in log and "unreadable" in log
    same_shards(output, reference)


def test_a_staging_folder_of_another_config_is_not_reused(export: Path, reference: dict, tmp_path: Path) -> None:
    output = tmp_path / "out"
    kill_when(command(export, output), lambda: len(markers(output)) >= 2)
    other = json.loads((output / ".v1.partial" / ".work" / "identity.json").read_text())
    other["config_sha256"] = "0" * 64
    (output / ".v1.partial" / ".work" / "identity.json").write_text(json.dumps(other))
    reused, log = rerun(export, output)
    assert reused == 0 and "starting afresh" in log
    same_shards(output, reference)


def test_without_checkpoints_a_rerun_starts_over(export: Path, reference: dict, tmp_path: Path) -> None:
    config = tmp_path / "no-checkpoints.toml"
    config.write_text((export.parent / "config.toml").read_text() + "[execution]\ncheckpoint = false\n")
    cmd = [*command(export, tmp_path / "out")[:-4], "--config", str(config), "--workers", "1"]
    kill_when(cmd, lambda: (tmp_path / "out" / ".v1.partial" / ".work" / "rows").is_dir()
              and len(list((tmp_path / "out" / ".v1.partial" / ".work" / "rows").glob("part-*"))) >= 2)
    assert markers(tmp_path / "out") == []
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and "reusing" not in done.stderr and "resuming" not in done.stderr
    same_shards(tmp_path / "out", reference)

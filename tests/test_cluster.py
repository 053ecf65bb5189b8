"""A real multi-process cluster: `dask scheduler` and two `dask worker` processes on loopback."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from manifests.manifest import read_manifest, verify
from tests.conftest import run_command

PYTHON_M = [sys.executable, "-m"]


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A scheduler and two single-threaded workers without nannies (a killed worker stays dead)."""
    file = tmp_path / "scheduler.json"
    processes = [start([*PYTHON_M, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                        "--no-dashboard", "--scheduler-file", str(file)], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        for i in range(2):
            processes.append(start([*PYTHON_M, "distributed.cli.dask_worker", address, "--nthreads", "1",
                                    "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
                                   tmp_path / f"worker{i}.log"))
        yield address, processes
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def markers(output: Path) -> list[Path]:
    return sorted((output / ".v1.partial" / ".work" / "done").glob("part-*.json"))


def test_a_worker_killed_mid_run_gives_the_same_shards_as_a_local_cluster(
        stdlib_export: Path, stdlib_reference: dict, cluster: tuple[str, list[subprocess.Popen]],
        tmp_path: Path) -> None:
    address, processes = cluster
    output = tmp_path / "out"
    run = subprocess.Popen(run_command(stdlib_export, output, scheduler=address), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(markers(output)) < 2:  # in the middle of the stages
        assert run.poll() is None, "the run finished before a worker could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    victim = processes[1]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert processes[2].poll() is None  # the other worker did the rest
    version = output / "v1"
    assert verify(version) == []
    assert {s["path"]: s["sha256"] for s in read_manifest(version)["shards"]} == {
        s["path"]: s["sha256"] for s in stdlib_reference["shards"]}

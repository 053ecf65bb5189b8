"""Stages hold no state: the same shards, and no copyleft file kept, on every kind of Dask setup.

One generated export of repositories under different licenses (real license texts from ScanCode's
index, real code from the standard library), cut into partitions small enough that several run at
once, built on: a LocalCluster of one single-threaded worker; an external ``dask scheduler`` with
one ``dask worker --nthreads 4``; the same with ``dask worker --nworkers 2 --nthreads 2``; and a
LocalCluster of one worker with 8 threads (the stress cell: many small partitions, each with its
own license map, through one multi-threaded worker).
"""

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from manifests.manifest import read_manifest, verify
from tests.test_dedup_graph import commit

LICENSES = ["mit", "gpl-3.0", "apache-2.0", "lgpl-2.1", "bsd-new", "agpl-3.0", "isc", "gpl-2.0", None]
COPYLEFT = {"gpl-3.0", "lgpl-2.1", "agpl-3.0", "gpl-2.0"}
MODULES = sorted(p for p in Path(sysconfig.get_paths()["stdlib"]).glob("*.py") if 8_000 < p.stat().st_size < 40_000)


def origin(i: int) -> str:
    return f"https://github.com/matrix/repo{i:02d}"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """27 repositories, 3 per license kind (and 3 with none), each 3 real modules: ~0.9 MB in
    partitions of 24 KiB."""
    from licensedcode.models import load_licenses

    from pipeline.cli import main

    texts = load_licenses()
    root = tmp_path_factory.mktemp("matrix")
    repos = []
    for i in range(27):
        kind = LICENSES[i % len(LICENSES)]
        files = {f"pkg/{m.name}": m.read_text() for m in MODULES[3 * i: 3 * i + 3]}
        if kind is not None:
            text = texts[kind].text
            if i >= 18:  # a line the exact recogniser does not know: ScanCode reads these
                text += "\n\nThis file is part of the project's distribution.\n"
            elif i >= 9:  # a copyright line on top: recognised exactly, as the first nine
                text = f"Copyright (c) 2024 The r{i} authors\n\n{text}"
            files["COPYING" if kind in COPYLEFT else "LICENSE"] = text
        commit(root / "repos" / f"r{i}", files, "2024-01-01T00:00:00Z")
        repos.append(root / "repos" / f"r{i}")
    urls = [a for i in range(27) for a in ("--origin-url", origin(i))]
    assert main(["export-git", *map(str, repos), *urls, "--out", str(root / "export")]) == 0
    (root / "config.toml").write_text("[output]\npartition_bytes = 24576\nbatch_bytes = 8192\n")
    return root / "export"


def build(export: Path, output: Path, *where: str) -> Path:
    command = [sys.executable, "-m", "pipeline", "run", "--version", "1", "--input", str(export), "--output",
               str(output), "--config", str(export.parent / "config.toml"), *where]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return output / "v1"


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    file = tmp_path / "scheduler.json"
    process = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
                               stdout=(tmp_path / "scheduler.log").open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.1)
        yield json.loads(file.read_text())["address"], tmp_path
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def workers(address: str, log: Path, *args: str) -> subprocess.Popen:
    """``dask worker`` as users start it, with its defaults (a nanny per worker process)."""
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-dashboard",
                             "--host", "127.0.0.1", *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture(scope="module")
def reference(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LocalCluster, one worker, one thread."""
    return build(export, tmp_path_factory.mktemp("ref"), "--workers", "1", "--threads", "1")


def shards(version: Path) -> dict[str, str]:
    return {s["path"]: s["sha256"] for s in read_manifest(version)["shards"]}


def check_licenses(version: Path) -> None:
    """No file of a copyleft repository kept; every kept file labelled as its repository's license says."""
    assert verify(version) == []
    kept = ds.dataset(version / "data", format="parquet").to_table(
        columns=["origin_url", "license_type"]).to_pylist()
    by_origin: dict[str, set[str]] = {}
    for row in kept:
        by_origin.setdefault(row["origin_url"], set()).add(row["license_type"])
    for i in range(27):
        kind = LICENSES[i % len(LICENSES)]
        types = by_origin.get(origin(i), set())
        if kind in COPYLEFT:
            assert types == set(), f"{origin(i)} ({kind}): kept"
        else:
            assert types == {"no_license" if kind is None else "permissive"}, f"{origin(i)} ({kind}): {types}"
    manifest = read_manifest(version)
    assert manifest["walk"]["partitions"] >= 20
    counters = next(s for s in manifest["stages"] if s["name"] == "license")["counters"]
    assert (counters["exact_matches"], counters["scancode_runs"]) == (16, 8)  # both paths, in every cell
    assert manifest["totals"]["files_in"] == manifest["totals"]["files_kept"] + manifest["totals"]["files_dropped"]


def test_reference_cell_keeps_no_copyleft_file(reference: Path) -> None:
    check_licenses(reference)


@pytest.mark.parametrize("worker_args", [("--nthreads", "4"), ("--nworkers", "2", "--nthreads", "2")],
                         ids=["one_worker_four_threads", "two_workers_two_threads"])
def test_external_scheduler_and_dask_workers(export: Path, reference: Path, scheduler: tuple[str, Path],
                                             worker_args: tuple[str, ...]) -> None:
    address, tmp = scheduler
    worker = workers(address, tmp / "worker.log", *worker_args)
    try:
        version = build(export, tmp / "out", "--scheduler", address)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    check_licenses(version)
    assert shards(version) == shards(reference)


def test_stress_many_partitions_through_one_worker_with_eight_threads(export: Path, reference: Path,
                                                                       tmp_path: Path) -> None:
    version = build(export, tmp_path / "out", "--workers", "1", "--threads", "8")
    check_licenses(version)
    assert shards(version) == shards(reference)
